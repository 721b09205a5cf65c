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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig
from skillgap.errors import ConfigError
from skillgap.items import Item, read_jsonl, write_jsonl
from skillgap.models import ModelConfig
from skillgap.recipes.profile import EvalConfig, profile, write_json
from skillgap.skills import SkillSet
from skillgap.target import Mixture, Request, build_mixture
from skillgap.train import TrainConfig, TrainResult, train


@dataclass(frozen=True)
class TargetConfig:
    """How the training set is built."""

    strategy: str = "stat-sel"  # uniform | stat-sel | stat-syn | curriculum
    budget: int = 512  # training examples
    diagnose_limit: int = 100  # pool items the base model is diagnosed on
    pool_size: int = 4000  # suite items generated as the selection pool
    train_data: str | None = None  # a JSONL pool instead of the suite's generator
    val_per_skill: int = 8  # held-out items per skill for the validation-loss curves


@dataclass
class Prepared:
    mixture: Mixture
    pool: list[Item]
    skills: SkillSet | None
    suite: Any
    diagnosis: dict[str, Any] | None


def load_pool(data: DataConfig, tc: TargetConfig) -> tuple[list[Item], SkillSet | None, Any]:
    """The training pool: the suite's train stream, or a file of training items."""
    if tc.train_data:
        return read_jsonl(tc.train_data), None, None
    if data.data:
        raise ConfigError("With --data, also give --train-data: the pool that targeting selects from.")
    from skillgap.suites import load_suite

    suite = load_suite(data.suite or "arith")
    return suite.generate("train", tc.pool_size, data.seed), suite.skills, suite


def diagnose(model: ModelConfig, data: DataConfig, tc: TargetConfig, ev: EvalConfig, runs_dir: str | Path,
             out: Path, console: Console) -> dict[str, Any]:
    """The base model on a sample of the pool: its Missing-Skill-Profile drives targeting."""
    if tc.train_data:
        diag = DataConfig(suite=None, data=tc.train_data, split="train", limit=tc.diagnose_limit, seed=data.seed)
    else:  # the suite's train stream is a prefix-stable sequence, so this sample is the pool's head
        diag = replace(data, data=None, split="train", limit=tc.diagnose_limit)
    return profile(model, diag, ev, runs_dir, out / "diagnosis.json", console).to_dict()


def prepare(model: ModelConfig, data: DataConfig, tc: TargetConfig, ev: EvalConfig, runs_dir: str | Path,
            out: Path, console: Console, missing: dict[str, int] | None = None) -> Prepared:
    """Pool -> (diagnosis) -> mixture, written to `out/train.jsonl` and `out/mixture.json`."""
    pool, skills, suite = load_pool(data, tc)
    diagnosis = None
    if missing is None and tc.strategy != "uniform":
        diagnosis = diagnose(model, data, tc, ev, runs_dir, out, console)
        missing = diagnosis["missing"]
    mixture = build_mixture(tc.strategy, Request(missing or {}, pool, tc.budget, data.seed, skills, suite))
    write_jsonl(mixture.items, out / "train.jsonl")
    write_json(mixture.to_dict() | {"budget": tc.budget}, out / "mixture.json")
    console.print(f"{tc.strategy}: {len(mixture.items)} examples; by skill "
                  + ", ".join(f"{s} {n}" for s, n in list(mixture.by_skill().items())[:8]))
    return Prepared(mixture, pool, skills, suite, diagnosis)


def validation_sets(mixture: Mixture, pool: list[Item], skills: list[str], suite: Any, n: int,
                    seed: int) -> dict[str, list[Item]]:
    """Per-skill held-out training-style items, none of them in the training set."""
    used = {it.id for it in mixture.items}
    val: dict[str, list[Item]] = {}
    for s in skills:
        if suite is not None and hasattr(suite, "synthesize"):
            cands = suite.synthesize(s, n, seed=10_000 + seed)
        else:
            cands = [it for it in pool if s in it.skills and it.id not in used][:n]
        val[s] = [it for it in cands if it.id not in used]
    return {s: v for s, v in val.items() if v}


def train_recipe(model: ModelConfig, data: DataConfig, tc: TargetConfig, train_cfg: TrainConfig, ev: EvalConfig,
                 output_path: str | Path, runs_dir: str | Path = "runs", profile_path: str | Path | None = None,
                 console: Console | None = None) -> TrainResult:
    console = console or Console(stderr=True)
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    write_json({"model": model.to_dict(), "data": asdict(data), "target": asdict(tc), "train": asdict(train_cfg),
                "eval": asdict(ev), "profile": str(profile_path) if profile_path else None}, out / "config.json")
    if data.data:  # a ready training file: train on it as it is
        items = read_jsonl(data.data)[: data.limit] if data.limit else read_jsonl(data.data)
        skills = sorted({s for it in items for s in it.skills})
        mixture = Mixture("file", items, order="file")
        write_json(mixture.to_dict(), out / "mixture.json")
        val = validation_sets(mixture, items, skills, None, 0, data.seed)
    else:
        missing = json.loads(Path(profile_path).read_text())["missing"] if profile_path else None
        prep = prepare(model, data, tc, ev, runs_dir, out, console, missing)
        mixture = prep.mixture
        skill_ids = list(prep.skills.ids) if prep.skills else sorted({s for it in prep.pool for s in it.skills})
        val = validation_sets(mixture, prep.pool, skill_ids, prep.suite, tc.val_per_skill, data.seed)
    return train(model, mixture.items, train_cfg, out, val=val, console=console)
