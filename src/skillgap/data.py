"""Where items come from: a built-in suite or a JSONL file of items."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.skills import SkillSet


@dataclass(frozen=True)
class DataConfig:
    """Which items: `suite` (procedural, seeded) or `data` (a JSONL file), capped at `limit`."""

    suite: str | None = "arith"
    data: str | None = None
    split: str = "test"
    limit: int | None = 200
    seed: int = 0
    format: str = "auto"  # for `data`: auto | items | gsm8k | math | table (CSV, Parquet, a saved dataset)
    fields: tuple[tuple[str, str], ...] = ()  # for `data`: (item field, column), e.g. (("prompt", "question"),)

    def check(self) -> None:
        """Names, numbers and paths, before any item is generated or any model loads."""
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {self.limit}.")
        if self.data:
            if not Path(self.data).exists():
                raise ConfigError(f"--data {self.data}: no such file or folder.")
            return
        from skillgap.suites import SUITES

        if self.suite not in SUITES:
            from skillgap.errors import unknown_name

            raise unknown_name("suite", str(self.suite), list(SUITES))

    def describe(self) -> str:
        if not self.data:
            return f"suite:{self.suite}/{self.split}"
        extra = "" if self.format == "auto" and not self.fields else \
            f"?format={self.format}" + "".join(f"&{t}={c}" for t, c in self.fields)
        return f"file:{Path(self.data).resolve()}{extra}"


def load_items(cfg: DataConfig) -> tuple[list[Item], SkillSet | None, str]:
    """The items, the skill inventory if known, and the default grader."""
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {cfg.limit}.")
    if cfg.data:
        from skillgap.formats import read_items

        from skillgap.skills import sibling_inventory

        items, grader = read_items(cfg.data, cfg.format, dict(cfg.fields))
        return items[: cfg.limit] if cfg.limit else items, sibling_inventory(cfg.data), grader
    from skillgap.suites import load_suite

    suite = load_suite(cfg.suite or "")
    if cfg.limit is None:
        raise ConfigError(f"Suite {cfg.suite!r} is unlimited; pass --limit N.")
    return suite.generate(cfg.split, cfg.limit, cfg.seed), suite.skills, suite.grader
