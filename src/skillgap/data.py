"""Where items come from: a built-in suite, or a dataset file in any format `formats.py` reads (JSONL items, GSM8K,
MATH, Alpaca, classification, CSV, Parquet, a saved dataset), restricted by skill and sampled to a limit.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from skillgap.errors import ConfigError, unknown_name
from skillgap.formats import read_items
from skillgap.items import Item
from skillgap.skills import SkillSet, sibling_inventory
from skillgap.suites import SUITES, active_skills, load_suite


@dataclass(frozen=True)
class DataConfig:
    """Which items: `suite` (procedural, seeded) or `data` (a JSONL file), capped at `limit`.

    `skills` keeps the items made of those skills only, `exclude_skills` drops every item that exercises one of
    those (composed items included). A file's `limit` is a seeded sample balanced over skills (`sample`
    "stratified"), or its first lines ("first"); a suite's stream is balanced by construction."""

    suite: str | None = field(default="arith", metadata={"help": "built-in procedural suite (default: arith)"})
    data: str | None = field(default=None, metadata={"help": "a JSONL file of items instead of a suite"})
    split: str = "test"
    limit: int | None = field(default=200, metadata={
        "help": "number of items; from a file, a seeded sample balanced over skills (see --sample)"})
    seed: int = field(default=0, metadata={"help": "seed for the suite, selection and training"})
    format: str = field(default="auto", metadata={
        "help": "for --data: auto | items | gsm8k | math | alpaca | classification | table (CSV, Parquet, a saved "
                "`datasets` folder) (default: auto, from the first record)"})
    # for `data`: (item field, column), e.g. (("prompt", "question"),)
    fields: tuple[tuple[str, str], ...] = field(default=(), metadata={
        "flag": "--field", "help": "for --data: map a column to an item field (prompt, answer, skills, id, "
                                   "completion); repeatable"})
    skills: tuple[str, ...] = field(default=(), metadata={
        "metavar": "A,B", "help": "only items made of these skills (of the suite, or of the file's labels)"})
    exclude_skills: tuple[str, ...] = field(default=(), metadata={
        "metavar": "C,D", "help": "no item that exercises one of these skills, composed items included"})
    sample: str = field(default="stratified", metadata={
        "choices": ("stratified", "first"),
        "help": "how --limit draws from a file: stratified (default: every skill as many items as it can get, "
                "seeded) or first (the first N, as lm-eval's --limit)"})
    k_values: tuple[int, ...] = field(default=(), metadata={
        "flag": "--k", "metavar": "K,K", "items": "numbers of skills", "example": "1,2",
        "help": "only items composing this many skills (e.g. 1,2: train on compositions of at most 2)"})
    hold_out_pairs: tuple[tuple[str, str], ...] = field(default=(), metadata={
        "metavar": "A+B,C+D", "parse": lambda raw: parse_pairs(raw),
        "help": "no item that composes both skills of a pair, so those combinations stay unseen"})

    def check(self) -> None:
        """Names, numbers and paths, before any item is generated or any model loads."""
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {self.limit}.")
        if self.sample not in ("stratified", "first"):
            raise ConfigError(f"--sample must be stratified or first, got {self.sample!r}.")
        if both := set(self.skills) & set(self.exclude_skills):
            raise ConfigError(f"--skills and --exclude-skills both name {', '.join(sorted(both))}.")
        if self.data:
            if not Path(self.data).exists():
                raise ConfigError(f"--data {self.data}: no such file or folder.")
            return

        if self.suite not in SUITES:
            raise unknown_name("suite", str(self.suite), list(SUITES))
        suite_of(self)  # unknown skill names answer "did you mean"

    def describe(self) -> str:
        query = [f"skills={','.join(self.skills)}"] if self.skills else []
        query += [f"exclude={','.join(self.exclude_skills)}"] if self.exclude_skills else []
        query += [f"k={','.join(map(str, self.k_values))}"] if self.k_values else []
        query += [f"hold_out={','.join('+'.join(p) for p in self.hold_out_pairs)}"] if self.hold_out_pairs else []
        if not self.data:
            return f"suite:{self.suite}/{self.split}" + ("?" + "&".join(query) if query else "")
        if self.format != "auto" or self.fields:
            query = [f"format={self.format}", *(f"{t}={c}" for t, c in self.fields), *query]
        if self.limit is not None:
            query.append(f"sample={self.sample}")
        return f"file:{Path(self.data).resolve()}" + ("?" + "&".join(query) if query else "")


class Items(NamedTuple):
    """Items as `load_items` returns them, so that a recipe reads a file once and hands the result on."""

    items: list[Item]
    skills: SkillSet | None  # the skill inventory, if known
    grader: str  # the grader that grades them: the one asked for, else the data's own


def parse_pairs(raw: str) -> tuple[tuple[str, str], ...]:
    """'a+b, c+d' -> (('a', 'b'), ('c', 'd')): the skill pairs `hold_out_pairs` keeps unseen."""
    pairs = []
    for spec in (s.strip() for s in raw.split(",") if s.strip()):
        pair = tuple(x.strip() for x in spec.split("+"))
        if len(pair) != 2 or not all(pair):
            raise ConfigError(f"--hold-out-pairs {spec!r}: a pair is two skills joined by '+', e.g. "
                              "sub_borrow+percent.")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def source(cfg: DataConfig) -> str:
    """Where items come from, as the user named it: for error messages."""
    return f"--data {cfg.data}" if cfg.data else f"suite {cfg.suite}, {cfg.split} split"


def train_file(data: DataConfig, path: str, fmt: str = "auto", fields: tuple[tuple[str, str], ...] = (),
               limit: int | None = None) -> DataConfig:
    """A `--train-data` pool as data: its own `--train-format`/`--train-field`, the test data's skill restriction,
    seed and sampling."""
    from dataclasses import replace

    return replace(data, suite=None, data=path, split="train", limit=limit, format=fmt, fields=fields)


def suite_of(cfg: DataConfig) -> Any:
    """The configured suite, restricted to the configured skills."""
    return load_suite(cfg.suite or "arith", cfg.skills, cfg.exclude_skills, cfg.k_values, cfg.hold_out_pairs)


def keep_skills(items: list[Item], skills: tuple[str, ...], exclude: tuple[str, ...], k_values: tuple[int, ...] = (),
                hold_out_pairs: tuple[tuple[str, str], ...] = ()) -> list[Item]:
    """The items made of `skills` only (if given) that exercise none of `exclude`, compose k of `k_values` skills
    (if given) and no held-out pair."""
    return [it for it in items if (not skills or set(it.skills) <= set(skills)) and not set(it.skills) & set(exclude)
            and (not k_values or it.k in k_values) and not any({a, b} <= set(it.skills) for a, b in hold_out_pairs)]


def restrict(items: list[Item], cfg: DataConfig) -> list[Item]:
    """A file's items as `cfg` asks: by skill, k and held-out pairs, then `limit` drawn by `sample`."""
    items = keep_skills(items, cfg.skills, cfg.exclude_skills, cfg.k_values, cfg.hold_out_pairs)
    if not items:
        raise ConfigError(f"--data {cfg.data}: no item is left by --skills/--exclude-skills/--k/--hold-out-pairs.")
    if cfg.limit:
        items = items[: cfg.limit] if cfg.sample == "first" else stratified_sample(items, cfg.limit, cfg.seed)
    return items


def read_train_file(cfg: DataConfig) -> list[Item]:
    """A ready training file (`train --data`, in any `--format`), restricted and limited as every other file is read."""
    return restrict(read_items(cfg.data, cfg.format, dict(cfg.fields))[0], cfg)


def stratified_sample(items: list[Item], n: int, seed: int) -> list[Item]:
    """`n` items drawn with the seed so that every skill gets as many as it can: each draw takes a random item of
    the skill that the draws so far cover least. A file sorted by category otherwise profiles only its first
    categories. The sample keeps the file's order; items without skills form one stratum of their own."""
    if n >= len(items):
        return items
    r = random.Random(f"sample/{seed}")
    strata: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        for s in it.skills or ("",):
            strata.setdefault(s, []).append(i)
    for members in strata.values():
        r.shuffle(members)
    covered: Counter[str] = Counter()
    chosen: set[int] = set()
    while len(chosen) < n:
        skill = min((s for s, m in strata.items() if m), key=lambda s: (covered[s], s))
        i = strata[skill].pop()
        if i not in chosen:
            chosen.add(i)
            covered.update(items[i].skills or ("",))
    return [items[i] for i in sorted(chosen)]


def load_items(cfg: DataConfig, grader: str | None = None, check: bool = False) -> Items:
    """The items, the skill inventory if known, and the grader that grades them (`grader`, else the data's own).

    With `check`, every reference of a file is checked against that grader (see `formats.read_items`): a file it
    cannot grade fails here, naming its line and field, before any model loads."""
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {cfg.limit}.")
    if cfg.data:
        items, spec = read_items(cfg.data, cfg.format, dict(cfg.fields), grader, check)
        return Items(restrict(items, cfg), sibling_inventory(cfg.data), spec)
    suite = suite_of(cfg)
    if cfg.limit is None:
        raise ConfigError(f"Suite {cfg.suite!r} is unlimited; pass --limit N.")

    # a suite's answers are made for its grader, and every suite's are numbers or bits: nothing to check
    return Items(suite.generate(cfg.split, cfg.limit, cfg.seed), active_skills(suite), grader or suite.grader)
