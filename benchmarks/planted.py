"""Planted gaps: graded answers simulated from known skill masteries, to check a diagnosis against the truth.

The items are real `arith` items (their skill sets, so the co-occurrence of skills is the suite's); each answer is
drawn from the noisy-AND model with the planted p_k. Three designs break the easy diagnoses:

- `prerequisite`: a mastered skill sits in most items (STAT's counts blame it for most failures);
- `companion`: a mastered skill shares 70% of its items with a gap (its accuracy inherits the gap's failures);
- `twins`: two skills always occur together (no method can tell them apart: they must be reported as confounded).

Used by tests/test_attribution.py and benchmarks/attribution_planted.py; seeded and deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

GAPS = ("round", "unit_convert", "order_ops")  # the targeting benchmark's first G
GAP_P, KNOWN = 0.1, (0.55, 0.95)  # a gap's mastery; the other skills' are drawn from this range


@dataclass(frozen=True)
class Design:
    name: str
    gaps: tuple[str, ...]
    p: dict[str, float]  # planted mastery of every skill
    skill_sets: list[tuple[str, ...]]
    note: str = ""
    twins: tuple[str, ...] = field(default=())


def skill_sets(n: int, seed: int) -> list[tuple[str, ...]]:
    from skillgap.suites import load_suite

    return [it.skills for it in load_suite("arith").generate("train", n, seed)]


DESIGNS = ("prerequisite", "companion", "twins", "mild", "small")


def design(name: str, n: int = 600, seed: int = 0) -> Design:
    """One planted design on `n` arith skill sets drawn with `seed` (`mild`: the suite's own sets, gaps at p = 0.35,
    so a gap is a weakness rather than an absence; `small`: the first 100 of them, as many as `skillgap run`
    diagnoses by default)."""
    rng = random.Random(f"{name}/{seed}")
    sets = skill_sets(n, seed)
    skills = sorted({s for x in sets for s in x})
    p = {s: GAP_P if s in GAPS else round(rng.uniform(*KNOWN), 3) for s in skills}
    if name == "small":  # as many items as `skillgap run` diagnoses by default (--diagnose-limit 100)
        return Design(name, GAPS, p, sets[:100], "the suite's first 100 items, as `skillgap run` diagnoses")
    if name == "mild":
        return Design(name, GAPS, p | {s: 0.35 for s in GAPS}, sets, "the suite's items; gaps at p = 0.35")
    if name == "prerequisite":  # sub_borrow joins 80% of the items and is mastered
        pre = "sub_borrow"
        sets = [x if pre in x or rng.random() > 0.8 else (pre, *x) for x in sets]
        p[pre] = 0.97
        return Design(name, GAPS, p, sets, f"{pre} in {sum(pre in x for x in sets) / n:.0%} of items, p = 0.97")
    if name == "companion":  # compare (mastered) comes with a gap in 70% of its items
        comp, gap = "compare", "round"
        out = []
        for x in sets:
            if comp in x:
                x = x if gap in x else (gap, *x) if rng.random() < 0.7 else tuple(s for s in x if s not in GAPS)
            out.append(x)
        p[comp] = 0.95
        share = sum(gap in x for x in out if comp in x) / max(1, sum(comp in x for x in out))
        return Design(name, GAPS, p, out, f"{comp} shares {share:.0%} of its items with {gap}, p = 0.95")
    if name == "twins":  # percent and fraction_of always together; percent a gap
        a, b = "percent", "fraction_of"
        sets = [tuple(dict.fromkeys((*x, b) if a in x else (*x, a) if b in x else x)) for x in sets]
        p[a] = GAP_P
        return Design(name, (*GAPS, a), p, sets, f"{a} and {b} always together", twins=(a, b))
    raise ValueError(f"unknown design {name!r}: {', '.join(DESIGNS)}")


def answers(d: Design, seed: int = 0, slip: float = 0.0) -> list[dict[str, Any]]:
    """Graded rows `{"id", "skills", "correct"}` drawn from the noisy-AND model with the planted masteries."""
    rng = random.Random(f"answers/{d.name}/{seed}")
    rows = []
    for i, x in enumerate(d.skill_sets):
        prob = 1.0 - slip
        for s in x:
            prob *= d.p[s]
        rows.append({"id": f"{d.name}-{i}", "skills": list(x), "correct": rng.random() < prob})
    return rows


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """STAT's Missing-Skill-Profile without step traces: every skill of every wrong item, counted."""
    out: dict[str, int] = {}
    for r in rows:
        if not r["correct"]:
            for s in r["skills"]:
                out[s] = out.get(s, 0) + 1
    return out


def top(scores: dict[str, float], n: int, reverse: bool = True) -> list[str]:
    """The n skills with the highest (or, reverse=False, lowest) score; ties by name."""
    return sorted(scores, key=lambda s: ((-scores[s]) if reverse else scores[s], s))[:n]


def precision_recall(named: list[str], truth: tuple[str, ...]) -> tuple[float, float]:
    hit = len(set(named) & set(truth))
    return (hit / len(named) if named else float("nan")), hit / len(truth)
