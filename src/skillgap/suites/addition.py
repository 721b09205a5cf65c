"""`addition`: the digit-wise addition task of Skill-it! (Chen et al., 2023), generated on the fly.

Two random 3-digit numbers, zero-padded, digits spaced; the item asks for one digit of the
sum, counted from the ones place, so **skill i = the i-th digit of the sum**:

    Input: A = 0 4 7 + 3 8 5 , A 1 = ? Output:    ->  3      (47 + 385 = 432)

Digit 1 needs the carry out of digit 0, digit 2 the carry out of digit 1: the prerequisite
chain is built in. A split is a hash of the two numbers, as in `lego`: a sum asked for one digit in
training is never asked for another in the test.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from skillgap.items import Item
from skillgap.skills import Skill, SkillSet
from skillgap.suites.streams import StreamSuite, stream

K = 3
PLACES = ("ones", "tens", "hundreds", "thousands", "ten-thousands")
SKILLS = SkillSet(tuple(
    Skill(f"digit_{i}", f"{PLACES[i].capitalize()} digit of a sum",
          f"The {PLACES[i]} digit of the sum of two {K}-digit numbers.", "addition", (f"digit_{i - 1}",) if i else ())
    for i in range(K)))


def sentence(r: random.Random, digit: int, k: int = K) -> tuple[str, int]:
    """One addition prompt asking for `digit` of the sum, and that digit."""
    a, b = r.randrange(10 ** k - 1), r.randrange(10 ** k - 1)  # the reference's randint(0, 10**k - 1)

    def spaced(x: int) -> str:
        return " ".join(f"{x:0{k}d}")

    return f"Input: A = {spaced(a)} + {spaced(b)} , A {digit} = ? Output:", (a + b) // 10 ** digit % 10


@dataclass(frozen=True)
class AdditionSuite(StreamSuite):
    """Seeded, unlimited streams of addition items, one skill per item."""

    name: str = "addition"
    grader: str = r"regex:^\s*(\d)"
    skills: SkillSet = SKILLS
    test_percent: int = 10
    proportions: tuple[float, ...] = (13, 14, 18)  # the reference code's "random" (natural) mixture
    graph: str = "100/110/001"  # the paper's skills graph (row i: the skills that training on i helps)
    item_skills: tuple[str, ...] | None = None  # --skills / --exclude-skills (None: all)
    eta: float = 0.1  # the paper's Skill-it learning rate for this suite

    def stream(self, skill: str, split: str = "train", seed: int = 0) -> Iterator[Item]:
        return stream("addition", self.skills.ids.index(skill), skill, split, seed, self.test_percent, sentence,
                      lambda text: text.split(" , A ")[0])
