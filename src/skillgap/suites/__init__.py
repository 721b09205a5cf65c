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
