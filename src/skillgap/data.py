"""Where items come from: a built-in suite or a JSONL file of items."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skillgap.errors import ConfigError, DataError
from skillgap.items import Item, read_jsonl
from skillgap.skills import SkillSet


@dataclass(frozen=True)
class DataConfig:
    """Which items: `suite` (procedural, seeded) or `data` (a JSONL file), capped at `limit`."""

    suite: str | None = "arith"
    data: str | None = None
    split: str = "test"
    limit: int | None = 200
    seed: int = 0

    def describe(self) -> str:
        return f"file:{Path(self.data).resolve()}" if self.data else f"suite:{self.suite}/{self.split}"


def load_items(cfg: DataConfig) -> tuple[list[Item], SkillSet | None, str]:
    """The items, the skill inventory if known, and the default grader."""
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {cfg.limit}.")
    if cfg.data:
        items = read_jsonl(cfg.data)
        if not items:
            raise DataError(cfg.data, None, None, "no items in the file; nothing to evaluate")
        return items[: cfg.limit] if cfg.limit else items, None, "numeric"
    from skillgap.suites import load_suite

    suite = load_suite(cfg.suite or "")
    if cfg.limit is None:
        raise ConfigError(f"Suite {cfg.suite!r} is unlimited; pass --limit N.")
    return suite.generate(cfg.split, cfg.limit, cfg.seed), suite.skills, suite.grader
