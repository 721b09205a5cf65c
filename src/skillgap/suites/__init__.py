"""Built-in procedural suites: items that carry their skills and exact answers by construction.

Suites load lazily by name, so `import skillgap` never builds one it does not need.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from skillgap.errors import unknown_name
from skillgap.items import Item
from skillgap.skills import SkillSet

SUITES: dict[str, str] = {
    "arith": "skillgap.suites.arith:ArithSuite",
    "lego": "skillgap.suites.lego:LegoSuite",
    "addition": "skillgap.suites.addition:AdditionSuite",
}


class Suite(Protocol):
    name: str
    grader: str
    skills: SkillSet

    def generate(self, split: str, n: int, seed: int = 0) -> list[Item]: ...


def load_suite(name: str) -> Suite:
    """The suite registered under `name`; an unknown name answers 'did you mean ...'."""
    if name not in SUITES:
        raise unknown_name("suite", name, list(SUITES))
    module, _, attr = SUITES[name].partition(":")
    return getattr(importlib.import_module(module), attr)()


def validation_items(suite: Suite, skill: str, n: int, seed: int = 0) -> list[Item]:
    """`n` held-out items of one skill from the suite's validation split, which no training stream and no test
    item can share (the split is a hash of each problem), so the losses they give never reward memorising."""
    if hasattr(suite, "stream"):
        items = suite.stream(skill, "validation", seed)  # type: ignore[attr-defined]
        return [next(items) for _ in range(n)]
    return suite.synthesize(skill, n, seed=20_000 + seed, split="validation")  # type: ignore[attr-defined]
