"""`curriculum`: the STAT-Sel selection, trained prerequisites first along the skill graph.

Curriculum learning over a skills graph follows Skill-it (Chen et al., "A Data-Driven Skills
Framework for Understanding and Training Language Models"), whose curriculum baseline orders
data by the graph. Keeping STAT-Sel's items and changing only their order isolates what order
buys: items are grouped by the graph depth of the deepest missing skill they were chosen for
(depth 0: no prerequisites), shallow groups first, shuffled within a group. The trainer keeps
this order (the mixture says `order="curriculum"`).
"""

from __future__ import annotations

import random

from skillgap.skills import SkillSet
from skillgap.target import Mixture, Request, require_missing
from skillgap.target.stat_sel import stat_sel


def depths(skills: SkillSet) -> dict[str, int]:
    """Longest prerequisite path below each skill."""
    d: dict[str, int] = {}
    for s in skills.topological_order():
        d[s] = 1 + max((d[p] for p in skills[s].prerequisites), default=-1)
    return d


def curriculum(req: Request) -> Mixture:
    missing = require_missing(req, "curriculum")
    if req.skills is None:
        raise ValueError("curriculum needs a skill inventory with prerequisites; this data has none.")
    depth = depths(req.skills)
    selected = stat_sel(req)
    rng = random.Random(f"curriculum/{req.seed}")

    def level(item_skills: tuple[str, ...]) -> int:
        return max((depth.get(s, 0) for s in item_skills if s in missing), default=0)

    keyed = [(level(it.skills), rng.random(), it) for it in selected.items]
    items = [it for _, _, it in sorted(keyed, key=lambda t: (t[0], t[1]))]
    stages = {str(lv): sum(1 for l, _, _ in keyed if l == lv) for lv in sorted({l for l, _, _ in keyed})}
    return Mixture("curriculum", items, order="curriculum", notes=selected.notes | {"stages": stages})
