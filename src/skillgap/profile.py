"""Profile: per-skill accuracy with intervals, the composition curve, and the missing-skill profile.

Input is the graded records of one run; output is a `Profile`, a plain dataclass that serialises
to the JSON `skillgap profile` writes. Every item counts: accuracy is correct / all graded items,
so an output that could not be parsed is wrong, and the format-failure rate (`unparsed_rate`) is
reported beside it. Leaving unparsed items out of the denominator would compare before and after
on different subsets of the same items, and call a model that learned the answer format worse.
The profile also lists each item's outcome (`records`), so two profiles of the same items can be
compared pair by pair (`skillgap.verify`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from skillgap.answers import numbers_in
from skillgap.attribution import Attribution, attribute, outcomes_of
from skillgap.items import Record
from skillgap.skills import SkillSet

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); (0, 1) when n == 0.

    Chosen over the normal approximation because it stays inside [0, 1] and behaves at
    accuracies near 0 or 1, which small per-skill samples hit all the time.
    """
    if n == 0:
        return 0.0, 1.0
    from statsmodels.stats.proportion import proportion_confint  # lazy: scipy and statsmodels take a second to import

    low, high = proportion_confint(correct, n, alpha=math.erfc(z / math.sqrt(2)), method="wilson")
    p = correct / n
    # Exact at the edges (the formula leaves 1e-17 of rounding there), and never excluding p itself.
    lo = 0.0 if correct == 0 else min(p, max(0.0, float(low)))
    hi = 1.0 if correct == n else max(p, min(1.0, float(high)))
    return lo, hi


@dataclass(frozen=True)
class Score:
    n: int  # every graded item, parsed or not
    correct: int
    accuracy: float  # correct / n: an unparsed output is a wrong answer
    ci_low: float
    ci_high: float
    unparsed: int = 0  # items whose output had no gradable answer (in n, never correct)
    unparsed_rate: float = 0.0  # the format-failure rate, unparsed / n
    truncated: int = 0  # of the unparsed: replies cut off at the token limit (raise --max-new-tokens)

    @classmethod
    def of(cls, records: list[Record]) -> Score:
        """Counted over answers: an item answered several times (an imported log's epochs) counts each attempt."""
        counts = [trials(r) for r in records]
        n = sum(t for t, _, _ in counts)
        c = sum(h for _, h, _ in counts)
        unparsed = sum(u for _, _, u in counts)
        lo, hi = wilson(c, n)
        return cls(n, c, c / n if n else 0.0, lo, hi, unparsed, unparsed / n if n else 0.0,
                   sum(r.grade.status == "truncated" for r in records))


@dataclass(frozen=True)
class SkillScore(Score):
    id: str = ""
    name: str = ""
    alone: dict[str, Any] = field(default_factory=dict)  # the same on k = 1 items only


@dataclass(frozen=True)
class KScore(Score):
    k: int = 0


SCORE_FIELDS = ("n", "correct", "accuracy", "ci_low", "ci_high", "unparsed", "unparsed_rate", "truncated")


@dataclass
class Profile:
    skills: list[SkillScore]
    by_k: list[KScore]
    missing: dict[str, int]
    overall: Score
    run_id: str = ""
    model: str = ""
    data: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)  # one outcome per item, for paired tests
    rules: dict[str, int] = field(default_factory=dict)  # items per grading rule (Grade.rule): how `auto` read them
    attribution: dict[str, Any] = field(default_factory=dict)  # the joint skill model (skillgap.attribution)

    def to_dict(self) -> dict[str, Any]:
        def score(s: Score, head: dict[str, Any]) -> dict[str, Any]:
            d = asdict(s)
            return head | {k: d[k] for k in SCORE_FIELDS} | {k: v for k, v in d.items() if k == "alone"}

        return {
            "run_id": self.run_id, "model": self.model, "data": self.data,
            "overall": score(self.overall, {}),
            "skills": [score(s, {"id": s.id, "name": s.name}) for s in self.skills],
            "by_k": [score(s, {"k": s.k}) for s in self.by_k],
            "missing": self.missing,
            # every skill's mastery fitted jointly, and the gaps weakest first (skillgap.attribution)
            "mastery": self.attribution.get("mastery", {}),
            "gaps": self.attribution.get("gaps", []),
            "attribution": {k: v for k, v in self.attribution.items() if k not in ("mastery", "gaps")},
            "rules": self.rules,
            "records": self.records,
        }


def trials(r: Record) -> tuple[int, int, int]:
    """(answers, right, ungradable) of one item: (1, 0 or 1, 0 or 1), or an imported item's counts over its epochs
    (`metadata.attempts`, `.hits`, `.ungraded`, as `skillgap.logs.counted` writes them)."""
    m = r.item.metadata
    if "attempts" in m:
        return int(m["attempts"]), int(m["hits"]), int(m.get("ungraded", 0))
    return 1, int(r.grade.correct), int(r.grade.score is None)


def outcome(r: Record) -> dict[str, Any]:
    """What a paired comparison needs of one item: which item, its skills, and right / wrong / unparsed (with the
    counts of an item answered several times)."""
    choices = r.item.metadata.get("choices")
    n, hits, ungraded = trials(r)
    return ({"id": r.item.id, "skills": list(r.item.skills), "k": r.item.k, "correct": r.grade.correct,
             "status": r.grade.status} | ({"chance": 1 / len(choices)} if choices else {})
            | ({"attempts": n, "hits": hits, "ungraded": ungraded} if "attempts" in r.item.metadata else {}))


def first_broken_step(record: Record) -> tuple[str, ...]:
    """The skills a failed item counts as missing: the "first broken step" rule.

    Procedural items record the value after every step (`metadata.steps`). A chain can only
    break once for the first time: the steps after it work on a wrong input, so their failure
    is no evidence against their own skill. Hence:

    1. correct or ungradable items are missing nothing;
    2. if the output shows its work (the value of at least one intermediate step appears
       among its numbers), the missing skill is that of the first step whose value does not
       appear; if every value appears, the last step's (its result was not the final answer);
    3. if the output shows no intermediate value (a bare wrong number) the break cannot be
       located, so every skill of the item is counted, as STAT's teacher names several
       skills per failed question; items without step traces are treated the same way.

    k = 1 items always blame their single skill.
    """
    if record.grade.score is None or record.grade.correct:
        return ()
    steps = record.item.metadata.get("steps") or []
    if len(steps) < 2:
        return record.item.skills
    shown = set(numbers_in(record.output))
    values = [Fraction(s["value"]) for s in steps]
    if not any(v in shown for v in values[:-1]):
        return record.item.skills
    for s, v in zip(steps, values):
        if v not in shown:
            return (s["skill"],)
    return (steps[-1]["skill"],)


def build_profile(records: Iterable[Record], skills: SkillSet | None = None,
                  run_id: str = "", model: str = "", data: str = "",
                  missing: dict[str, int] | None = None) -> Profile:
    """Aggregate graded records. Skills come from `skills` (in its order) plus any label it lacks.

    `missing` replaces the Missing-Skill-Profile of `first_broken_step` (e.g. a teacher's diagnosis)."""
    records = list(records)
    ids = list(skills.ids) if skills else []
    ids += sorted({s for r in records for s in r.item.skills} - set(ids))
    per_skill = {s: [r for r in records if s in r.item.skills] for s in ids}
    skill_scores = []
    for s in ids:
        rs = per_skill[s]
        if not rs:
            continue
        alone = Score.of([r for r in rs if r.item.k == 1])
        skill_scores.append(SkillScore(**asdict(Score.of(rs)), id=s,
                                       name=skills[s].name if skills and s in skills else s,
                                       alone={"n": alone.n, "accuracy": alone.accuracy}))
    ks = sorted({r.item.k for r in records})
    by_k = [KScore(**asdict(Score.of([r for r in records if r.item.k == k])), k=k) for k in ks]
    if missing is None:
        counts = Counter(s for r in records for s in first_broken_step(r))
        missing = {s: counts[s] for s in ids if counts[s]}
    rules = Counter(r.grade.rule or "unrecorded" for r in records)  # "": a plug-in grader, or a run stored before rules
    outcomes = [outcome(r) for r in records]
    return Profile(skill_scores, by_k, missing, Score.of(records), run_id, model, data,
                   outcomes, dict(rules.most_common()), summary(attribute(outcomes_of(outcomes), skills=ids)))


def summary(fit: Attribution) -> dict[str, Any]:
    """What a profile keeps of the joint model: every skill's mastery, the gaps, and the evidence and model check
    without the per-item predictions (`skillgap attribute` writes those)."""
    d = fit.to_dict()
    d["check"] = {k: v for k, v in d["check"].items() if k != "items"}
    return d
