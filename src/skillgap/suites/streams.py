"""What the one-skill-per-item suites (`lego`, `addition`) share: seeded, split-hashed, endless streams."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator

from skillgap.items import Item
from skillgap.skills import SkillSet


def split_of(problem: str, test_percent: int) -> str:
    """Which stream a problem belongs to, from its text alone: 'test', 'validation' or 'train'.

    The key is the problem without its question, so one chain or sum never serves two splits.
    """
    h = int.from_bytes(hashlib.sha256(problem.encode()).digest()[:8], "big") % 100
    return "test" if h < test_percent else "validation" if h < 2 * test_percent else "train"


def stream(suite: str, skill_index: int, skill: str, split: str, seed: int, test_percent: int,
           sentence: Callable[[random.Random, int], tuple[str, int]], problem: Callable[[str], str]) -> Iterator[Item]:
    """Distinct items of one skill and one split, forever, deterministic in (skill, split, seed)."""
    r = random.Random(f"{suite}/{split}/{skill}/{seed}")
    seen: set[str] = set()
    n = 0
    while True:
        text, value = sentence(r, skill_index)
        if text in seen or split_of(problem(text), test_percent) != split:
            continue
        seen.add(text)
        yield Item(id=f"{suite}-{split}-s{seed}-{skill}-{n:06d}", prompt=text, answer=str(value), skills=(skill,),
                   split=split, metadata={"suite": suite}, completion=str(value))
        n += 1


class StreamSuite:
    """`generate` and `synthesize` on top of a suite's `stream(skill, split, seed)`."""

    skills: SkillSet
    item_skills: tuple[str, ...] | None

    def stream(self, skill: str, split: str = "train", seed: int = 0) -> Iterator[Item]:
        raise NotImplementedError

    def generate(self, split: str, n: int, seed: int = 0) -> list[Item]:
        """`n` items stratified over the skills (as the reference's validation sets are); one skill per item, so a
        restricted suite (`item_skills`) takes the same streams, fewer of them."""
        streams = [self.stream(s, split, seed) for s in self.skills.ids if not self.item_skills or s in self.item_skills]
        return [next(streams[i % len(streams)]) for i in range(n)]

    def synthesize(self, skill: str, n: int, seed: int = 0, split: str = "train") -> list[Item]:
        """`n` fresh items of one skill and one split."""
        if self.item_skills and skill not in self.item_skills:
            raise ValueError(f"{skill!r} is left out of this suite's items (--skills/--exclude-skills).")
        items = self.stream(skill, split, 10_000 + seed)
        return [next(items) for _ in range(n)]
