"""What a model is, as data: its config, the registry of backends, and the key a run is stored under.

Nothing here loads a model: the backends (`hf`, `vllm`, `openai`) import this module, never the reverse.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from skillgap.errors import BackendError, ConfigError, unknown_name
from skillgap.items import Message
from skillgap.models.router import is_router, read_router, router_needs_hf
from skillgap.models.sources import adapter_identity, resolve_source

BACKENDS: dict[str, str] = {
    "hf": "skillgap.models.hf:HFBackend",
    "vllm": "skillgap.models.vllm:VLLMBackend",
    "openai": "skillgap.models.openai:OpenAIBackend",
}
ADAPTER_MODES = ("auto", "lora", "merge")


@dataclass(frozen=True)
class ModelConfig:
    """Which model, where, and how to reach it."""

    model: str = field(default="smollm2-135m", metadata={
        "prefixed": "", "help": "alias (smollm2-135m), model folder, .gguf file, or served model name"})
    # None or 'auto': 'openai' if base_url is set, else 'vllm' if installed, else 'hf'
    backend: str | None = field(default=None, metadata={
        "choices": ("auto", "hf", "vllm", "openai"),
        "help": "auto (default): openai when --base-url is given, else vllm where it is installed, else hf"})
    device: str = field(default="auto", metadata={"help": "hf, vllm: auto | cpu | cuda | cuda:N | mps"})
    # auto: fp32 on CPU, bf16 on CUDA (resolved_dtype)
    dtype: str = field(default="auto", metadata={
        "choices": ("auto", "float32", "bfloat16", "float16"),
        "help": "auto (default): float32 on CPU, where it reproduces greedy outputs exactly; bfloat16 on GPU"})
    base_url: str | None = field(default=None, metadata={"help": "openai: endpoint, e.g. http://localhost:8000/v1"})
    api_key_env: str = "OPENAI_API_KEY"  # openai: environment variable holding the key
    concurrency: int = field(default=8, metadata={"help": "openai: requests in flight"})
    max_retries: int = 4  # openai: retries with exponential backoff on transient errors
    timeout: float = field(default=120.0, metadata={"help": "openai: seconds per request"})
    adapter: str | None = field(default=None, metadata={
        "help": "hf, vllm: a LoRA adapter folder to apply (e.g. out/adapter)"})
    adapter_mode: str = field(default="auto", metadata={
        "choices": ADAPTER_MODES, "help": "vllm: serve the adapter through LoRARequest or merged into the weights "
                                          "(default: auto, lora on GPU, merge on CPU where it is faster)"})
    max_model_len: int | None = field(default=None, metadata={
        "help": "vllm: longest prompt + completion in tokens (default: the model's, at most 4096)"})
    tensor_parallel_size: int = field(default=1, metadata={"help": "vllm: GPUs one engine spreads the model over"})

    def resolved_backend(self) -> str:
        if self.backend and self.backend != "auto":
            return self.backend
        if self.model.startswith("openai/") or self.base_url:
            return "openai"
        return local_backend()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"backend": self.resolved_backend()}

    def check(self) -> None:
        """That the model and adapter can be found, without loading either (an hf model is hashed, not read)."""
        name = self.resolved_backend()
        if name not in BACKENDS:
            raise unknown_name("backend", name, list(BACKENDS))
        if self.concurrency < 1 or self.timeout <= 0:
            raise ConfigError("--concurrency must be at least 1 and --timeout positive.")
        if self.adapter_mode not in ADAPTER_MODES:
            raise unknown_name("adapter mode", self.adapter_mode, list(ADAPTER_MODES))
        if self.tensor_parallel_size < 1:
            raise ConfigError(f"--tensor-parallel-size must be at least 1, got {self.tensor_parallel_size}.")
        if self.max_model_len is not None and self.max_model_len < 16:
            raise ConfigError(f"--max-model-len must be at least 16 tokens, got {self.max_model_len}.")
        if name in ("hf", "vllm"):
            resolve_source(self.model)
        if self.adapter:
            if is_router(self.adapter):
                if name != "hf":
                    raise BackendError(router_needs_hf(self.adapter, name))
                read_router(self.adapter)
                return
            if not (Path(self.adapter) / "adapter_config.json").is_file():
                raise BackendError(f"--adapter {self.adapter}: not a PEFT adapter folder (no adapter_config.json).")
            adapter_identity(self.adapter)  # the weights are there too
        if name == "vllm":  # through the registry: the backend module imports this one
            backend_class(name).check_config(self)


def backend_class(name: str) -> Any:
    """The backend class registered as `name`, imported only now (hf and vllm pull in torch)."""
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def local_backend() -> str:
    """What `auto` runs a local model on: $SKILLGAP_BACKEND if set, else vllm where it is installed, else hf."""
    chosen = os.environ.get("SKILLGAP_BACKEND")
    if chosen:
        if chosen not in ("hf", "vllm"):
            raise unknown_name("SKILLGAP_BACKEND", chosen, ["hf", "vllm"])
        return chosen
    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


@dataclass(frozen=True)
class Generation:
    text: str
    n_tokens: int  # generated tokens (the stop token excluded)
    truncated: bool = False  # cut off at max_new_tokens before the model ended its reply (openai: finish_reason)


class Backend(Protocol):
    identity: str  # stable description of the model, part of a run's fingerprint
    batch_size: int  # how many chats one generate() call should get

    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, schema: dict[str, Any] | None = None) -> list[Generation]:
        """Greedy at temperature 0 (evaluation); sampled above it (a teacher drawing several solutions).

        `schema`: a JSON schema the reply should follow; endpoints that can constrain decoding do,
        others ignore it (the caller validates anyway)."""
        ...


def device_class(device: str) -> str:
    """What `--device` runs on here: cpu, cuda or mps (`auto` asks torch, as the backends do)."""
    if device != "auto":
        return device.split(":")[0]
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def resolved_dtype(dtype: str, device: str) -> str:
    """What `--dtype` loads the weights as on a device class: `auto` is bf16 on CUDA, fp32 elsewhere.
    The backends load with it and the run id is keyed on it, so the two cannot disagree."""
    if dtype == "auto":
        return "bfloat16" if device == "cuda" else "float32"
    return dtype


def model_identity(cfg: ModelConfig) -> str:
    """What a run is keyed on, computed without loading anything heavy: the weights by content, the resolved
    dtype and the device class (bf16 and fp32, or a GPU and a CPU, can give different greedy text)."""
    name = cfg.resolved_backend()
    if name == "openai":
        return f"openai:{cfg.model.removeprefix('openai/')}@{cfg.base_url}"
    device = device_class(cfg.device)
    # hf and vllm: the same weights at the same dtype on the same device, the same greedy text
    ident = f"hf:{resolve_source(cfg.model).identity}@{resolved_dtype(cfg.dtype, device)}/{device}"
    if cfg.adapter:
        ident += f"+{adapter_identity(cfg.adapter)}"
    return ident
