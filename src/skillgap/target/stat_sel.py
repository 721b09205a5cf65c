"""`stat-sel`: STAT-Sel, from He et al., "Skill-Targeted Adaptive Training" (STAT).

For every (failed item, missing skill) pair of the Missing-Skill-Profile, pick `per_pair` pool
items labelled with that skill; the union therefore gives each skill a share equal to its
profile count, and is subsampled uniformly to the budget. The paper picks 5 items per pair;
here `per_pair` defaults to the smallest number that reaches the budget, so small profiles still
fill it. A skill whose pool runs dry cycles through its items again; a missing skill with no pool item at
all gives its share to the other missing skills (noted, and printed), so the set always has the budget.

Given a diagnosis that knows mastery (`Request.mastered`: the joint model of `skillgap.attribution`, or per-skill
accuracy), the budget is instead split over the gaps in proportion to their weights (how far each is below
mastery), and each gap's items are drawn first from those whose other skills are all mastered, so the gap is the
item's only obstacle: an item failed for a second, unmastered skill teaches the gap less. Within a gap the pool's
mix of compositions (k) is kept: preferring clean items alone would, for a model that masters few skills, leave
only single-skill items, and the main job lost two thirds of its gain that way (+8 pp against +23).
"""

from __future__ import annotations

import math
import random
from typing import Any

from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.target import Mixture, Request, draw, quotas, require_missing


def stat_sel(req: Request, per_pair: int | None = None) -> Mixture:
    missing = require_missing(req, "stat-sel")
    rng = random.Random(f"stat-sel/{req.seed}")
    labelled = {s: [it for it in req.pool if s in it.skills] for s in sorted(missing)}
    if req.mastered is not None:
        return allotted(req, missing, labelled, rng)
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


def allotted(req: Request, missing: dict[str, float], labelled: dict[str, list[Item]],
             rng: random.Random) -> Mixture:
    """The budget in proportion to the gaps' weights; each gap's items whose other skills are mastered first."""
    mastered = req.mastered or frozenset()
    short = {s: missing[s] for s, items in labelled.items() if not items}
    if len(short) == len(missing):
        raise ConfigError(f"stat-sel: no pool item is labelled with any gap ({', '.join(sorted(missing))}); give a "
                          "training pool (--train-data) whose items carry these skills, or use --strategy uniform.")
    share = quotas({s: w for s, w in missing.items() if s not in short}, req.budget)
    picked: list[Item] = []
    taken: set[str] = set()
    clean_picked: dict[str, int] = {}
    for skill, n in share.items():
        # the pool's own mix of compositions (k) for this skill, so the set still teaches composed items when the
        # model masters few skills (then a clean item is mostly a single-skill one); the clean ones first within k
        by_k: dict[int, list[Item]] = {}
        for it in labelled[skill]:
            by_k.setdefault(it.k, []).append(it)
        clean_picked[skill] = 0
        for k, m in quotas({k: len(v) for k, v in sorted(by_k.items())}, n).items():
            clean = [it for it in by_k[k] if set(it.skills) - {skill} <= mastered]
            first = draw(clean, min(m, len(clean)), rng, taken)
            rest = [it for it in by_k[k] if not set(it.skills) - {skill} <= mastered] or by_k[k]
            picked += first + draw(rest, m - len(first), rng, taken)
            clean_picked[skill] += len(first)
    rng.shuffle(picked)
    notes: dict[str, Any] = {"allotment": share, "only_obstacle": clean_picked, "skills_without_items": short}
    if short:
        notes["warning"] = (f"stat-sel: no pool item is labelled {', '.join(sorted(short))}; the budget went to the "
                            "other gaps, in proportion to their shortfalls.")
    return Mixture("stat-sel", picked, notes=notes)
