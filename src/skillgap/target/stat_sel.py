"""`stat-sel`: STAT-Sel, from He et al., "Skill-Targeted Adaptive Training" (STAT).

For every (failed item, missing skill) pair of the Missing-Skill-Profile, pick `per_pair` pool
items labelled with that skill; the union therefore gives each skill a share equal to its
profile count, and is subsampled uniformly to the budget. The paper picks 5 items per pair;
here `per_pair` defaults to the smallest number that reaches the budget, so small profiles still
fill it. A skill whose pool runs dry cycles through its items again.
"""

from __future__ import annotations

import math
import random

from skillgap.items import Item
from skillgap.target import Mixture, Request, draw, require_missing


def stat_sel(req: Request, per_pair: int | None = None) -> Mixture:
    missing = require_missing(req, "stat-sel")
    rng = random.Random(f"stat-sel/{req.seed}")
    pairs = sum(missing.values())
    per_pair = per_pair or math.ceil(req.budget / pairs)
    picked: list[Item] = []
    short: dict[str, int] = {}
    taken: set[str] = set()  # an item already chosen for one skill is reused for another only if needed
    for skill in sorted(missing):
        labelled = [it for it in req.pool if skill in it.skills]
        if not labelled:
            short[skill] = missing[skill]
            continue
        picked += draw(labelled, missing[skill] * per_pair, rng, taken)
    if not picked:
        raise ValueError(f"stat-sel: no pool item is labelled with any missing skill ({', '.join(sorted(missing))}).")
    items = rng.sample(picked, req.budget) if len(picked) > req.budget else picked
    rng.shuffle(items)
    return Mixture("stat-sel", items, notes={"pairs": pairs, "per_pair": per_pair, "selected": len(picked),
                                             "skills_without_items": short})
