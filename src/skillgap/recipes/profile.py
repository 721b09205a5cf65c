"""Recipe: measure a model skill by skill.

    items = load_items(data)            # skills -> items
    backend = load_model(model)         # model
    for batch in pending items:         # resumable: finished items are skipped
        outputs = backend.generate(batch)
        grades = grader(outputs)        # grade
        store.add(batch, grades)        # committed batch by batch
    profile = build_profile(records)    # profile

The same command run twice finds the same run in the store and generates only what is missing,
so a second identical run after completion does not even load the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from skillgap.data import DataConfig, Items, load_items
from skillgap.errors import ConfigError
from skillgap.grade import Grade, get_grader
from skillgap.io import write_json  # also imported from here by recipes and benchmarks
from skillgap.items import Item, Record
from skillgap.judge import JudgeGrader
from skillgap.label import item_text
from skillgap.models import ModelConfig, ModelPool, model_identity, ray_pool
from skillgap.profile import Profile, build_profile
from skillgap.store import RunStore, fingerprint
from skillgap.teacher import Teacher


@dataclass(frozen=True)
class EvalConfig:
    """How to generate and grade."""

    batch_size: int = field(default=16, metadata={  # also the commit granularity of the run store
        "help": "chats per generation batch"})
    max_new_tokens: int = field(default=128, metadata={  # greedy decoding stops at the end-of-turn token or here
        "help": "generation budget per item"})
    # None: the data's own ('auto' for files of items, the suite's); 'judge': an LLM judge
    grader: str | None = field(default=None, metadata={
        "help": "auto (a file's default: each item by its reference: number, time, True/False, yes/no, text) | "
                "numeric | exact | math | regex:<pattern> | module:function | judge (an LLM judge: --judge)"})
    judge: ModelConfig | None = None  # the judge model, for grader 'judge' (--judge, --judge-base-url)
    # Where generation runs; none of these changes the outputs, so none is part of the run id.
    ray: bool = field(default=False, metadata={
        "help": "generate on a Ray cluster: $RAY_ADDRESS (e.g. ray://head:10001), else a local one; grading and the "
                "run store stay here. Needs: pip install \"ray[data]\""})
    ray_replicas: int = field(default=2, metadata={  # Ray actors, each fed batch_size chats at a time
        "metavar": "N", "help": "--ray: model replicas"})
    ray_gpus_per_replica: float = field(default=0.0, metadata={  # G for an engine sharded G ways (tensor parallel)
        "metavar": "G", "help": "--ray: GPUs per replica; 1 for --backend vllm on GPUs (default: 0)"})
    ray_cpus_per_replica: float = field(default=1.0, metadata={"metavar": "C", "help": "--ray: CPUs per replica"})

    def check(self) -> None:
        """The grader resolves and the numbers make sense, before any model loads."""
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ConfigError("--batch-size and --max-new-tokens must be at least 1.")
        if self.ray:
            if self.ray_replicas < 1 or self.ray_gpus_per_replica < 0 or self.ray_cpus_per_replica < 0:
                raise ConfigError("--ray-replicas must be at least 1, and --ray-gpus-per-replica and "
                                  "--ray-cpus-per-replica at least 0.")
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                raise ConfigError('--ray needs Ray Data, which is not installed: pip install "ray[data]"')
        if self.grader == "judge":
            if self.judge is None:
                raise ConfigError("--grader judge needs a judge model: --judge MODEL (and --judge-base-url for an "
                                  "endpoint).")
            self.judge.check()
        elif self.grader is not None:
            get_grader(self.grader)


class RateColumn(ProgressColumn):
    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} items/s" if speed else "- items/s")


def run_id_for(model: ModelConfig, data: DataConfig, ev: EvalConfig, items: list[Item],
               grader: str | None = None) -> tuple[str, dict[str, Any]]:
    """A readable, deterministic id: what determines the outputs and their grades, hashed. The items count by
    content, so an edited data file (the same path and ids) is a new run, not the old one's grades; a file's grader
    is the one that grades it (`grader`, its default resolved): a file graded by another default is another run."""
    identity = {"kind": "profile", "model": model_identity(generation_model(model, ev)), "data": data.describe(),
                "items": fingerprint([it.to_dict() for it in items]),
                "limit": data.limit, "seed": data.seed, "max_new_tokens": ev.max_new_tokens,
                "grader": ev.grader or (grader if data.data else None)}
    if ev.grader == "judge" and ev.judge:
        identity["judge"] = model_identity(ev.judge)
    slug = "".join(c if c.isalnum() else "-" for c in Path(model.model).name.lower()).strip("-")[:24]
    name = data.suite if not data.data else Path(data.data).stem
    return f"{slug}-{name}-s{data.seed}-{fingerprint(identity)[:8]}", identity


def generation_model(model: ModelConfig, ev: EvalConfig) -> ModelConfig:
    """The model as the generating process resolves it: Ray replicas with GPUs run `--device auto` on CUDA
    (and so `--dtype auto` in bf16), whatever the driver has."""
    if ev.ray and ev.ray_gpus_per_replica > 0 and model.device == "auto":
        return replace(model, device="cuda")
    return model


def profile(model: ModelConfig, data: DataConfig, ev: EvalConfig, runs_dir: str | Path = "runs",
            output_path: str | Path | None = None, console: Console | None = None,
            models: ModelPool | None = None, items: Items | None = None) -> Profile:
    """Profile `model` on `data`; `models` shares loaded backends (one vLLM engine) with the caller's other stages,
    `items` the items of `data` a caller already read and checked (as `load_items(data, ev.grader, check=True)`)."""
    console = console or Console(stderr=True)
    for cfg in (model, data, ev):
        cfg.check()
    # every reference gradable, before any model loads
    items, skills, spec = items if items is not None else load_items(data, ev.grader, check=True)
    grader = make_grader(ev, spec)
    run_id, identity = run_id_for(model, data, ev, items, spec)
    config = {"model": model.to_dict(), "data": asdict(data), "eval": asdict(ev), "identity": identity}

    store = RunStore(runs_dir)
    own = ModelPool()  # used, and closed, only when the caller shares none
    try:
        session = store.open_run(run_id, "profile", identity["model"], data.describe(), data.seed,
                                 len(items), config)
        done = store.done_ids(run_id)
        index = {it.id: i for i, it in enumerate(items)}
        # Similar lengths in one batch waste less compute on padding.
        pending = sorted((it for it in items if it.id not in done), key=lambda it: len(it.prompt or str(it.messages)))
        if done:
            console.print(f"[dim]run {run_id}: {len(done)} of {len(items)} items already done, resuming[/dim]")
        if pending:
            if ev.ray:  # replicas on a Ray cluster generate; grading and the run store stay here, batch by batch
                batches: Any = (([it for it, _ in b], [g for _, g in b]) for b in ray_pool.generate_over_ray(
                    model, pending, ev.max_new_tokens, ev.batch_size, ev.ray_replicas, ev.ray_gpus_per_replica,
                    ev.ray_cpus_per_replica))
            else:
                backend = (models or own).get(model, batch_size=ev.batch_size)
                calls = [pending[i:i + backend.batch_size] for i in range(0, len(pending), backend.batch_size)]
                batches = (streamed(backend, calls, ev.max_new_tokens, ev.batch_size) if hasattr(backend, "stream")
                           else commits(((b, backend.generate([it.chat() for it in b], ev.max_new_tokens))
                                         for b in calls), ev.batch_size))
            columns = (TextColumn("[bold]profile"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                       TextColumn("eta"), TimeRemainingColumn())
            with Progress(*columns, console=console, transient=False) as bar:
                task = bar.add_task("profile", total=len(items), completed=len(done))
                for batch, gens in batches:
                    rows = [(index[it.id], Record(it, g.text, grade, g.n_tokens))
                            for it, g, grade in zip(batch, gens, grade_all(grader, batch, gens))]
                    store.add(run_id, session, rows)
                    bar.advance(task, len(batch))
        prof = build_profile(store.records(run_id), skills, run_id, identity["model"], data.describe())
        store.finish(run_id, prof.to_dict())
    finally:
        store.close()
        own.close()
    if output_path:
        write_json(prof.to_dict() | {"config": config}, output_path)
    return prof


def commits(batches: Any, size: int) -> Any:
    """Generated batches cut into `size` items each: a backend may generate more chats per call than --batch-size
    (vLLM and hf batch continuously, and a call's last rows leave them idle), the run store commits every
    --batch-size items all the same."""
    for items, gens in batches:
        for i in range(0, len(items), size):
            yield items[i:i + size], gens[i:i + size]


def streamed(backend: Any, calls: list[list[Item]], max_new_tokens: int, size: int) -> Any:
    """Batches of `size` replies in the order a streaming backend (hf) finishes them: a call holds many more chats
    than a commit, and a run killed mid-call keeps every batch it committed."""
    for call in calls:
        done: list[tuple[Item, Any]] = []
        for i, gen in backend.stream([it.chat() for it in call], max_new_tokens):
            done.append((call[i], gen))
            if len(done) == size:
                yield [it for it, _ in done], [g for _, g in done]
                done = []
        if done:
            yield [it for it, _ in done], [g for _, g in done]


def make_grader(ev: EvalConfig, default: str) -> Any:
    if ev.grader != "judge":
        return get_grader(ev.grader or default)

    if ev.judge is None:
        raise ConfigError("--grader judge needs a judge model: --judge MODEL (and --judge-base-url for an endpoint).")
    return JudgeGrader(Teacher(ev.judge))


def grade_all(grader: Any, items: list[Item], gens: list[Any]) -> list[Grade]:
    """Grades for a batch; a judge sees the questions and grades the batch in one go.

    A reply cut off at the token limit never gave its final answer, whatever number it ends on: it is
    `truncated`, ungraded (wrong, like an unparsed output) and counted apart, so raising --max-new-tokens
    is the visible fix."""
    if hasattr(grader, "grade_batch"):
        grades = grader.grade_batch([item_text(it) for it in items], [g.text for g in gens],
                                    [it.answer for it in items])
    else:
        grades = [grader(g.text, it.answer) for it, g in zip(items, gens)]
    return [Grade(None, gr.answer, f"cut off at --max-new-tokens ({g.n_tokens} tokens)", "truncated")
            if getattr(g, "truncated", False) else gr for gr, g in zip(grades, gens)]

