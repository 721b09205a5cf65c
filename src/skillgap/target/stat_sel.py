"""`stat-sel`: STAT-Sel, from He et al., "Skill-Targeted Adaptive Training" (STAT).

For every (failed item, missing skill) pair of the Missing-Skill-Profile, pick `per_pair` pool
items labelled with that skill; the union therefore gives each skill a share equal to its
profile count, and is subsampled uniformly to the budget. The paper picks 5 items per pair;
here `per_pair` defaults to the smallest number that reaches the budget, so small profiles still
fill it. A skill whose pool runs dry cycles through its items again; a missing skill with no pool item at
all gives its share to the other missing skills (noted, and printed), so the set always has the budget.
"""

from __future__ import annotations

import math
import random
from typing import Any

from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.target import Mixture, Request, draw, require_missing


def stat_sel(req: Request, per_pair: int | None = None) -> Mixture:
    missing = require_missing(req, "stat-sel")
    rng = random.Random(f"stat-sel/{req.seed}")
    labelled = {s: [it for it in req.pool if s in it.skills] for s in sorted(missing)}
    # A missing skill no pool item carries cannot be trained on here: its pairs go to the other missing skills in
    # proportion to theirs, so the set still has the budget and "equal budget" comparisons stay equal.
    short = {s: missing[s] for s, items in labelled.items() if not items}
    if len(short) == len(missing):
        raise ConfigError(f"stat-sel: no pool item is labelled with any missing skill ({', '.join(sorted(missing))}); "
                          "give a training pool (--train-data) whose items carry these skills, or use --strategy "
                          "uniform.")
    pairs = sum(missing.values()) - sum(short.values())
    per_pair = max(per_pair or 0, math.ceil(req.budget / pairs))  # enough to fill the budget
    picked: list[Item] = []
    taken: set[str] = set()  # an item already chosen for one skill is reused for another only if needed
    for skill, items in labelled.items():
        picked += draw(items, missing[skill] * per_pair, rng, taken)
    items = rng.sample(picked, req.budget) if len(picked) > req.budget else picked
    rng.shuffle(items)
    notes: dict[str, Any] = {"pairs": pairs, "per_pair": per_pair, "selected": len(picked),
                             "skills_without_items": short}
    if short:
        named = ", ".join(f"{s} ({n} failed)" for s, n in short.items())
        notes["warning"] = (f"stat-sel: no pool item is labelled {named}; {'its' if len(short) == 1 else 'their'} "
                            "share of the budget went to the other missing skills, in proportion to their counts.")
    return Mixture("stat-sel", items, notes=notes)
