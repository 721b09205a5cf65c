"""Model backends: anything that turns a batch of chats into text.

`hf` runs transformers locally (a model folder, a GGUF file, or an alias such as `smollm2-135m`);
`openai` talks to any OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama, hosted APIs).
Backends import lazily, so `import skillgap` never pulls in torch.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from skillgap.errors import unknown_name
from skillgap.items import Message

BACKENDS: dict[str, str] = {
    "hf": "skillgap.models.hf:HFBackend",
    "openai": "skillgap.models.openai:OpenAIBackend",
}


@dataclass(frozen=True)
class ModelConfig:
    """Which model, where, and how to reach it."""

    model: str = "smollm2-135m"
    backend: str | None = None  # None: 'openai' if base_url is set, else 'hf'
    device: str = "auto"  # hf: auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # hf: auto (fp32 on CPU, bf16 on GPU) | float32 | bfloat16 | float16
    base_url: str | None = None  # openai: e.g. http://localhost:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # openai: environment variable holding the key
    concurrency: int = 8  # openai: requests in flight
    max_retries: int = 4  # openai: retries with exponential backoff on transient errors
    timeout: float = 120.0  # openai: seconds per request
    adapter: str | None = None  # hf: a PEFT (LoRA) adapter folder applied on top of `model`

    def resolved_backend(self) -> str:
        if self.backend:
            return self.backend
        if self.model.startswith("openai/"):
            return "openai"
        return "openai" if self.base_url else "hf"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"backend": self.resolved_backend()}

    def check(self) -> None:
        """That the model and adapter can be found, without loading either (an hf model is hashed, not read)."""
        from skillgap.errors import BackendError, ConfigError

        name = self.resolved_backend()
        if name not in BACKENDS:
            raise unknown_name("backend", name, list(BACKENDS))
        if self.concurrency < 1 or self.timeout <= 0:
            raise ConfigError("--concurrency must be at least 1 and --timeout positive.")
        if name == "hf":
            from skillgap.models.sources import resolve_source

            resolve_source(self.model)
        if self.adapter:
            from pathlib import Path

            if not (Path(self.adapter) / "adapter_config.json").is_file():
                raise BackendError(f"--adapter {self.adapter}: not a PEFT adapter folder (no adapter_config.json).")


@dataclass(frozen=True)
class Generation:
    text: str
    n_tokens: int  # generated tokens (the stop token excluded)


class Backend(Protocol):
    identity: str  # stable description of the model, part of a run's fingerprint
    batch_size: int  # how many chats one generate() call should get

    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, schema: dict[str, Any] | None = None) -> list[Generation]:
        """Greedy at temperature 0 (evaluation); sampled above it (a teacher drawing several solutions).

        `schema`: a JSON schema the reply should follow; endpoints that can constrain decoding do,
        others ignore it (the caller validates anyway)."""
        ...


def load_model(cfg: ModelConfig, batch_size: int = 16) -> Backend:
    name = cfg.resolved_backend()
    if name not in BACKENDS:
        raise unknown_name("backend", name, list(BACKENDS))
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)(cfg, batch_size=batch_size)


def model_identity(cfg: ModelConfig) -> str:
    """What a run is keyed on, computed without loading anything heavy."""
    name = cfg.resolved_backend()
    if name == "openai":
        return f"openai:{cfg.model.removeprefix('openai/')}@{cfg.base_url}"
    from skillgap.models.sources import resolve_source
    ident = f"hf:{resolve_source(cfg.model).identity}"
    if cfg.adapter:
        from skillgap.models.sources import adapter_identity
        ident += f"+{adapter_identity(cfg.adapter)}"
    return ident
