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
from typing import Any, NamedTuple

from rich.console import Console

from skillgap.attribution import DIAGNOSES, Targets, targets
from skillgap.data import DataConfig, Items, load_items, read_train_file, restrict, source, suite_of, train_file
from skillgap.errors import ConfigError, DataError, unknown_name
from skillgap.io import read_json, write_json, write_text
from skillgap.items import Item, read_jsonl, write_jsonl
from skillgap.models import ModelConfig
from skillgap.recipes.profile import EvalConfig, profile
from skillgap.scoring import to_record
from skillgap.skills import SkillSet
from skillgap.suites import active_skills, validation_items
from skillgap.target import STRATEGIES, TARGETED, Mixture, Request, build_mixture
from skillgap.target.skillmix import load_query_types
from skillgap.train import TrainConfig, TrainResult, main_process_first, train
from skillgap.verify import assert_disjoint, prompt_key


@dataclass(frozen=True)
class TargetConfig:
    """How the training set is built."""

    strategy: str = field(default="stat-sel", metadata={
        "help": "uniform | stat-sel | stat-syn | curriculum | skillmix | active (the pool items with the highest "
                "loss on their reference answers: targeting's skill-blind rival)"})
    diagnosis: str = field(default="joint", metadata={
        "choices": DIAGNOSES,
        "help": "how the missing skills are named: joint (every skill's mastery fitted together, docs/attribution.md), "
                "count (STAT's count of failed items per skill), accuracy (per-skill accuracy), teacher (a "
                "teacher's profile from `skillgap diagnose`, given with --profile)"})
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

    def check(self, teacher: Any = None, profile: bool = False) -> None:
        """Every option, before any model loads or any item is generated; `load_pool` reads the pool file, once.
        `profile`: a --profile is given (its diagnosis is used instead of one made here)."""
        if self.strategy not in STRATEGIES:
            raise unknown_name("strategy", self.strategy, list(STRATEGIES))
        if self.diagnosis not in DIAGNOSES:
            raise unknown_name("diagnosis", self.diagnosis, DIAGNOSES)
        if self.diagnosis == "teacher" and teacher is None and not profile and self.strategy in TARGETED:
            raise ConfigError("--diagnosis teacher has a teacher name the missing skills of each wrong answer: give "
                              "--teacher MODEL (and --teacher-base-url for an endpoint), or a teacher's profile "
                              "from `skillgap diagnose` with --profile.")
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
                load_query_types(self.query_types)
        if self.train_data and self.strategy == "stat-syn" and teacher is None:
            raise ConfigError("--strategy stat-syn on --train-data (no generator) needs a teacher to write the new "
                              "items: --teacher MODEL (and --teacher-base-url for an endpoint).")


@dataclass
class Prepared:
    mixture: Mixture
    pool: list[Item]
    skills: SkillSet | None
    suite: Any
    diagnosis: dict[str, Any] | None


class Pool(NamedTuple):
    """The training pool, read once before any model work, then handed to diagnosis, targeting and training."""

    items: list[Item]  # what targeting selects from: training items by where they come from (split "train")
    skills: SkillSet | None  # the suite's inventory (None for a file)
    suite: Any  # the suite that generated them (None for a file)
    diagnosis: Items | None = None  # the sample the base model is diagnosed on, when a diagnosis will run


def diagnosed(target: TargetConfig, given: dict[str, Any] | None) -> bool:
    """Whether targeting needs a diagnosis of the base model (skillmix without a profile targets every skill; active
    ranks by loss)."""
    return given is None and target.strategy not in ("uniform", "skillmix", "active")


def diagnosis_data(data: DataConfig, target: TargetConfig) -> DataConfig:
    """The pool sample the base model is diagnosed on, as data (its run id in the store)."""
    if target.train_data:
        return train_file(data, target.train_data, target.train_format, target.train_fields,
                          limit=target.diagnose_limit)
    # the suite's train stream is a prefix-stable sequence, so this sample is the pool's head
    return replace(data, data=None, split="train", limit=target.diagnose_limit)


def load_pool(data: DataConfig, target: TargetConfig, grader: str | None = None, diagnose: bool = False) -> Pool:
    """The training pool: the suite's train stream, or a file of training items, read once. With `diagnose`, also the
    sample the diagnosis grades with `grader` (else the data's own), and a file's references are checked against that
    grader here, before any model loads."""
    sample = diagnosis_data(data, target)
    if target.train_data:
        read = load_items(replace(sample, limit=None), grader, check=diagnose)
        diagnosis = read._replace(items=restrict(read.items, sample)) if diagnose else None
        return Pool([replace(it, split="train") for it in read.items], None, None, diagnosis)
    if data.data:
        raise ConfigError("With --data, also give --train-data: the pool that targeting selects from.")
    suite = suite_of(data)
    diagnosis = load_items(sample, grader, check=True) if diagnose else None
    return Pool(suite.generate("train", target.pool_size, data.seed), active_skills(suite), suite, diagnosis)


def pool_source(target: TargetConfig) -> str:
    """The training pool as the user named it: for the leak check's message."""
    return f"--train-data {target.train_data}" if target.train_data else "the suite's training pool"


def diagnose(model: ModelConfig, data: DataConfig, target: TargetConfig, ev: EvalConfig, runs_dir: str | Path,
             out: Path, console: Console, models: Any = None, items: Items | None = None) -> dict[str, Any]:
    """The base model on a sample of the pool: its Missing-Skill-Profile drives targeting. `items`: that sample as
    `load_pool(..., diagnose=True)` read it (else it is read here)."""
    return profile(model, diagnosis_data(data, target), ev, runs_dir, out / "diagnosis.json", console, models=models,
                   items=items).to_dict()


def prepare(model: ModelConfig, data: DataConfig, target: TargetConfig, ev: EvalConfig, runs_dir: str | Path,
            out: Path, console: Console, diagnosis: dict[str, Any] | None = None, teacher: Any = None,
            pool: Pool | None = None) -> Prepared:
    """Pool -> (diagnosis) -> mixture, written to `out/train.jsonl` and `out/mixture.json`; `pool` as `load_pool`
    read it (else it is read here); `diagnosis` a profile of the model (the run's, or --profile), else made here.

    The missing skills are named from the diagnosis by --diagnosis (`skillgap.attribution.targets`). When its
    evidence is thin (too few graded items, mostly format failures, or no gap named), a targeted strategy falls
    back to uniform and says why. With a `teacher`, stat-syn has it write the new items (the paper's way), even
    where the suite could generate them."""
    if pool is None:
        pool = load_pool(data, target, ev.grader, diagnosed(target, diagnosis))
    if diagnosed(target, diagnosis):
        diagnosis = diagnose(model, data, target, ev, runs_dir, out, console, items=pool.diagnosis)
    if target.diagnosis == "teacher" and diagnosis is not None and target.strategy in TARGETED \
            and (diagnosis.get("diagnosis") or {}).get("method") != "teacher":
        from skillgap.recipes.diagnose import diagnose_recipe  # the teacher reads each wrong answer of the diagnosis

        diagnosis = diagnose_recipe(diagnosis["run_id"], teacher, out / "diagnosis-teacher.json", runs_dir,
                                    console=console)
    aim = targets(diagnosis, target.diagnosis) if diagnosis is not None else Targets(target.diagnosis, {})
    generator = None if teacher is not None else pool.suite
    query_types = ()
    if target.query_types:
        query_types = load_query_types(target.query_types)
    mixture = build_mixture(target.strategy, Request(aim, pool.items, target.budget, data.seed, pool.skills,
                                                     generator, teacher, target.replay, target.skillmix_k, query_types,
                                                     student=model))
    mixture.notes["diagnosis"] = aim.to_dict()
    write_jsonl(mixture.items, out / "train.jsonl")
    write_json(mixture.to_dict() | {"budget": target.budget}, out / "mixture.json")
    export_sft(mixture, out)
    if aim.weights and target.strategy in TARGETED:
        console.print(f"{target.diagnosis} diagnosis: " + ", ".join(
            f"{s} {w:g}" if aim.method in ("count", "teacher") else f"{s} (-{w:.2f})"
            for s, w in list(aim.weights.items())[:8]))
    console.print(f"{mixture.strategy}: {len(mixture.items)} examples; by skill "
                  + ", ".join(f"{s} {n}" for s, n in list(mixture.by_skill().items())[:8]))
    if mixture.notes.get("warning"):
        console.print(f"[yellow]{mixture.notes['warning']}[/yellow]")
    return Prepared(mixture, pool.items, pool.skills, pool.suite, diagnosis)


def validation_sets(mixture: Mixture, pool: list[Item], skills: list[str], suite: Any, n: int,
                    seed: int) -> dict[str, list[Item]]:
    """Per-skill held-out items for the validation-loss curves: the suite's validation split, or pool items
    the training set does not hold (checked by id and by text)."""
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


def export_sft(mixture: Mixture, out: Path) -> Path:
    """The training set as TRL trains it, for any trainer: `out/sft/train.jsonl`, conversational prompt/completion
    records with where each came from (`source_id`, `skills`, `strategy`), so `datasets.load_dataset("out/sft")`
    and `trl sft --dataset_name out/sft` read it as is; and the same rows saved with `datasets` (`out/sft-arrow`,
    `load_from_disk`). The completion is the item's worked solution, else "The answer is …", as skillgap trains."""
    from datasets import Dataset

    rows = [to_record(it) | {"source_id": it.id, "skills": list(it.skills), "strategy": mixture.strategy}
            for it in mixture.items]
    (out / "sft").mkdir(parents=True, exist_ok=True)
    write_text(out / "sft" / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    Dataset.from_list(rows).save_to_disk(str(out / "sft-arrow"))
    return out / "sft"


def read_profile(path: str | Path, diagnosis: str) -> dict[str, Any]:
    """A profile JSON (`skillgap profile` or `skillgap diagnose`), checked for what `diagnosis` reads of it: the
    Missing-Skill-Profile (count, teacher) or the graded records (joint, accuracy)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file (--profile wants a profile JSON from `skillgap profile`)")
    d = read_json(path)
    if not isinstance(d, dict):
        raise DataError(path, None, None, "expected a profile object, as `skillgap profile` writes it")
    missing = d.get("missing")
    if not isinstance(missing, dict) or not all(isinstance(v, int) and v >= 0 for v in missing.values()):
        raise DataError(path, None, "missing", "expected an object of skill id -> count of failed items, as "
                        "`skillgap profile` writes it")
    if diagnosis in ("joint", "accuracy") and not isinstance(d.get("records"), list):
        raise DataError(path, None, "records", f"--diagnosis {diagnosis} fits every graded item: expected the list "
                        "of item outcomes `skillgap profile` writes (or pass --diagnosis count)")
    return d


def train_recipe(model: ModelConfig, data: DataConfig, target: TargetConfig, train_cfg: TrainConfig, ev: EvalConfig,
                 output_path: str | Path, runs_dir: str | Path = "runs", profile_path: str | Path | None = None,
                 teacher: Any = None, console: Console | None = None, export_only: bool = False) -> TrainResult | None:
    """Build the targeted set (or read --data), then fine-tune on it; `export_only`: stop once the set is written
    (`out/train.jsonl`, and `out/sft` for TRL or any trainer), loading no model when `profile_path` names the gaps."""
    console = console or Console(stderr=True)
    train_cfg = train_cfg.resolved(model)  # --method auto: full fine-tuning for a from-scratch model
    for cfg in (model, data, train_cfg, ev):
        cfg.check()
    if export_only and data.data:
        raise ConfigError("--export-only writes a targeted set: select from the suite or --train-data, not --data.")
    if not data.data:
        target.check(teacher, profile=bool(profile_path))
    given = read_profile(profile_path, target.diagnosis) if profile_path else None
    if given is not None:
        targets(given, target.diagnosis)  # a --diagnosis the profile cannot give fails here, before any model work
    pool = None if data.data else load_pool(data, target, ev.grader, diagnosed(target, given))
    if pool is not None and target.train_data:  # a pool from a file: none of the suite's test items may be in it
        test_items = load_items(replace(data, limit=data.limit or 1000)).items
        assert_disjoint(pool.items, test_items, pool_source(target), source(data))
    out = Path(output_path)
    # Under `accelerate launch`, the main process alone writes (config, diagnosis and its run store, training set);
    # the others wait for it, then read the training set it wrote, so every process trains on the same items.
    with main_process_first(model.device) as main:
        if not main:
            console = Console(stderr=True, quiet=True)
        else:
            out.mkdir(parents=True, exist_ok=True)
            write_json({"model": model.to_dict(), "data": asdict(data), "target": asdict(target),
                        "train": asdict(train_cfg), "eval": asdict(ev),
                        "profile": str(profile_path) if profile_path else None,
                        "teacher": teacher.identity if teacher is not None else None}, out / "config.json")
        if pool is None:  # a ready training file: train on it as it is
            items = read_train_file(data)
            skills = sorted({s for it in items for s in it.skills})
            mixture = Mixture("file", items, order="file")
            if main:
                write_json(mixture.to_dict(), out / "mixture.json")
            val = validation_sets(mixture, items, skills, None, 0, data.seed)
        else:
            if main:
                prep = prepare(model, data, target, ev, runs_dir, out, console, given, teacher, pool)
                if export_only:
                    return None
            else:
                prep = Prepared(Mixture(target.strategy, read_jsonl(out / "train.jsonl")), pool.items, pool.skills,
                                pool.suite, None)
            mixture = prep.mixture
            skill_ids = list(prep.skills.ids) if prep.skills else sorted({s for it in prep.pool for s in it.skills})
            val = validation_sets(mixture, prep.pool, skill_ids, prep.suite, target.val_per_skill, data.seed)
    return train(model, mixture.items, train_cfg, out, val=val, console=console)
