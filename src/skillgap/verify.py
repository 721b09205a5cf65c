"""Verify: did training help, skill by skill, and did anything get worse?

Compares two profiles (same schema as `skillgap profile` writes). For every skill, every k and
overall: the change in accuracy, a 95% interval for it (Newcombe's hybrid score interval, built
from the two Wilson intervals), and a two-sided two-proportion z-test. Across skills the tests
are Holm-corrected, so thirteen skills do not flag a spurious regression every other run. A
skill whose accuracy fell significantly is a regression; one that rose, an improvement.

Also here: the check that no evaluation item was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from skillgap.errors import DataError
from skillgap.items import Item


def two_proportion_p(c1: int, n1: int, c2: int, n2: int) -> float:
    """Two-sided p-value of the pooled z-test for p1 == p2 (1.0 when undefined)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (c1 + c2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(c2 / n2 - c1 / n1) / se
    return math.erfc(z / math.sqrt(2))


def delta(b: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    """Change from score `b` to score `a` (dicts with n, correct, accuracy, ci_low, ci_high)."""
    p1, p2 = b["accuracy"], a["accuracy"]
    d = p2 - p1
    lo = d - math.sqrt((p2 - a["ci_low"]) ** 2 + (b["ci_high"] - p1) ** 2)
    hi = d + math.sqrt((a["ci_high"] - p2) ** 2 + (p1 - b["ci_low"]) ** 2)
    return {"before": p1, "after": p2, "delta": d, "delta_ci_low": lo, "delta_ci_high": hi,
            "n_before": b["n"], "n_after": a["n"], "p_value": two_proportion_p(b["correct"], b["n"], a["correct"], a["n"])}


def holm(p_values: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise level `alpha`."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected


def _flag(d: dict[str, Any], significant: bool) -> dict[str, Any]:
    flag = "" if not significant else ("improved" if d["delta"] > 0 else "regression")
    return d | {"significant": significant, "flag": flag}


def compare(before: dict[str, Any], after: dict[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    """Per-skill, per-k and overall deltas, with improvements and regressions named."""
    b_skills = {s["id"]: s for s in before["skills"]}
    a_skills = {s["id"]: s for s in after["skills"]}
    ids = [s for s in b_skills if s in a_skills]
    skills = [delta(b_skills[s], a_skills[s]) | {"id": s, "name": a_skills[s].get("name", s)} for s in ids]
    for d, sig in zip(skills, holm([d["p_value"] for d in skills], alpha)):
        d.update(_flag(d, sig))
    b_k = {r["k"]: r for r in before["by_k"]}
    by_k = [(_flag(d, d["p_value"] < alpha)) for d in
            (delta(b_k[r["k"]], r) | {"k": r["k"]} for r in after["by_k"] if r["k"] in b_k)]
    overall = delta(before["overall"], after["overall"])
    overall = _flag(overall, overall["p_value"] < alpha)
    return {"overall": overall, "skills": skills, "by_k": by_k,
            "improved": [d["id"] for d in skills if d["flag"] == "improved"],
            "regressions": [d["id"] for d in skills if d["flag"] == "regression"],
            "only_before": sorted(set(b_skills) - set(a_skills)), "only_after": sorted(set(a_skills) - set(b_skills))}


def _key(item: Item) -> str:
    return " ".join(m["content"] for m in item.chat() if m["role"] != "assistant").strip().lower()


def assert_disjoint(train: Iterable[Item], test: Iterable[Item], where: str = "training set") -> None:
    """Raise if an evaluation item, by id or by its prompt text, is in the training set."""
    train = list(train)
    ids = {it.id for it in train}
    texts = {_key(it): it.id for it in train}
    for it in test:
        hit = it.id if it.id in ids else texts.get(_key(it))
        if hit is not None:
            raise DataError(where, None, "id", f"evaluation item {it.id!r} is also in the training set "
                            f"(as {hit!r}); verification must use items the model never trained on")
