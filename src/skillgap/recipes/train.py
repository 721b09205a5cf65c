"""Recipe: build a targeted training set and fine-tune on it (`skillgap train`).

    pool      = suite train stream (or --train-data)
    diagnosis = profile(model, pool sample)               # skipped for uniform or --profile
    mixture   = build_mixture(strategy, diagnosis.missing, pool, budget)
    weights   = train(model, mixture.items)

or, with `--data train.jsonl`, fine-tune on that file as it is. Writes `train.jsonl`,
`mixture.json`, the adapter (or model) and `train_result.json` into the output directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig, load_items, read_train_file, source, suite_of, train_file
from skillgap.errors import ConfigError
from skillgap.items import Item, read_jsonl, write_jsonl
from skillgap.models import ModelConfig
from skillgap.recipes.profile import EvalConfig, profile, write_json
from skillgap.skills import SkillSet
from skillgap.target import Mixture, Request, build_mixture
from skillgap.train import TrainConfig, TrainResult, main_process_first, train
from skillgap.verify import assert_disjoint, prompt_key


@dataclass(frozen=True)
class TargetConfig:
    """How the training set is built."""

    strategy: str = field(default="stat-sel", metadata={
        "help": "uniform | stat-sel | stat-syn | curriculum | skillmix"})
    budget: int = field(default=512, metadata={"help": "training examples"})
    diagnose_limit: int = field(default=100, metadata={"help": "pool items the base model is diagnosed on"})
    pool_size: int = field(default=4000, metadata={"help": "suite items generated to select from"})
    train_data: str | None = field(default=None, metadata={
        "help": "a pool of training items instead of the suite's (JSONL items, or any --train-format)"})
    train_format: str = field(default="auto", metadata={"help": "for --train-data, as --format"})
    train_fields: tuple[tuple[str, str], ...] = field(default=(), metadata={
        "flag": "--train-field", "help": "for --train-data, as --field; repeatable"})
    val_per_skill: int = 8  # held-out items per skill for the validation-loss curves
    replay: float = field(default=0.0, metadata={  # with_replay
        "metavar": "SHARE",
        "help": "share of the budget drawn uniformly from the pool, spread through training, so the skills a "
                "targeted set leaves out keep examples (default: 0); with --mixture, that share of every draw in the "
                "natural proportions"})
    skillmix_k: int = field(default=2, metadata={  # Instruct-SkillMix's k
        "help": "skillmix: skills a teacher-written example combines"})
    query_types: str | None = field(default=None, metadata={
        "help": "skillmix: a file of query types, `Name: definition` a line or Instruct-SkillMix's queries markdown "
                "(default: built-in 8)"})

    def check(self, teacher: Any = None) -> None:
        """Every option and file, before any model loads or any item is generated."""
        from skillgap.errors import unknown_name
        from skillgap.target import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise unknown_name("strategy", self.strategy, list(STRATEGIES))
        if self.budget < 1:
            raise ConfigError(f"--budget must be at least 1 training example, got {self.budget}.")
        if not 0 <= self.replay < 1:
            raise ConfigError(f"--replay is a share of the budget in [0, 1), got {self.replay}.")
        if self.diagnose_limit < 1 or self.pool_size < 1 or self.val_per_skill < 0:
            raise ConfigError("--diagnose-limit and --pool-size must be at least 1.")
        if self.strategy == "skillmix":
            if teacher is None:
                raise ConfigError("--strategy skillmix has a teacher write every example: --teacher MODEL (and "
                                  "--teacher-base-url for an endpoint).")
            if self.skillmix_k < 1:
                raise ConfigError(f"--skillmix-k must be at least 1, got {self.skillmix_k}.")
            if self.query_types:
                from skillgap.target.skillmix import load_query_types

                load_query_types(self.query_types)
        if self.train_data:
            from skillgap.formats import read_items

            read_items(self.train_data, self.train_format, dict(self.train_fields))  # fails here as file:line: field
            if self.strategy == "stat-syn" and teacher is None:
                raise ConfigError("--strategy stat-syn on --train-data (no generator) needs a teacher to write the "
                                  "new items: --teacher MODEL (and --teacher-base-url for an endpoint).")


@dataclass
class Prepared:
    mixture: Mixture
    pool: list[Item]
    skills: SkillSet | None
    suite: Any
    diagnosis: dict[str, Any] | None


def load_pool(data: DataConfig, tc: TargetConfig, grader: str | None = None) -> tuple[list[Item], SkillSet | None, Any]:
    """The training pool: the suite's train stream, or a file of training items. With `grader`, a file's references
    are checked against it (the diagnosis grades pool items), before any model loads."""
    if tc.train_data:
        cfg = train_file(data, tc.train_data, tc.train_format, tc.train_fields)
        items = load_items(cfg, grader, check=grader is not None)[0]
        return [replace(it, split="train") for it in items], None, None  # training items by where they come from
    if data.data:
        raise ConfigError("With --data, also give --train-data: the pool that targeting selects from.")
    suite = suite_of(data)
    from skillgap.suites import active_skills

    return suite.generate("train", tc.pool_size, data.seed), active_skills(suite), suite


def pool_source(tc: TargetConfig) -> str:
    """The training pool as the user named it: for the leak check's message."""
    return f"--train-data {tc.train_data}" if tc.train_data else "the suite's training pool"


def diagnose(model: ModelConfig, data: DataConfig, tc: TargetConfig, ev: EvalConfig, runs_dir: str | Path,
             out: Path, console: Console, models: Any = None) -> dict[str, Any]:
    """The base model on a sample of the pool: its Missing-Skill-Profile drives targeting."""
    if tc.train_data:
        diag = train_file(data, tc.train_data, tc.train_format, tc.train_fields, limit=tc.diagnose_limit)
    else:  # the suite's train stream is a prefix-stable sequence, so this sample is the pool's head
        diag = replace(data, data=None, split="train", limit=tc.diagnose_limit)
    return profile(model, diag, ev, runs_dir, out / "diagnosis.json", console, models=models).to_dict()


def prepare(model: ModelConfig, data: DataConfig, tc: TargetConfig, ev: EvalConfig, runs_dir: str | Path,
            out: Path, console: Console, missing: dict[str, int] | None = None, teacher: Any = None) -> Prepared:
    """Pool -> (diagnosis) -> mixture, written to `out/train.jsonl` and `out/mixture.json`.

    With a `teacher`, stat-syn has it write the new items (the paper's way), even where the suite
    could generate them."""
    pool, skills, suite = load_pool(data, tc)
    diagnosis = None
    if missing is None and tc.strategy not in ("uniform", "skillmix"):  # skillmix without a profile: every skill
        diagnosis = diagnose(model, data, tc, ev, runs_dir, out, console)
        missing = diagnosis["missing"]
    generator = None if teacher is not None else suite
    query_types = ()
    if tc.query_types:
        from skillgap.target.skillmix import load_query_types

        query_types = load_query_types(tc.query_types)
    mixture = build_mixture(tc.strategy, Request(missing or {}, pool, tc.budget, data.seed, skills, generator,
                                                 teacher, tc.replay, tc.skillmix_k, query_types))
    write_jsonl(mixture.items, out / "train.jsonl")
    write_json(mixture.to_dict() | {"budget": tc.budget}, out / "mixture.json")
    console.print(f"{tc.strategy}: {len(mixture.items)} examples; by skill "
                  + ", ".join(f"{s} {n}" for s, n in list(mixture.by_skill().items())[:8]))
    if mixture.notes.get("warning"):
        console.print(f"[yellow]{mixture.notes['warning']}[/yellow]")
    return Prepared(mixture, pool, skills, suite, diagnosis)


def validation_sets(mixture: Mixture, pool: list[Item], skills: list[str], suite: Any, n: int,
                    seed: int) -> dict[str, list[Item]]:
    """Per-skill held-out items for the validation-loss curves: the suite's validation split, or pool items
    the training set does not hold (checked by id and by text)."""
    from skillgap.suites import validation_items

    used = {it.id for it in mixture.items}
    texts = {prompt_key(it) for it in mixture.items}
    val: dict[str, list[Item]] = {}
    for s in skills:
        if suite is not None and hasattr(suite, "synthesize"):
            val[s] = validation_items(suite, s, n, seed)
        else:
            val[s] = [it for it in pool if s in it.skills and it.id not in used and prompt_key(it) not in texts][:n]
    val = {s: v for s, v in val.items() if v}
    assert_disjoint(mixture.items, [it for v in val.values() for it in v], "the training set", "validation items")
    return val


def read_missing(path: str | Path) -> dict[str, int]:
    """The Missing-Skill-Profile of a profile JSON (`skillgap profile` or `skillgap diagnose`), checked."""
    from skillgap.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file (--profile wants a profile JSON from `skillgap profile`)")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, None, f"invalid JSON ({e.msg})") from None
    missing = d.get("missing") if isinstance(d, dict) else None
    if not isinstance(missing, dict) or not all(isinstance(v, int) and v >= 0 for v in missing.values()):
        raise DataError(path, None, "missing", "expected an object of skill id -> count of failed items, as "
                        "`skillgap profile` writes it")
    return missing


def train_recipe(model: ModelConfig, data: DataConfig, tc: TargetConfig, train_cfg: TrainConfig, ev: EvalConfig,
                 output_path: str | Path, runs_dir: str | Path = "runs", profile_path: str | Path | None = None,
                 teacher: Any = None, console: Console | None = None) -> TrainResult:
    console = console or Console(stderr=True)
    train_cfg = train_cfg.resolved(model)  # --method auto: full fine-tuning for a from-scratch model
    for cfg in (model, data, train_cfg, ev):
        cfg.check()
    if not data.data:
        tc.check(teacher)
    missing = read_missing(profile_path) if profile_path else None
    if tc.train_data:  # a pool from a file: none of the suite's test items may be in it
        test_items, _, _ = load_items(replace(data, limit=data.limit or 1000))
        assert_disjoint(load_pool(data, tc)[0], test_items, pool_source(tc), source(data))
    out = Path(output_path)
    # Under `accelerate launch`, the main process alone writes (config, diagnosis and its run store, training set);
    # the others wait for it, then read the training set it wrote, so every process trains on the same items.
    with main_process_first(model.device) as main:
        if not main:
            console = Console(stderr=True, quiet=True)
        else:
            out.mkdir(parents=True, exist_ok=True)
            write_json({"model": model.to_dict(), "data": asdict(data), "target": asdict(tc),
                        "train": asdict(train_cfg), "eval": asdict(ev),
                        "profile": str(profile_path) if profile_path else None,
                        "teacher": teacher.identity if teacher is not None else None}, out / "config.json")
        if data.data:  # a ready training file: train on it as it is
            items = read_train_file(data)
            skills = sorted({s for it in items for s in it.skills})
            mixture = Mixture("file", items, order="file")
            if main:
                write_json(mixture.to_dict(), out / "mixture.json")
            val = validation_sets(mixture, items, skills, None, 0, data.seed)
        else:
            if main:
                prep = prepare(model, data, tc, ev, runs_dir, out, console, missing, teacher)
            else:
                pool, skill_set, suite = load_pool(data, tc)
                prep = Prepared(Mixture(tc.strategy, read_jsonl(out / "train.jsonl")), pool, skill_set, suite, None)
            mixture = prep.mixture
            skill_ids = list(prep.skills.ids) if prep.skills else sorted({s for it in prep.pool for s in it.skills})
            val = validation_sets(mixture, prep.pool, skill_ids, prep.suite, tc.val_per_skill, data.seed)
    return train(model, mixture.items, train_cfg, out, val=val, console=console)
