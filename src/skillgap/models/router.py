"""The Arrow router's file format: a folder whose one file names adapters that PEFT routes between per token.

It lives with the model backends because they read it (`--adapter ROUTER_FOLDER` on `hf`); `skillgap.library`
writes it from a library's adapters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError, unknown_name

ROUTER = "router.json"  # a router folder's only file: which adapters, top_k, temperature


def router(adapters: dict[str, str | Path], out: str | Path, top_k: int = 1, temperature: float = 1.0) -> Path:
    """An Arrow router over `adapters` (name -> folder) at `out`: what `--adapter` takes, on the hf backend."""
    if not adapters:
        raise ConfigError("an Arrow router needs at least one adapter.")
    if not 1 <= top_k <= len(adapters):
        raise ConfigError(f"--top-k {top_k}: an Arrow router over {len(adapters)} adapters keeps 1 to "
                          f"{len(adapters)} of them per token.")
    if temperature <= 0:
        raise ConfigError(f"--temperature must be positive, got {temperature}.")
    for name, folder in adapters.items():
        if not (Path(folder) / "adapter_config.json").is_file():
            raise ConfigError(f"adapter {name!r}: {folder} is not a PEFT adapter folder (no adapter_config.json).")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = {"router": "arrow", "top_k": top_k, "temperature": temperature,
            "adapters": {n: str(Path(f).resolve()) for n, f in adapters.items()}}
    (out / ROUTER).write_text(json.dumps(spec, indent=2) + "\n")
    return out


def is_router(folder: str | Path) -> bool:
    return (Path(folder) / ROUTER).is_file()


def read_router(folder: str | Path) -> dict[str, Any]:
    """The router's spec, its adapters checked to exist (a router folder moved without them is an error)."""
    path = Path(folder) / ROUTER
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a readable router ({e}).") from None
    for field_ in ("router", "top_k", "temperature", "adapters"):
        if field_ not in spec:
            raise ConfigError(f"{path}: field {field_!r} missing (write routers with skillgap.library.router).")
    if spec["router"] != "arrow":
        raise unknown_name(f"router in {path}", spec["router"], ["arrow"])
    for name, f in spec["adapters"].items():
        if not (Path(f) / "adapter_config.json").is_file():
            raise ConfigError(f"{path}: adapter {name!r} at {f} is not a PEFT adapter folder.")
    return spec


def load_router(model: Any, folder: str | Path) -> Any:
    """`model` (a transformers model) with the router's adapters under PEFT's Arrow router, unmerged."""
    from peft import ArrowConfig, create_arrow_model

    spec = read_router(folder)
    cfg = ArrowConfig(top_k=spec["top_k"], router_temperature=spec["temperature"], rng_seed=0)  # seeded prototypes
    return create_arrow_model(model, list(spec["adapters"].values()), cfg)


def router_needs_hf(adapter: str, backend: str) -> str:
    return (f"--adapter {adapter} is an Arrow router: it picks adapters per token, so it cannot be merged or served "
            f"as one LoRA by the {backend} backend. Run it on --backend hf.")
