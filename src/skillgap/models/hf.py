"""The `hf` backend: transformers, greedy generation with continuous batching, CPU or GPU.

Greedy decoding (evaluation) runs its own loop over transformers' model and KV cache: a row leaves the
batch as soon as it ends, and a waiting prompt takes its place, so no row decodes past its end while the
longest of its batch finishes (`model.generate`'s static batches spent most of their steps so). Sampling
(a teacher's drafts) keeps `model.generate`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from skillgap.errors import BackendError
from skillgap.items import Message
from skillgap.models.config import Generation, ModelConfig, device_class, model_identity, resolved_dtype
from skillgap.models.router import is_router, load_router
from skillgap.models.sources import materialize, resolve_source


# Rows decoded at once on a CPU at least: a decode step costs little more at 64 rows than at 16 (the weights are read
# once per step either way): 406 against 207 generated tokens/s for SmolLM2-135M on 2 idle cores.
MIN_WIDTH = 64
# Chats per generate() call (the profile recipe's chunks): a call's last rows leave the batch idle, more waiting
# prompts keep it full for longer. The run store still commits every --batch-size items.
CALL_ITEMS = 256


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
        self.device = pick_device(cfg.device)
        # greedy rows decoded at once; on a GPU --batch-size bounds the KV cache's memory, as it always did
        self.width = max(batch_size, MIN_WIDTH) if self.device.type == "cpu" else batch_size
        self.sample_batch = batch_size  # rows per model.generate batch when sampling
        self.batch_size = max(batch_size, CALL_ITEMS)  # chats a caller should hand generate() at once
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
        ids = [self.tokenizer(self.render(c), add_special_tokens=False)["input_ids"] for c in chats]
        if temperature > 0:
            return self.sample(ids, max_new_tokens, temperature, seed)
        out = dict(self.greedy(ids, max_new_tokens))
        return [self.decoded(out[i]) for i in range(len(ids))]

    @torch.inference_mode()  # a generator: torch enters the mode around each step it takes
    def stream(self, chats: list[list[Message]], max_new_tokens: int) -> Iterator[tuple[int, Generation]]:
        """Greedy replies as rows finish, as (index in `chats`, reply): a caller commits them as they come, so a run
        killed mid-call keeps what finished (a call holds many more chats than a commit)."""
        ids = [self.tokenizer(self.render(c), add_special_tokens=False)["input_ids"] for c in chats]
        for i, row in self.greedy(ids, max_new_tokens):
            yield i, self.decoded(row)

    def decoded(self, row: list[int]) -> Generation:
        """The text of generated tokens, up to the first stop token (excluded)."""
        n = next((j for j, t in enumerate(row) if t in self.stop_ids), len(row))
        return Generation(self.tokenizer.decode(row[:n], skip_special_tokens=True), n)

    def sample(self, ids: list[list[int]], max_new_tokens: int, temperature: float, seed: int) -> list[Generation]:
        """Sampled replies by `model.generate`, in left-padded batches of similar prompt lengths."""
        torch.manual_seed(seed)  # generate() takes no generator; seeding here keeps teacher samples reproducible
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: dict[int, Generation] = {}
        for start in range(0, len(order), self.sample_batch):
            rows = order[start:start + self.sample_batch]
            enc = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt").to(self.device)
            gen = self.model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                                      max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                      eos_token_id=self.stop_ids)
            for i, row in zip(rows, gen[:, enc["input_ids"].shape[1]:].tolist()):
                out[i] = self.decoded(row)
        return [out[i] for i in range(len(ids))]

    def greedy(self, ids: list[list[int]], max_new_tokens: int) -> Iterator[tuple[int, list[int]]]:
        """Greedy tokens for each prompt, continuously batched: up to `width` rows decode together; a row leaves
        when it ends (a stop token or `max_new_tokens`) and waiting prompts, shortest first, are prefilled into
        the freed rows once a quarter of them are free. Rows are left-padded in one KV cache; their positions
        come from their own masks, as in `model.generate`. Yields (prompt index, tokens) as each row finishes."""
        waiting = deque(sorted(range(len(ids)), key=lambda i: len(ids[i])))
        out: dict[int, list[int]] = {}
        rows: list[int] = []  # the prompt index of each row of the batch
        cache, mask = DynamicCache(), torch.zeros(0, 0, dtype=torch.long, device=self.device)
        last = torch.zeros(0, dtype=torch.long, device=self.device)
        while waiting or rows:
            if waiting and (self.width - len(rows) >= max(self.width // 4, 1) or not rows):
                new = [waiting.popleft() for _ in range(min(self.width - len(rows), len(waiting)))]
                new_cache, new_mask, first = self.prefill([ids[i] for i in new])
                cache, mask = join(cache, mask, new_cache, new_mask)
                rows, last, fed = rows + new, torch.cat([last, first]), len(new)  # only the new rows got a token
            else:
                mask = F.pad(mask, (0, 1), value=1)  # the column of the token fed now
                logits = self.model(input_ids=last[:, None], attention_mask=mask, past_key_values=cache,
                                    position_ids=mask.sum(1, keepdim=True) - 1, use_cache=True).logits
                last, fed = logits[:, -1].argmax(-1), len(rows)
            for i, t in zip(rows[-fed:], last[-fed:].tolist()):
                out.setdefault(i, []).append(t)
            done = [out[i][-1] in self.stop_ids or len(out[i]) >= max_new_tokens for i in rows]
            if any(done):
                for i, d in zip(rows, done):
                    if d:
                        yield i, out.pop(i)
                keep = [k for k, d in enumerate(done) if not d]
                rows, last, mask = [rows[k] for k in keep], last[keep], mask[keep]
                cache.batch_select_indices(torch.tensor(keep, dtype=torch.long, device=self.device))
                cache, mask = trim(cache, mask)

    def prefill(self, prompts: list[list[int]]) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
        """The KV cache and mask of left-padded `prompts`, and each one's first greedy token."""
        enc = self.tokenizer.pad({"input_ids": prompts}, return_tensors="pt").to(self.device)
        cache, mask = DynamicCache(), enc["attention_mask"]
        position_ids = (mask.cumsum(1) - 1).clamp(min=0)
        logits = self.model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=position_ids,
                            past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        return cache, mask, logits[:, -1].argmax(-1)


def join(a: DynamicCache, mask_a: torch.Tensor, b: DynamicCache, mask_b: torch.Tensor
         ) -> tuple[DynamicCache, torch.Tensor]:
    """Two batches' KV caches as one: rows stacked, the shorter left-padded (masked out) to the longer."""
    if mask_a.shape[0] == 0:
        return b, mask_b
    n = max(mask_a.shape[1], mask_b.shape[1])
    for la, lb in zip(a.layers, b.layers):
        la.keys = torch.cat([F.pad(la.keys, (0, 0, n - la.keys.shape[2], 0)),
                             F.pad(lb.keys, (0, 0, n - lb.keys.shape[2], 0))])
        la.values = torch.cat([F.pad(la.values, (0, 0, n - la.values.shape[2], 0)),
                               F.pad(lb.values, (0, 0, n - lb.values.shape[2], 0))])
    return a, torch.cat([F.pad(mask_a, (n - mask_a.shape[1], 0)), F.pad(mask_b, (n - mask_b.shape[1], 0))])


def trim(cache: DynamicCache, mask: torch.Tensor) -> tuple[DynamicCache, torch.Tensor]:
    """Drop the leading columns that no row attends to any more (their rows left the batch)."""
    lead = int((mask.sum(0) == 0).cumprod(0).sum()) if mask.shape[0] else 0
    if lead:
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[:, :, lead:], layer.values[:, :, lead:]
        mask = mask[:, lead:]
    return cache, mask
