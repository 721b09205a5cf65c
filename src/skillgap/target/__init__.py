"""Target: turn a missing-skill profile and a pool of items into a training set of a given budget.

Each strategy lives in its own module and cites its paper; they share this interface:

    mixture = build_mixture("stat-sel", Request(missing, pool, budget=512, seed=0, skills=suite.skills))

The result is a `Mixture`: the training items in the order the trainer will see them, plus the
per-skill accounting the report shows. Strategies load lazily by name.
"""

from __future__ import annotations

import importlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from skillgap.attribution import Targets
from skillgap.errors import ConfigError, unknown_name
from skillgap.items import Item
from skillgap.skills import SkillSet

STRATEGIES: dict[str, str] = {
    "uniform": "skillgap.target.uniform:uniform",
    "stat-sel": "skillgap.target.stat_sel:stat_sel",
    "stat-syn": "skillgap.target.stat_syn:stat_syn",
    "curriculum": "skillgap.target.curriculum:curriculum",
    "skillmix": "skillgap.target.skillmix:skillmix",
    "active": "skillgap.target.active:active",
}
TARGETED = ("stat-sel", "stat-syn", "curriculum")  # the strategies that spend the budget on diagnosed skills


@dataclass
class Request:
    """What every strategy may use. `missing`: skill -> weight, STAT's Missing-Skill-Profile (counts of failed items)
    or a joint diagnosis's gaps (how far each is below mastery), or a whole diagnosis (`skillgap.attribution.Targets`,
    what `find_gaps` returns), which also sets `mastered` and `fallback`."""

    missing: dict[str, float] | Targets
    pool: Sequence[Item]  # existing labelled training items (checked against the test items by the recipes)
    budget: int  # number of training examples to return
    seed: int = 0
    skills: SkillSet | None = None  # the inventory and its prerequisite graph, when known
    suite: Any = None  # a suite with `synthesize(skill, n, seed)`, for stat-syn
    teacher: Any = None  # a model backend, for stat-syn on data without a generator
    replay: float = 0.0  # share of the budget drawn uniformly from the pool (see `with_replay`)
    skillmix_k: int = 2  # skillmix: skills drawn together per example
    query_types: tuple[tuple[str, str], ...] = ()  # skillmix: (name, definition); () for the built-in list
    # the skills safe beside a gap (a joint or accuracy diagnosis): stat-sel prefers items whose other skills are these;
    # None with STAT's counts, which say nothing of mastery
    mastered: frozenset[str] | None = None
    student: Any = None  # the model being trained (a ModelConfig): what `active` scores the pool with
    fallback: str | None = None  # why the diagnosis cannot be trusted: a targeted strategy trains on uniform instead

    def __post_init__(self) -> None:
        if isinstance(self.missing, Targets):
            t = self.missing
            self.missing, self.mastered, self.fallback = dict(t.weights), t.mastered, t.fallback


@dataclass
class Mixture:
    """A training set in training order, and how it was made."""

    strategy: str
    items: list[Item]
    order: str = "shuffled"  # or "curriculum": the trainer must keep this order
    notes: dict[str, Any] = field(default_factory=dict)

    def by_skill(self) -> dict[str, int]:
        return dict(Counter(s for it in self.items for s in it.skills).most_common())

    def by_k(self) -> dict[str, int]:
        return {str(k): n for k, n in sorted(Counter(it.k for it in self.items).items())}

    def weights(self) -> dict[str, float]:
        """Each skill's share of the skill labels in the set (sums to 1)."""
        c = self.by_skill()
        total = sum(c.values()) or 1
        return {s: n / total for s, n in c.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "n_examples": len(self.items), "order": self.order,
                "by_skill": self.by_skill(), "by_k": self.by_k(), "weights": self.weights(), "notes": self.notes}


def build_mixture(strategy: str, req: Request) -> Mixture:
    if strategy not in STRATEGIES:
        raise unknown_name("strategy", strategy, list(STRATEGIES))
    if req.budget < 1:
        raise ConfigError(f"--budget must be at least 1, got {req.budget}.")
    if not 0 <= req.replay < 1:
        raise ConfigError(f"--replay is a share of the budget in [0, 1), got {req.replay}.")
    fallback = None
    if strategy in TARGETED and req.fallback:  # thin evidence: uniform examples, which also teach the answer format
        fallback, strategy = f"{strategy} fell back to uniform: {req.fallback}", "uniform"
    module, _, attr = STRATEGIES[strategy].partition(":")
    # uniform is replay already; at least one example stays the strategy's
    n_replay = min(round(req.budget * req.replay), req.budget - 1) if strategy != "uniform" else 0
    mixture = getattr(importlib.import_module(module), attr)(replace(req, budget=req.budget - n_replay))
    if fallback:
        mixture.notes["fallback"] = mixture.notes["warning"] = fallback
    if n_replay:
        mixture = with_replay(mixture, req.pool, n_replay, req.seed)
    # No check of the items' `split` labels here: a pool's items are training items because of where they come
    # from (a file without `split` fields reads as "test"). The recipes compare them with the test items by id and
    # prompt text instead (`skillgap.verify.assert_disjoint`), before any model work.
    mixture.items = unique_ids(mixture.items)
    if req.missing:  # how much of the set each diagnosed skill's examples are, whatever the strategy
        n = len(mixture.items) or 1
        mixture.notes["touching"] = {s: sum(s in it.skills for it in mixture.items) / n
                                     for s in sorted(req.missing, key=lambda s: -req.missing[s])}
    return mixture


def with_replay(mixture: Mixture, pool: Sequence[Item], n: int, seed: int) -> Mixture:
    """`n` more examples drawn uniformly from the pool, spread evenly through the training order.

    A targeted set that leaves out the skills a model knows invites forgetting them (catastrophic forgetting;
    experience replay, Rolnick et al., 2019, keeps a share of old data in every batch). Replayed items are
    spaced evenly, so every prefix of the order (a checkpoint at a smaller budget) holds the same share, and a
    curriculum keeps its order. Items the strategy chose already are drawn last."""
    replayed = draw(pool, n, random.Random(f"replay/{seed}"), {it.id for it in mixture.items})
    if not replayed:
        return mixture
    total = len(mixture.items) + len(replayed)
    step = total / len(replayed)  # >= 1, so the slots are distinct
    slots = {int((i + 0.5) * step) for i in range(len(replayed))}
    targeted, again = iter(mixture.items), iter(replayed)
    items = [next(again) if pos in slots else next(targeted) for pos in range(total)]
    notes = mixture.notes | {"replay": {"share": len(replayed) / total, "examples": len(replayed),
                                        "targeted": len(mixture.items)}}
    return replace(mixture, items=items, notes=notes)


def unique_ids(items: list[Item]) -> list[Item]:
    """A repeated item (a small pool cycled through) gets `~2`, `~3`... so ids stay unique in train.jsonl."""
    seen: Counter[str] = Counter()
    out = []
    for it in items:
        seen[it.id] += 1
        out.append(it if seen[it.id] == 1 else replace(it, id=f"{it.id}~{seen[it.id]}"))
    return out


def quotas(counts: dict[str, int], total: int) -> dict[str, int]:
    """Split `total` in proportion to `counts` (largest remainder; ties go to the earlier skill)."""
    mass = sum(counts.values())
    if mass <= 0:
        return {}
    exact = {s: total * c / mass for s, c in counts.items()}
    out = {s: int(x) for s, x in exact.items()}
    rest = sorted(counts, key=lambda s: -(exact[s] - out[s]))
    for s in rest[: total - sum(out.values())]:
        out[s] += 1
    return {s: n for s, n in out.items() if n}


def draw(candidates: Sequence[Item], n: int, rng: random.Random, taken: set[str] | None = None) -> list[Item]:
    """`n` items from `candidates`: without replacement while they last, then cycling through again.

    Items whose ids are in `taken` (chosen earlier, for another skill) come last; the ids drawn are
    added to it.
    """
    if not candidates:
        return []
    taken = set() if taken is None else taken
    fresh = [it for it in candidates if it.id not in taken]
    out = rng.sample(fresh, min(n, len(fresh)))
    while len(out) < n:
        out += rng.sample(list(candidates), min(n - len(out), len(candidates)))
    taken.update(it.id for it in out)
    return out


def require_missing(req: Request, strategy: str) -> dict[str, int]:
    missing = {s: c for s, c in req.missing.items() if c > 0}
    if not missing:
        raise ConfigError(f"{strategy}: the profile names no missing skills (no graded item was wrong; "
                          "unparsable outputs name none), so there is nothing to target; use --strategy uniform.")
    return missing
