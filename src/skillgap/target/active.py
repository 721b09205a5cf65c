"""`active`: the pool items the student gets most wrong, by its loss on their reference answers; no skills at all.

The skill-blind rival every targeted strategy has to beat: loss-based selection ("focus on the biggest losers",
Jiang et al. 2019, arXiv 1910.00762; RHO-LOSS, Mindermann et al. 2022, refines it with a holdout model, since raw
loss also favours noisy points). If naming skills buys anything, `stat-sel` must beat this at the same budget. Scoring is a forward pass per item, so it scores a seeded random sample of the pool of at most
`CANDIDATES_PER_EXAMPLE` x the budget (4 000 items take minutes on a CPU); the highest-loss ones are the set,
shuffled with the seed.
"""

from __future__ import annotations

import random
import statistics

from skillgap.errors import ConfigError
from skillgap.target import Mixture, Request, draw

CANDIDATES_PER_EXAMPLE = 4


def active(req: Request) -> Mixture:
    if req.student is None:
        raise ConfigError("--strategy active scores the pool with the model being trained; it needs that model "
                          "(the recipes pass it).")
    from skillgap.models.hf import load_merged, pick_device
    from skillgap.scoring import item_losses
    from skillgap.train import use_bf16

    rng = random.Random(f"active/{req.seed}")
    pool = list(req.pool)
    n = min(len(pool), CANDIDATES_PER_EXAMPLE * req.budget)
    candidates = rng.sample(pool, n)
    model, tok = load_merged(req.student)
    model.to(pick_device(req.student.device))
    losses = item_losses(model, tok, candidates, bool(tok.chat_template),
                         bf16=use_bf16("auto", pick_device(req.student.device)))
    del model
    ranked = [it for _, it in sorted(zip(losses, candidates), key=lambda t: (-t[0], t[1].id))]
    items = ranked[: req.budget]
    if len(items) < req.budget:  # a pool smaller than the budget: cycle through it again
        items += draw(ranked, req.budget - len(items), rng)
    rng.shuffle(items)
    chosen = sorted(losses, reverse=True)[: req.budget]
    return Mixture("active", items, notes={"scored": n, "pool": len(pool),
                                           "loss": {"chosen_mean": statistics.fmean(chosen),
                                                    "scored_mean": statistics.fmean(losses),
                                                    "threshold": chosen[-1]}})
