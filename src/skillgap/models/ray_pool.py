"""Generation on many machines: a Ray Data actor pool of model replicas, fed the pending items.

    ds = ray.data.from_arrow(one block per batch of pending items: id, chat as JSON)
    ds = ds.map_batches(Replica, compute=ActorPoolStrategy(size=replicas), num_cpus=C, num_gpus=G,
                        batch_size=batch_size)     # each replica: load_model(cfg) once, then generate()
    for out in ds.iter_batches(batch_size):       # streamed back to the driver as replicas finish
        yield [(item, Generation), ...]           # the driver grades and commits them

Every replica loads its model with `skillgap.models.load_model`, so any backend works (`hf`, `vllm`,
`openai`). Only the driver opens the run store: results come back batch by batch and the driver grades
and commits each, so a killed run keeps every committed batch and the same command resumes.

Where: `RAY_ADDRESS` if set (`ray://head:10001`, `auto`, `host:6379`), else a new local cluster that is
shut down at the end; a Ray session the caller already opened (`ray.init()`) is used and left open.
Resources per replica: `cpus_per_replica` and `gpus_per_replica` (Ray's `num_cpus` / `num_gpus`, with a
fixed pool of `replicas` actors: `ActorPoolStrategy(size=replicas)`, what `concurrency=replicas` meant
before Ray deprecated it). For vLLM on GPUs give each replica 1 GPU. G > 1 reserves G GPUs on one node per
replica, for an engine sharded G ways (tensor parallel); the engine's tensor-parallel size is the backend's
setting, not Ray's, and must be G too. Not tested here: several machines, GPUs, vLLM replicas, Ray Client.

Ray is imported only here, lazily: `import skillgap` never pulls it in. Needs `pip install "ray[data]"`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from skillgap.errors import BackendError, ConfigError, SkillgapError
from skillgap.items import Item
from skillgap.models import load_model
from skillgap.models.config import Generation, ModelConfig

INSTALL = 'pip install "ray[data]"'


def import_ray() -> Any:
    """`ray` with Ray Data, or a one-line error saying what to install."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ConfigError(f"--ray needs Ray Data, which is not installed ({e}); install it: {INSTALL}") from None
    return ray


class Replica:
    """One model replica in a Ray actor: loaded once, then fed batches of chats.

    A skillgap error (a model this node cannot find, an endpoint that is down) comes back as data, in
    the `error` column, so the driver can stop with that one line instead of a remote traceback."""

    def __init__(self, cfg: ModelConfig, batch_size: int, max_new_tokens: int):
        import socket

        self.where = socket.gethostname()
        self.max_new_tokens = max_new_tokens
        self.backend, self.error = None, ""
        try:
            self.backend = load_model(cfg, batch_size=batch_size)
        except SkillgapError as e:
            self.error = str(e)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        n = len(batch["id"])
        texts, n_tokens, error = [""] * n, [0] * n, self.error
        if not error and self.backend is not None:
            try:
                gens = self.backend.generate([json.loads(c) for c in batch["chat"]], self.max_new_tokens)
                texts, n_tokens = [g.text for g in gens], [g.n_tokens for g in gens]
            except SkillgapError as e:
                error = str(e)
        return {"id": np.asarray(batch["id"], dtype=object), "text": np.asarray(texts, dtype=object),
                "n_tokens": np.asarray(n_tokens, dtype=np.int64),
                "error": np.asarray([f"on {self.where}: {error}" if error else ""] * n, dtype=object)}


def _connect(ray: Any, replicas: int, cpus_per_replica: float, gpus_per_replica: float) -> bool:
    """Join `RAY_ADDRESS`, or start a local cluster; True if this call opened the session (and must close it)."""
    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return True
    # A local cluster: enough logical CPUs for the pool (more replicas than cores just share them).
    cpus = max(os.cpu_count() or 1, math.ceil(replicas * cpus_per_replica))
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
    have = ray.cluster_resources().get("GPU", 0)
    if replicas * gpus_per_replica > have:
        ray.shutdown()
        raise BackendError(f"--ray-replicas {replicas} x --ray-gpus-per-replica {gpus_per_replica:g} needs "
                           f"{replicas * gpus_per_replica:g} GPUs; this machine has {have:g}. Set RAY_ADDRESS to "
                           "a cluster with more, or ask for fewer.")
    return True


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def generate_over_ray(cfg: ModelConfig, items: list[Item], max_new_tokens: int, batch_size: int, replicas: int,
                      gpus_per_replica: float = 0,
                      cpus_per_replica: float = 1) -> Iterator[list[tuple[Item, Generation]]]:
    """Generate for `items` on a pool of `replicas` model replicas; yield (item, generation) batch by batch.

    Batches come back in completion order, not item order. Each is at most `batch_size` items, and the
    replicas see the same batches as a local loop over `items` in order would."""
    if not items:
        return
    if replicas < 1 or gpus_per_replica < 0 or cpus_per_replica < 0:
        raise ConfigError("--ray-replicas must be at least 1, and CPUs and GPUs per replica at least 0.")
    ray = import_ray()
    import pyarrow as pa

    # Resolved here, once: a node with vLLM installed must not pick another backend than the driver did.
    cfg = replace(cfg, backend=cfg.resolved_backend())
    by_id = {it.id: it for it in items}
    if len(by_id) != len(items):
        raise ConfigError("generate_over_ray: item ids must be unique.")
    opened = _connect(ray, replicas, cpus_per_replica, gpus_per_replica)
    ctx = ray.data.DataContext.get_current()
    quiet_ctx = {k: False for k in ("enable_progress_bars", "print_on_execution_start") if hasattr(ctx, k)}
    saved = {k: getattr(ctx, k) for k in quiet_ctx}
    for k, v in quiet_ctx.items():  # the driver draws its own progress bar
        setattr(ctx, k, v)
    quiet = logging.getLogger("ray.data._internal.progress")  # ...and needs no warning that Ray's are off
    quiet_level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # One block per batch: map_batches(batch_size) then hands each replica exactly these batches.
        blocks = [pa.table({"id": [it.id for it in items[i:i + batch_size]],
                            "chat": [json.dumps(it.chat()) for it in items[i:i + batch_size]]})
                  for i in range(0, len(items), batch_size)]
        ds = ray.data.from_arrow(blocks).map_batches(
            Replica, fn_constructor_kwargs={"cfg": cfg, "batch_size": batch_size, "max_new_tokens": max_new_tokens},
            batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=min(replicas, len(blocks))),
            num_cpus=cpus_per_replica, num_gpus=gpus_per_replica or None, batch_format="numpy")
        for out in ds.iter_batches(batch_size=batch_size, batch_format="numpy", prefetch_batches=0):
            failed = next((str(e) for e in out["error"] if e), None)
            if failed:
                raise BackendError(f"a Ray replica failed {_first_line(failed)}")
            yield [(by_id[str(i)], Generation(str(t), int(n)))
                   for i, t, n in zip(out["id"], out["text"], out["n_tokens"])]
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)
        quiet.setLevel(quiet_level)
        if opened:
            ray.shutdown()  # closes a local cluster; on RAY_ADDRESS it only disconnects this driver
