"""Teacher-forced scoring: items rendered as training renders them, and a model's log-probabilities of their
reference completions given the prompts.

Training (`skillgap.train`), Skill-it's per-skill answer loss (the online mixture's signal), the mask search
and label-word scoring of localization (`skillgap.localize`) all read the same rendering and the same padded
batches from here, so none of them depends on the trainer. Forward passes only: no generation.
"""

from __future__ import annotations

from typing import Any, Iterator

from skillgap.items import Item


def to_record(item: Item, conversational: bool = True) -> dict[str, Any]:
    """An item as a TRL prompt/completion record: conversational, or plain text for a model without a chat template.

    The completion is the item's worked solution; without one, the bare answer (a weak target,
    but honest about what the data hold). A `messages` item ending in an assistant turn uses that.
    """
    chat = item.chat()
    if chat[-1]["role"] == "assistant":
        prompt, completion = chat[:-1], chat[-1]["content"]
    else:
        prompt = chat
        completion = item.completion if item.completion is not None else f"The answer is {item.answer}."
    if not conversational:
        return {"prompt": "\n\n".join(m["content"] for m in prompt), "completion": completion}
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": completion}]}


def encode_completions(tokenizer: Any, items: list[Item], conversational: bool) -> list[tuple[list[int], int]]:
    """Each item as (token ids of prompt + reference completion, number of prompt tokens), rendered as training
    renders it: what a loss on the completion alone is computed over."""
    rows = []
    for it in items:
        rec = to_record(it, conversational)
        prompt = tokenizer.apply_chat_template(rec["prompt"], add_generation_prompt=True, tokenize=False) \
            if conversational else rec["prompt"]
        answer = rec["completion"][0]["content"] if conversational else rec["completion"]
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full = tokenizer(prompt + answer, add_special_tokens=False)["input_ids"]
        rows.append((full, len(p)))
    return rows


def pad_completions(rows: list[tuple[list[int], int]], pad: int) -> dict[str, Any]:
    """Encoded rows as one right-padded batch: `input_ids`, `attention_mask`, and `labels` that are -100 outside
    the reference completion (the loss a trainer takes on the completion alone)."""
    import torch

    width = max(len(f) for f, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for r, (f, n_prompt) in enumerate(rows):
        ids[r, :len(f)] = torch.tensor(f)
        mask[r, :len(f)] = 1
        labels[r, n_prompt:len(f)] = torch.tensor(f[n_prompt:])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def completion_batches(tokenizer: Any, items: list[Item], batch_size: int) -> list[dict[str, Any]]:
    """Mini-batches with the loss on the reference completion only, rendered as training renders it (the mask
    search's gradient is taken on these)."""
    rows = encode_completions(tokenizer, items, bool(tokenizer.chat_template))
    return [pad_completions(rows[i:i + batch_size], _pad_id(tokenizer)) for i in range(0, len(rows), batch_size)]


def completion_logprobs(model: Any, tokenizer: Any, items: list[Item], conversational: bool,
                        batch_size: int = 64) -> Iterator[tuple[Any, Any]]:
    """Per item, in order: the log-probabilities at its reference completion's positions ([n, vocab]) and the
    completion's token ids ([n]). Forward passes only, in batches, the model in eval mode and no gradient."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for i in range(0, len(items), batch_size):
                rows = encode_completions(tokenizer, items[i:i + batch_size], conversational)
                batch = pad_completions(rows, _pad_id(tokenizer))
                logits = model(input_ids=batch["input_ids"].to(device),
                               attention_mask=batch["attention_mask"].to(device)).logits.float()
                logp = torch.log_softmax(logits, -1)
                for r, (f, n_prompt) in enumerate(rows):
                    yield logp[r, n_prompt - 1:len(f) - 1], torch.tensor(f[n_prompt:], device=device)
    finally:
        if was_training:
            model.train()


def answer_scores(model: Any, tokenizer: Any, items: dict[str, list[Item]], conversational: bool,
                  batch_size: int = 64) -> dict[str, dict[str, float]]:
    """Per skill, `loss`: the mean cross-entropy of the reference completion's tokens given the prompt,
    and `accuracy`: the share of items whose every completion token is the model's greedy choice.

    Skill-it's per-skill metrics: only the answer tokens count (for LEGO and Addition, the label
    token), nothing of the prompt and no end-of-turn token. One forward pass, no generation.
    """
    out: dict[str, dict[str, float]] = {}
    for skill, its in items.items():
        total, count, right = 0.0, 0, 0
        for pred, targets in completion_logprobs(model, tokenizer, its, conversational, batch_size):
            if len(targets):
                total -= pred.gather(1, targets[:, None]).sum().item()
                count += len(targets)
                right += bool((pred.argmax(-1) == targets).all())
        out[skill] = {"loss": total / max(count, 1), "accuracy": right / max(len(its), 1)}
    return out


def item_losses(model: Any, tokenizer: Any, items: list[Item], conversational: bool, batch_size: int = 16,
                bf16: bool = False) -> list[float]:
    """Each item's mean cross-entropy per token of its reference completion given the prompt (teacher forcing),
    in the items' order: how wrong the model is about the answer it should give, what `active` selection ranks by.
    Items of similar length share a batch (little padding); with `bf16`, under bf16 autocast."""
    import torch
    import torch.nn.functional as F

    rows = encode_completions(tokenizer, items, conversational)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    out = [0.0] * len(rows)
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            batch = pad_completions([rows[j] for j in idx], _pad_id(tokenizer))
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits[:, :-1]
            labels = batch["labels"][:, 1:].to(device)
            loss = F.cross_entropy(logits.float().transpose(1, 2), labels, reduction="none")  # [b, L-1]
            for r, j in enumerate(idx):
                out[j] = float(loss[r].sum() / (labels[r] != -100).sum().clamp(min=1))
    return out
