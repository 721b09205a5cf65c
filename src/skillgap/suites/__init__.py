"""Built-in procedural suites: items that carry their skills and exact answers by construction.

Suites load lazily by name, so `import skillgap` never builds one it does not need.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from typing import Protocol

from skillgap.errors import ConfigError, unknown_name
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


def load_suite(name: str, skills: Sequence[str] = (), exclude: Sequence[str] = (), k_values: Sequence[int] = (),
               hold_out_pairs: Sequence[tuple[str, str]] = ()) -> Suite:
    """The suite registered under `name`; an unknown name answers 'did you mean ...'.

    `skills` keeps only items made of those skills, `exclude` removes every item that exercises one of those,
    composed items included. `suite.skills` stays the whole inventory (`active_skills` is the restricted one),
    and every problem keeps its split, so a restricted suite's test items are the whole suite's test problems."""
    if name not in SUITES:
        raise unknown_name("suite", name, list(SUITES))
    module, _, attr = SUITES[name].partition(":")
    suite = getattr(importlib.import_module(module), attr)()
    known = suite.skills.ids
    for s in (*skills, *exclude, *(x for pair in hold_out_pairs for x in pair)):
        if s not in known:
            raise unknown_name(f"skill of suite {name!r}", s, known)
    if k_values or hold_out_pairs:
        if not hasattr(suite, "k_values"):
            raise ConfigError(f"--k and --hold-out-pairs restrict how skills compose; suite {name!r} does not "
                              "compose skills (arith does).")
        bad = [k for k in k_values if not 1 <= k <= suite.max_k]
        if bad:
            raise ConfigError(f"--k {','.join(map(str, k_values))}: suite {name!r} composes 1 to {suite.max_k} skills.")
        if any(a == b for a, b in hold_out_pairs):
            raise ConfigError("--hold-out-pairs: a pair is two different skills, e.g. sub_borrow+percent.")
        suite = dataclasses.replace(suite, k_values=tuple(sorted(set(k_values))) or None,
                                    hold_out_pairs=tuple(tuple(sorted(p)) for p in hold_out_pairs))
    if not skills and not exclude:
        return suite
    keep = tuple(s for s in known if (not skills or s in skills) and s not in exclude)
    if not keep:
        raise ConfigError(f"--skills/--exclude-skills leave suite {name!r} no skill to make items of.")
    return dataclasses.replace(suite, item_skills=keep)


def active_skills(suite: Suite) -> SkillSet:
    """The skills a suite's items exercise, as an inventory: all of them, or those `--skills`/`--exclude-skills`
    leave (prerequisite edges to a left-out skill dropped)."""
    keep = getattr(suite, "item_skills", None)
    return suite.skills.subset(keep) if keep else suite.skills


def validation_items(suite: Suite, skill: str, n: int, seed: int = 0) -> list[Item]:
    """`n` held-out items of one skill from the suite's validation split, which no training stream and no test
    item can share (the split is a hash of each problem), so the losses they give never reward memorising."""
    if hasattr(suite, "stream"):
        items = suite.stream(skill, "validation", seed)  # type: ignore[attr-defined]
        return [next(items) for _ in range(n)]
    if getattr(suite, "k_values", None) or getattr(suite, "hold_out_pairs", ()):
        # they measure a skill, never train it: `--k 1` alone has too few distinct single-skill validation
        # problems for some skills (81 multiplication facts, a tenth of them in validation)
        suite = dataclasses.replace(suite, k_values=None, hold_out_pairs=())
    return suite.synthesize(skill, n, seed=20_000 + seed, split="validation")  # type: ignore[attr-defined]
