"""Where a skill lives in the weights: localization by grafting (Panigrahi, Saunshi, Zhao, Arora, ICML 2023,
arXiv 2302.06600).

After fine-tuning, a binary mask γ over a tiny share of the parameters, grafted onto the pre-trained model,

    θ(γ) = θ_pre + γ ⊙ τ,        τ = θ_ft − θ_pre,

keeps most of the fine-tuned model's skill. The mask is found as the paper's code finds it
(`src/graft_trainer.py`), not with an optimizer:

1. **base patch** γ_base: the top-s coordinates of |τ| over every graftable tensor (s = sparsity × their size);
2. **relaxation**: a real score S per coordinate, S ~ U(0, 1), and the soft mask
   γ = γ_base + (1 − 2γ_base) · σ(S − b), b = 10, so γ ≈ γ_base at the start and σ *flips* coordinates;
3. **one step** per pass over the skill's items (≤ `max_batches` mini-batches): set the weights to θ(γ),
   back-propagate the task loss to them, and build the score gradient by hand,
   ∂L/∂S = (1 − 2γ_base) · σ'(S − b) · (∇_θ L ⊙ τ), averaged over the batches; S ← S − lr · ∂L/∂S, lr = 1e7
   (the products ∇L ⊙ τ are tiny);
4. **selection**: after every step the mask is rounded (a coordinate flips where σ(S − b) > 1/2) and scored on
   the skill's items; the rounded mask with the best score is kept. There is no sparsity penalty: the size
   comes from the base patch and the few, large steps, so the kept mask's real sparsity is reported.

Graftable are the decoder blocks (`.layers.N.`): embeddings and the head stay pre-trained, as in the
paper's scripts. The movement baseline is γ_base itself; the random baseline draws as many coordinates
uniformly. Masks are stored sparse: the flat indices of the grafted coordinates, per tensor.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from skillgap.errors import ConfigError, DataError
from skillgap.scoring import completion_logprobs

GRAFTABLE = r"\.layers\.\d+\."


@dataclass
class GraftConfig:
    sparsity: float = 1e-4  # the base patch, as a share of the graftable parameters
    steps: int = field(default=10, metadata={  # the paper's num_train_epochs; 10 in run_graft_task.sh
        "help": "mask updates"})
    lr: float = field(default=1e7, metadata={
        "flag": "--graft-lr", "help": "score step size (default: 1e+07, the paper's)"})
    sigmoid_bias: float = field(default=10.0, metadata={"help": ""})
    batch_size: int = field(default=8, metadata={"flag": "--graft-batch-size", "help": ""})
    max_batches: int = 128  # mini-batches averaged into one step (the paper's gradient_accumulation_steps)
    seed: int = 0

    def check(self) -> None:
        if not 0 < self.sparsity < 1:
            raise ConfigError(f"sparsity must lie in (0, 1), got {self.sparsity}.")
        for name in ("steps", "batch_size", "max_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.")


@dataclass
class Mask:
    """Grafted coordinates per tensor (sorted flat indices), out of `total` graftable parameters."""

    coords: dict[str, torch.Tensor]
    shapes: dict[str, tuple[int, ...]]
    total: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(int(c.numel()) for c in self.coords.values())

    @property
    def sparsity(self) -> float:
        return self.count / self.total

    def touched(self) -> dict[str, int]:
        """Which tensors the mask grafts, and how many coordinates of each."""
        return {n: int(c.numel()) for n, c in self.coords.items() if c.numel()}

    def digest(self) -> str:
        """A content hash: two masks with the same coordinates share it, whatever found them."""
        h = hashlib.sha256()
        for n in sorted(self.coords):
            h.update(n.encode())
            h.update(self.coords[n].to(torch.int64).numpy().tobytes())
        return h.hexdigest()[:12]

    def dense(self, name: str) -> torch.Tensor:
        out = torch.zeros(math.prod(self.shapes[name]), dtype=torch.bool)
        out[self.coords[name]] = True
        return out.view(self.shapes[name])

    def overlap(self, other: Mask) -> float:
        """|self ∩ other| / |other|: the paper's (asymmetric) overlap of two tasks' masks."""
        both = sum(int(torch.isin(c, other.coords[n]).sum()) for n, c in self.coords.items() if n in other.coords)
        return both / other.count if other.count else math.nan

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({n: c.to(torch.int64).contiguous() for n, c in self.coords.items()}, str(path),
                  metadata={"skillgap": json.dumps({"shapes": self.shapes, "total": self.total, "meta": self.meta})})
        return path

    @classmethod
    def load(cls, path: str | Path) -> Mask:
        with safe_open(str(path), framework="pt") as f:
            head = json.loads(f.metadata()["skillgap"])
            coords = {n: f.get_tensor(n) for n in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        return cls(coords, {n: tuple(s) for n, s in head["shapes"].items()}, head["total"], head["meta"])


def graftable(model: torch.nn.Module, pattern: str = GRAFTABLE) -> dict[str, torch.nn.Parameter]:
    """The parameters a mask may graft, by name (tied weights once)."""
    out = {n: p for n, p in model.named_parameters() if re.search(pattern, n)}
    if not out:
        raise ConfigError(f"No parameter name matches {pattern!r}: nothing to graft "
                          f"(first names: {[n for n, _ in model.named_parameters()][:3]}).")
    return out


def task_vector(pre: dict[str, torch.Tensor], ft: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """τ = θ_ft − θ_pre on the graftable tensors (float32)."""
    missing = sorted(set(pre) - set(ft))
    if missing:
        raise ConfigError(f"The fine-tuned model lacks {len(missing)} tensors of the base (first: {missing[0]}): "
                          "is it a fine-tune of this base?")
    return {n: ft[n].detach().float() - pre[n].detach().float() for n in pre}


def _mask_of(flags: dict[str, torch.Tensor], total: int, **meta: Any) -> Mask:
    return Mask({n: f.flatten().nonzero().flatten() for n, f in flags.items()},
                {n: tuple(f.shape) for n, f in flags.items()}, total, meta)


def movement_mask(tau: dict[str, torch.Tensor], sparsity: float) -> Mask:
    """The base patch: the s coordinates that moved most in fine-tuning, |τ| largest over all tensors."""
    total = sum(t.numel() for t in tau.values())
    s = max(1, int(sparsity * total))
    flat = torch.cat([t.abs().flatten() for t in tau.values()])
    top = torch.topk(flat, s, sorted=False).indices
    flags = torch.zeros(total, dtype=torch.bool)
    flags[top] = True
    out, start = {}, 0
    for n, t in tau.items():
        out[n] = flags[start:start + t.numel()].view(t.shape)
        start += t.numel()
    return _mask_of(out, total, kind="movement", sparsity_asked=sparsity)


def random_mask(tau: dict[str, torch.Tensor], count: int, seed: int = 0) -> Mask:
    """`count` coordinates drawn uniformly without replacement over all graftable tensors."""
    total = sum(t.numel() for t in tau.values())
    picks = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
    coords, shapes, start = {}, {}, 0
    for n, t in tau.items():
        lo, hi = np.searchsorted(picks, [start, start + t.numel()])
        coords[n] = torch.from_numpy(picks[lo:hi] - start).to(torch.int64)
        shapes[n] = tuple(t.shape)
        start += t.numel()
    return Mask(coords, shapes, total, {"kind": "random", "seed": seed})


@torch.no_grad()
def graft(params: dict[str, torch.nn.Parameter], pre: dict[str, torch.Tensor], tau: dict[str, torch.Tensor],
          frac: dict[str, torch.Tensor] | Mask) -> None:
    """Set the weights to θ_pre + frac ⊙ τ in place (frac: a soft mask per tensor, or a binary Mask)."""
    for n, p in params.items():
        f = frac.dense(n).to(p.dtype) if isinstance(frac, Mask) else frac[n]
        p.copy_((pre[n].float() + f * tau[n]).to(p.dtype))


def soft_mask(base: torch.Tensor, scores: torch.Tensor, bias: float) -> torch.Tensor:
    """γ = γ_base + (1 − 2γ_base) σ(S − b): the base patch, with σ flipping coordinates in or out."""
    return base + (1 - 2 * base) * torch.sigmoid(scores - bias)


def score_gradient(grad_theta: torch.Tensor, tau: torch.Tensor, base: torch.Tensor, scores: torch.Tensor,
                   bias: float) -> torch.Tensor:
    """∂L/∂S by the chain rule through θ = θ_pre + γ(S) ⊙ τ: (1 − 2γ_base) σ'(S − b) (∇_θ L ⊙ τ)."""
    sig = torch.sigmoid(scores - bias)
    return (1 - 2 * base) * sig * (1 - sig) * grad_theta * tau


def rounded(base: torch.Tensor, scores: torch.Tensor, bias: float) -> torch.Tensor:
    """The binary mask of the current scores: round(γ), i.e. the base patch with σ(S − b) > 1/2 flipped."""
    return torch.round(soft_mask(base, scores, bias)).bool()


def find_mask(model: torch.nn.Module, pre: dict[str, torch.Tensor], tau: dict[str, torch.Tensor],
              batches: Iterable[dict[str, torch.Tensor]], score: Callable[[], float], cfg: GraftConfig,
              loss_fn: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor] | None = None,
              pattern: str = GRAFTABLE, on_step: Callable[[dict[str, Any]], None] | None = None,
              ) -> tuple[Mask, list[dict[str, Any]]]:
    """The grafting optimisation (module docstring), from the movement base patch at `cfg.sparsity`.

    `batches` is re-read every step (a list, or anything iterable more than once); `score()` rates the model
    as it is (the rounded mask grafted), higher is better: the paper's train + validation accuracy. Returns the
    best rounded mask and, per step, its score, size and the mean loss the step's gradient was taken at.
    """
    cfg.check()
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)
    params = graftable(model, pattern)
    base_mask = movement_mask(tau, cfg.sparsity)
    base = {n: base_mask.dense(n).float() for n in params}
    gen = torch.Generator().manual_seed(cfg.seed)
    scores = {n: torch.rand(p.shape, generator=gen) for n, p in params.items()}
    flags_before = {n: p.requires_grad for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.requires_grad_(n in params)
    was_training = model.training
    model.eval()  # no dropout: the gradient is of the loss the rounded mask is judged by
    best: tuple[float, Mask] | None = None
    history: list[dict[str, Any]] = []
    for step in range(1, cfg.steps + 1):
        graft(params, pre, tau, {n: soft_mask(base[n], scores[n], cfg.sigmoid_bias) for n in params})
        total = {n: torch.zeros_like(s) for n, s in scores.items()}
        losses = []
        for i, batch in enumerate(batches):
            if i >= cfg.max_batches:
                break
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model, batch)
            loss.backward()
            losses.append(loss.item())
            for n, p in params.items():
                if p.grad is not None:
                    total[n] += p.grad.float()
        if not losses:
            raise DataError("find_mask got no batches: the skill has no items to localize it on.")
        with torch.no_grad():
            for n in params:
                scores[n] -= cfg.lr * score_gradient(total[n] / len(losses), tau[n], base[n], scores[n],
                                                     cfg.sigmoid_bias)
            flags = {n: rounded(base[n], scores[n], cfg.sigmoid_bias) for n in params}
            mask = _mask_of(flags, base_mask.total, kind="graft", sparsity_asked=cfg.sparsity, step=step,
                            lr=cfg.lr, sigmoid_bias=cfg.sigmoid_bias, seed=cfg.seed)
            graft(params, pre, tau, mask)
        value = float(score())
        row = {"step": step, "score": value, "loss": sum(losses) / len(losses), "count": mask.count,
               "sparsity": mask.sparsity, "flipped_in": int(sum((f & ~base[n].bool()).sum() for n, f in flags.items())),
               "flipped_out": int(sum((~f & base[n].bool()).sum() for n, f in flags.items()))}
        history.append(row)
        if on_step:
            on_step(row)
        if best is None or value > best[0]:
            best = (value, mask)
    model.zero_grad(set_to_none=True)
    for n, p in model.named_parameters():
        p.requires_grad_(flags_before[n])
    model.train(was_training)
    assert best is not None
    best[1].meta["score"] = best[0]
    return best[1], history


# ---------------------------------------------------------------- label-word scoring and calibration

def choice_probs(model: torch.nn.Module, tokenizer: Any, items: list, conversational: bool,
                 batch_size: int = 32) -> list[list[float]]:
    """p(choice | prompt) for each item over its `metadata["choices"]`: each label word's summed token
    log-probability after the prompt, softmaxed over the choices (LM-BFF's label-word scoring, which the
    paper's accuracy and calibration use). One forward pass per (item, choice), no generation."""
    flat = [replace(it, answer=c, completion=c) for it in items for c in it.metadata["choices"]]
    sums = [pred.gather(1, targets[:, None]).sum().item()
            for pred, targets in completion_logprobs(model, tokenizer, flat, conversational, batch_size)]
    out, at = [], 0
    for it in items:
        n = len(it.metadata["choices"])
        out.append(torch.softmax(torch.tensor(sums[at:at + n]), 0).tolist())
        at += n
    return out


def calibration(probs: list[list[float]], labels: list[int], bins: int = 10) -> dict[str, Any]:
    """Accuracy of the most probable choice and its expected calibration error: the confidence (that choice's
    probability) binned in `bins` equal widths of (0, 1], ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b|;
    and the mean negative log-probability of the gold choice (`nll`), which moves even when confidence saturates."""
    if not probs:
        return {"accuracy": math.nan, "ece": math.nan, "confidence": math.nan, "nll": math.nan, "n": 0}
    conf = [max(p) for p in probs]
    right = [p.index(max(p)) == y for p, y in zip(probs, labels)]
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(conf) if lo < c <= hi or (b == 0 and c == 0)]
        if idx:
            ece += len(idx) / len(conf) * abs(sum(right[i] for i in idx) / len(idx) - sum(conf[i] for i in idx) / len(idx))
    nll = -sum(math.log(max(p[y], 1e-300)) for p, y in zip(probs, labels)) / len(probs)
    return {"accuracy": sum(right) / len(right), "ece": ece, "confidence": sum(conf) / len(conf), "nll": nll,
            "n": len(right)}


def label_calibration(model: torch.nn.Module, tokenizer: Any, items: list, conversational: bool) -> dict[str, Any]:
    """`calibration` of the label-word probabilities on classification items, against their gold words."""
    return calibration(choice_probs(model, tokenizer, items, conversational),
                       [it.metadata["choices"].index(it.answer) for it in items])
