"""Recipe: the whole loop, from a model's gaps to the evidence that training closed them.

    diagnosis = profile(model, pool sample)        # grade -> missing-skill profile
    before    = profile(model, test items)
    mixture   = build_mixture(strategy, diagnosis.missing, pool, budget)   # target
    weights   = train(model, mixture.items)        # train (LoRA by default)
    after     = profile(model + weights, the same test items)              # verify
    report    = compare(before, after) -> report.html, report.json   # paired: the same items, flip by flip

With `--mixture skill-it` (or its baselines `stratified`, `random`) the target stage is an online mixture
instead: no diagnosis, and training reads `--budget` examples from a stream whose skill weights the
per-skill validation losses steer (`recipes/online.py`); the report counts the examples it served.

The diagnosis runs on training items, as STAT diagnoses on its training questions, so the test
items stay untouched until they measure before and after (checked: none is in the training
set). Every stage is resumable: profiles live in the run store, training checkpoints in the
output directory, and a finished stage is not run again. Every option is checked (`check`) before
any of it starts.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap import __version__
from skillgap.data import DataConfig, Items, load_items, source
from skillgap.errors import ConfigError
from skillgap.io import write_json
from skillgap.items import write_jsonl
from skillgap.models import ModelConfig, ModelPool, model_identity
from skillgap.recipes.profile import EvalConfig, profile
from skillgap.recipes.online import MixConfig, Online, build_online, check_online
from skillgap.recipes.train import Pool, TargetConfig, diagnose, load_pool, pool_source, prepare, validation_sets
from skillgap.report import write_report
from skillgap.target import Mixture
from skillgap.train import TrainConfig, train
from skillgap.verify import VerifyConfig, assert_disjoint, compare, verdict_line


@dataclass
class RunData:
    """A run's items, read, validated and checked for overlap once, before any model work; every stage takes them
    from here, so the pool file is parsed once and before and after are measured on the very same items."""

    test: Items  # measured before and after
    pool: Pool | None  # what targeting selects from, and the sample the diagnosis grades (None: an online mixture)
    online: Online | None  # the online mixture, its stream checked against the test items


def check(model: ModelConfig, data: DataConfig, target: TargetConfig, train_cfg: TrainConfig, ev: EvalConfig,
          verify: VerifyConfig, teacher: Any = None, mixture: MixConfig | None = None) -> RunData:
    """Every option, name and file, before any model loads; returns the run's items (the online mixture is cheap to
    make). No training source may hold a test item, by id or by prompt text: the pool, or the stream."""
    for cfg in (model, data, train_cfg, ev, verify):
        cfg.check()
    if mixture is not None:
        check_online(data, mixture, train_cfg)
        if mixture.train_data != target.train_data:
            raise ConfigError("run --mixture reads its pool from --train-data; give it once.")
    target.check(teacher)
    if data.data and not target.train_data:
        raise ConfigError("With --data (the test items), also give --train-data (the pool to train from).")
    pool = None if mixture is not None else load_pool(data, target, ev.grader, diagnose=True)
    test = load_items(data, ev.grader, check=True)  # graded before and after: checked before any model loads
    if mixture is not None:
        return RunData(test, None, build_online(data, mixture, train_cfg, test.items, test.skills))
    assert_disjoint(pool.items, test.items, pool_source(target), source(data))
    return RunData(test, pool, None)


def run(model: ModelConfig, data: DataConfig, target: TargetConfig, train_cfg: TrainConfig, ev: EvalConfig,
        output_path: str | Path, runs_dir: str | Path = "runs", console: Console | None = None,
        verify: VerifyConfig | None = None, teacher: Any = None, mixture: MixConfig | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    verify = verify or VerifyConfig()
    train_cfg = train_cfg.resolved(model)  # --method auto: full fine-tuning for a from-scratch model
    if mixture is not None and train_cfg.max_steps <= 0:  # the same data budget as a fixed set: --budget examples
        train_cfg = replace(train_cfg, max_steps=-(-target.budget // (train_cfg.batch_size * train_cfg.grad_accum)))
    items = check(model, data, target, train_cfg, ev, verify, teacher, mixture)
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    config = {"model": model.to_dict(), "data": asdict(data), "target": asdict(target), "train": asdict(train_cfg),
              "mixture": asdict(mixture) if mixture else None,
              "eval": asdict(ev), "verify": asdict(verify), "teacher": teacher.identity if teacher else None,
              "runs_dir": str(runs_dir), "skillgap_version": __version__}
    write_json(config, out / "config.json")
    # One set of loaded models for the three profiles: with vLLM, one engine start serves diagnose, before and,
    # when the adapter is served as LoRA, after. It is closed before training when after needs another engine.
    models = ModelPool(lora_rank=train_cfg.lora_r if train_cfg.method == "lora" else 0)
    try:
        return _run(model, data, target, train_cfg, ev, out, runs_dir, console, verify, teacher, items, config, models,
                    mixture)
    finally:
        models.close()


def _run(model: ModelConfig, data: DataConfig, target: TargetConfig, train_cfg: TrainConfig, ev: EvalConfig,
         out: Path, runs_dir: str | Path, console: Console, verify: VerifyConfig, teacher: Any, items: RunData,
         config: dict[str, Any], models: ModelPool, mc: MixConfig | None) -> dict[str, Any]:
    timings: dict[str, float] = {}

    def stage(name: str) -> None:
        console.rule(f"[bold]{name}")
        timings[name] = time.perf_counter()

    def done(name: str) -> None:
        timings[name] = round(time.perf_counter() - timings[name], 2)

    diagnosis = None
    if mc is None:
        stage("diagnose")
        diagnosis = diagnose(model, data, target, ev, runs_dir, out, console, models=models, items=items.pool.diagnosis)
        done("diagnose")

    stage("before")
    before = profile(model, data, ev, runs_dir, out / "before.json", console, models=models, items=items.test).to_dict()
    done("before")

    stage("target")
    if mc is None:
        prep = prepare(model, data, target, ev, runs_dir, out, console, diagnosis=diagnosis, teacher=teacher,
                       pool=items.pool)
        # the pool was checked before any work; the items a strategy wrote (stat-syn, skillmix) exist only now
        assert_disjoint(prep.mixture.items, items.test.items, f"the {target.strategy} training set", source(data))
        val = validation_sets(prep.mixture, prep.pool, [s["id"] for s in before["skills"]], prep.suite,
                              target.val_per_skill, data.seed)
    else:
        online = items.online
        val = online.val
        console.print(online.describe(mc))
    done("target")

    stage("train")
    if not models.serves_adapters(model):
        models.close()  # the after profile needs a new engine anyway: give its memory to the trainer
    if mc is None:
        result = train(model, prep.mixture.items, train_cfg, out, val=val, console=console)
        mixture = prep.mixture
    else:
        result = train(model, [], train_cfg, out, val=val, console=console, stream=online.stream,
                       round_steps=online.rounds)
        served = online.served(result.examples_seen)  # a part of what `check` found free of test items
        write_jsonl(served, out / "train.jsonl")
        mixture = Mixture(mc.mixture, served, order="online", notes={"online": True, "round_steps": online.rounds, "eta": online.eta,
                                                     "changes": [{"from_example": i, "weights": w}
                                                                 for i, w in online.stream.changes]})
    done("train")

    stage("after")
    trained = result.as_model(model)
    after = profile(trained, data, ev, runs_dir, out / "after.json", console, models=models,
                    items=items.test).to_dict()
    done("after")

    verdict = compare(before, after, verify)
    report = {
        "skillgap_version": __version__, "config": config, "model": model_identity(model),
        "suite": data.suite if not data.data else data.data,
        "strategy": target.strategy if mc is None else f"mixture:{mc.mixture}",
        "budget": target.budget, "seed": data.seed,
        "before": before, "after": after, "diagnosis": diagnosis,
        "deltas": {"overall": verdict["overall"], "skills": verdict["skills"], "by_k": verdict["by_k"],
                   "test": verdict["test"], "correction": verdict["correction"], "alpha": verdict["alpha"]},
        "improved": verdict["improved"], "regressions": verdict["regressions"], "verdict": verdict_line(verdict),
        "mixture": mixture.to_dict() | {"budget": target.budget},
        "training": {k: v for k, v in result.to_dict().items() if k != "fingerprint"},
        "timings": timings,
    }

    write_report(report, out)
    return report
