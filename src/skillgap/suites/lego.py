"""`lego`: the LEGO reasoning task of Skill-it! (Chen et al., 2023), generated on the fly.

k = 5 binary variables on a chain. The root clause gives a value (`x = val 1`); each later
clause gives the next variable from the previous one (`y = val x` if the bits agree, else
`y = not x`). The clauses are shuffled into one line, and the item asks for the variable `i`
hops from the root, so **skill i = resolving depth i** of the chain:

    Input: q = not f , f = val 1 , c = val q , t = not c , m = val t . Output: c = val    ->  0

As in the reference code, variables are 5 distinct letters a-z, duplicates are dropped per
skill, and the answer is one bit. Train, validation and test never share a chain: an item's
split is a hash of its clauses, so no seed can put the same problem in two streams.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass

from skillgap.items import Item
from skillgap.skills import Skill, SkillSet
from skillgap.suites.streams import StreamSuite, stream

K = 5
SKILLS = SkillSet(tuple(
    Skill(f"depth_{i}", f"Resolve depth {i}", f"Find the value of the variable {i} hops from the root of the chain.",
          "lego", (f"depth_{i - 1}",) if i else ())
    for i in range(K)))


def sentence(r: random.Random, depth: int, k: int = K) -> tuple[str, int]:
    """One LEGO prompt asking for the variable at `depth`, and its value."""
    values = [r.randint(0, 1) for _ in range(k)]
    names = r.sample(string.ascii_lowercase, k)
    clauses = [f"{names[0]} = val {values[0]}"]
    clauses += [f"{names[i]} = {'val' if values[i] == values[i - 1] else 'not'} {names[i - 1]}" for i in range(1, k)]
    r.shuffle(clauses)
    return f"Input: {' , '.join(clauses)} . Output: {names[depth]} = val", values[depth]


@dataclass(frozen=True)
class LegoSuite(StreamSuite):
    """Seeded, unlimited streams of LEGO items, one skill per item."""

    name: str = "lego"
    grader: str = r"regex:^\s*([01])"  # the first token of the output is the bit
    skills: SkillSet = SKILLS
    test_percent: int = 10  # and as many for validation; the rest is train
    proportions: tuple[float, ...] = (1, 1, 1, 3, 5)  # the reference code's "random" (natural) mixture
    graph: str = "10000/11110/00100/00010/00001"  # the paper's skills graph (row i: the skills that training on i helps)
    item_skills: tuple[str, ...] | None = None  # --skills / --exclude-skills (None: all)
    eta: float = 0.5  # the paper's Skill-it learning rate for this suite

    def stream(self, skill: str, split: str = "train", seed: int = 0) -> Iterator[Item]:
        return stream("lego", self.skills.ids.index(skill), skill, split, seed, self.test_percent, sentence,
                      lambda text: text.split(" . Output:")[0])
