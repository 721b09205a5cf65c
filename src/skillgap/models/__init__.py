"""Model backends: anything that turns a batch of chats into text.

`hf` runs transformers locally (a model folder, a GGUF file, or an alias such as `smollm2-135m`);
`vllm` runs the same local models on vLLM's offline engine (continuous batching; LoRA per request);
`openai` talks to any OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama, hosted APIs).
`auto` (the default) picks `openai` for an endpoint, else `vllm` where it is installed, else `hf`.
The config and run key live in `config`, the Arrow router's file format in `router`; here are the
loaders. Backends import lazily, so `import skillgap` never pulls in torch.
"""

from __future__ import annotations

from typing import Any

from skillgap.errors import unknown_name
from skillgap.models.config import (
    ADAPTER_MODES,
    BACKENDS,
    Backend,
    Generation,
    ModelConfig,
    backend_class,
    device_class,
    local_backend,
    model_identity,
    resolved_dtype,
)
from skillgap.models.router import router_needs_hf
from skillgap.models.vllm import VLLMBackend, adapter_mode  # no vLLM import until an engine starts

__all__ = ["ADAPTER_MODES", "BACKENDS", "Backend", "Generation", "ModelConfig", "ModelPool", "backend_class",
           "device_class", "load_model", "local_backend", "model_identity", "resolved_dtype", "router_needs_hf"]


def load_model(cfg: ModelConfig, batch_size: int = 16) -> Backend:
    name = cfg.resolved_backend()
    if name not in BACKENDS:
        raise unknown_name("backend", name, list(BACKENDS))
    return backend_class(name)(cfg, batch_size=batch_size)


class ModelPool:
    """Backends loaded once and shared by the stages of one process (diagnose, before and after in `skillgap run`).

    A vLLM engine serves its base model and, per request, any LoRA adapter of it: after training,
    the 'after' profile needs no new engine when adapters are served as LoRA. `lora_rank` says
    which adapter rank is coming, so that the first engine already has room for it. At most one
    vLLM engine is alive: starting another (a merged adapter, another model) closes the first.
    """

    def __init__(self, lora_rank: int = 0):
        self.lora_rank = lora_rank
        self.backends: dict[tuple[Any, ...], Any] = {}
        self.engine: Any = None  # the live vLLM engine, if any

    def get(self, cfg: ModelConfig, batch_size: int = 16) -> Backend:
        key = (repr(cfg), batch_size)
        if key in self.backends:
            return self.backends[key]
        if cfg.resolved_backend() != "vllm":
            self.backends[key] = load_model(cfg, batch_size)
            return self.backends[key]
        engine = self._engine_for(cfg, batch_size)
        if engine is None:
            self.close()  # before the next engine starts: one at a time (see vllm.Engine.close)
        backend = VLLMBackend(cfg, batch_size, engine=engine, lora_rank=self.lora_rank)
        self.engine = backend.engine
        self.backends[key] = backend
        return backend

    def _engine_for(self, cfg: ModelConfig, batch_size: int) -> Any:
        """The live engine if it can serve `cfg` as it stands (same folder, dtype, room for the adapter), else None."""
        if self.engine is None:
            return None
        want = VLLMBackend.plan(cfg, batch_size, self.lora_rank)
        have = self.engine
        same = (have.folder, have.dtype, have.max_num_seqs) == (want["folder"], want["dtype"], want["max_num_seqs"])
        fits = want["max_lora_rank"] <= have.max_lora_rank
        len_ok = cfg.max_model_len in (None, have.max_model_len)
        return have if same and fits and len_ok else None

    def serves_adapters(self, cfg: ModelConfig) -> bool:
        """Whether the live engine will also serve `cfg` with an adapter (vLLM LoRA with room for `lora_rank`)."""
        if self.engine is None or not self.lora_rank:
            return False
        return adapter_mode(cfg) == "lora" and self.engine.max_lora_rank >= self.lora_rank

    def close(self) -> None:
        """Drop every loaded model and shut the vLLM engine down (its memory goes back to the process)."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.backends = {}

    def __enter__(self) -> "ModelPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
