"""The `hf` backend: transformers, batched greedy generation with left padding, CPU or GPU."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from skillgap.errors import BackendError
from skillgap.items import Message
from skillgap.models.config import Generation, ModelConfig, device_class, model_identity, resolved_dtype
from skillgap.models.router import is_router, load_router
from skillgap.models.sources import materialize, resolve_source


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device(device_class(device))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"--device {device} asked for, but torch sees no CUDA GPU; use --device cpu.")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    return getattr(torch, resolved_dtype(dtype, device.type))  # as the run id resolves it


def load_merged(cfg: ModelConfig, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """`cfg`'s model and tokenizer, a LoRA adapter merged into the weights (PEFT's merge_and_unload): one plain
    model that runs at the base model's speed, whose weights are the fine-tune's full-rank result."""
    folder = materialize(resolve_source(cfg.model))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    if cfg.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.adapter).merge_and_unload()
    return model, AutoTokenizer.from_pretrained(folder)


class HFBackend:
    def __init__(self, cfg: ModelConfig, batch_size: int = 16):
        self.identity = model_identity(cfg)
        self.batch_size = batch_size
        self.device = pick_device(cfg.device)
        # routing depends on the input: a router stays a PEFT model, unmerged; an adapter is merged once at load
        router = cfg.adapter if cfg.adapter and is_router(cfg.adapter) else None
        self.model, self.tokenizer = load_merged(replace(cfg, adapter=None) if router else cfg,
                                                 pick_dtype(cfg.dtype, self.device))
        if router:
            self.model = load_router(self.model, router)
        self.tokenizer.padding_side = "left"  # generation continues from the right edge of every row
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.to(self.device).eval()
        self.stop_ids = sorted({i for i in (self.tokenizer.eos_token_id, self.model.generation_config.eos_token_id)
                                if isinstance(i, int)})

    def render(self, chat: list[Message]) -> str:
        """The prompt string for one chat: the chat template if the model has one, else the plain text."""
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        return "\n\n".join(m["content"] for m in chat)  # as Item.text(): what training saw

    @torch.inference_mode()
    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, schema: dict[str, Any] | None = None) -> list[Generation]:
        # `schema` is not enforced locally: callers validate the reply and retry (skillgap.teacher)
        sampling: dict[str, object] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
            torch.manual_seed(seed)  # generate() takes no generator; seeding here keeps teacher samples reproducible
        # Batches of similar prompt lengths: less padding to compute over. Outputs go back in the callers' order.
        ids = [self.tokenizer(self.render(c), add_special_tokens=False)["input_ids"] for c in chats]
        order = sorted(range(len(chats)), key=lambda i: len(ids[i]))
        out: dict[int, Generation] = {}
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            enc = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt").to(self.device)
            gen = self.model.generate(**enc, **sampling, max_new_tokens=max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.stop_ids)
            for i, row in zip(rows, gen[:, enc["input_ids"].shape[1]:].tolist()):
                n = next((j for j, t in enumerate(row) if t in self.stop_ids), len(row))
                out[i] = Generation(self.tokenizer.decode(row[:n], skip_special_tokens=True), n)
        return [out[i] for i in range(len(chats))]
