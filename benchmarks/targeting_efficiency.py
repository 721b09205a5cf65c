"""Does targeting pay? A student with known gaps, every strategy from it at equal budgets (issue 13).

1. **Student.** The embedded model fine-tuned (full) on `arith` items that exercise none of a held-out
   set G (`--exclude-skills`), so it is competent on the other skills and misses G. It is a model folder
   (`<work>/student-<G>/model`) that every command accepts; `--student-*` set how it is made. It must
   reach `--known-floor` macro accuracy on the known skills' single-skill *validation* items.
2. **Settings** for training a competent student (the learning rate of the LoRA), chosen on validation
   items (the suite's validation split, never test): `uniform` at the largest budget for each candidate
   `--lr`, the one with the best validation accuracy overall wins. Written to `<work>/settings-<G>.json`.
3. **Strategies** from the student, at the same budgets, for every seed and replay share: the fixed sets
   (`uniform`, `stat-sel`, `stat-syn`, `curriculum`) built at the largest budget, and Skill-it's online
   mixture (`skill-it`, the stream `skillgap run --mixture skill-it` trains on), each trained once with a
   constant learning rate and checkpointed at every budget (a checkpoint after B examples is what a B-example
   run gives). Every checkpoint is measured on the same `--test-limit` test items.
4. **Measures** per run and budget: macro accuracy over G, over the known skills, overall and by k, with
   exact McNemar tests against the student on the items touching G and on the others; the diagnosis of the
   student (precision and recall of its top-|G| missing skills against G); and the examples each strategy
   needs to reach uniform's G accuracy at the largest budget, as a ratio to uniform's, with a bootstrap
   interval over seeds and items. The ideal ratio if only G's share of the data mattered is
   1 / (uniform's share of examples touching G).

Resumable at every step: trainings skip when done, profiles live in the work directory's run store, and
`--output-path` is rewritten after every measured checkpoint.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/targeting_efficiency.py --g round,unit_convert,order_ops \\
        --seeds 0,1,2 --work-dir /var/tmp/targeting --output-path benchmarks/results/targeting_efficiency.json

A smoke run (a few minutes): --model scratch-tiny --student-budget 64 --budgets 8,16 --train-batch-size 4
    --test-limit 24 --val-limit 24 --diagnose-limit 16 --lr 1e-3 --seeds 0 --replay 0
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig, suite_of
from skillgap.models import ModelConfig, ModelPool
from skillgap.recipes.online import MixConfig, build_online
from skillgap.recipes.profile import EvalConfig, profile, write_json
from skillgap.recipes.train import TargetConfig, diagnose, prepare, train_recipe
from skillgap.suites import active_skills
from skillgap.train import TrainConfig, train
from skillgap.verify import paired_delta

FIXED = ("uniform", "stat-sel", "stat-syn", "curriculum")
ONLINE = ("skill-it", "stratified", "random")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m", help="the base model the student is made from")
    p.add_argument("--suite", default="arith")
    p.add_argument("--g", action="append", required=True, metavar="A,B,C",
                   help="a held-out skill set G (repeat for a second G)")
    p.add_argument("--strategies", default="uniform,stat-sel,stat-syn,curriculum,skill-it")
    p.add_argument("--budgets", default="64,128,256,512")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--replay", default="0,0.25", help="replay shares to run every strategy with")
    p.add_argument("--test-limit", type=int, default=300, help="test items shared by every run")
    p.add_argument("--val-limit", type=int, default=300, help="validation items for the student and the settings")
    p.add_argument("--diagnose-limit", type=int, default=200)
    p.add_argument("--train-batch-size", type=int, default=16)
    p.add_argument("--lr", default="1e-4,3e-4,1e-3", help="LoRA learning rates to choose from on validation items")
    p.add_argument("--student-budget", type=int, default=1600, help="training examples for the student")
    p.add_argument("--student-lr", type=float, default=5e-5)
    p.add_argument("--known-floor", type=float, default=0.6)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--work-dir", type=Path, default=Path("/var/tmp/skillgap-targeting"))
    p.add_argument("--output-path", type=Path, default=Path("benchmarks/results/targeting_efficiency.json"))
    return p.parse_args(argv)


# ---------------------------------------------------------------- measures

def macro(prof: dict[str, Any], skills: list[str]) -> float:
    """The mean of per-skill accuracies (each skill's items, composed ones included)."""
    accs = [s["accuracy"] for s in prof["skills"] if s["id"] in skills and s["n"]]
    return statistics.fmean(accs) if accs else math.nan


def measures(prof: dict[str, Any], student: dict[str, Any], g: list[str], known: list[str]) -> dict[str, Any]:
    """What one checkpoint did, against the student on the same items (paired)."""
    before = {r["id"]: r for r in student["records"]}
    pairs_g = [(before[r["id"]]["correct"], r["correct"]) for r in prof["records"] if set(r["skills"]) & set(g)]
    pairs_k = [(before[r["id"]]["correct"], r["correct"]) for r in prof["records"] if not set(r["skills"]) & set(g)]
    pick = ("before", "after", "delta", "delta_ci_low", "delta_ci_high", "n", "gained", "lost", "p_value")
    return {"g_macro": macro(prof, g), "known_macro": macro(prof, known), "overall": prof["overall"]["accuracy"],
            "unparsed": prof["overall"].get("unparsed", 0), "by_k": {str(r["k"]): r["accuracy"] for r in prof["by_k"]},
            "skills": {s["id"]: s["accuracy"] for s in prof["skills"]},
            "items_g": {k: v for k, v in paired_delta(pairs_g).items() if k in pick},
            "items_known": {k: v for k, v in paired_delta(pairs_k).items() if k in pick},
            "correct": "".join("1" if r["correct"] else "0" for r in prof["records"])}


def diagnosis_quality(missing: dict[str, int], g: list[str]) -> dict[str, Any]:
    """Does the missing-skill profile name G? Its top-|G| skills by count, against G."""
    top = sorted(missing, key=lambda s: (-missing[s], s))[: len(g)]
    hit = len(set(top) & set(g))
    return {"top": top, "precision": hit / len(top) if top else math.nan, "recall": hit / len(g)}


def examples_needed(curve: list[tuple[int, float]], target: float) -> float:
    """The first budget where the curve reaches `target`, linear between measured budgets; inf if never."""
    for (b0, a0), (b1, a1) in zip(curve, curve[1:]):
        if a1 >= target:
            return float(b0) if a0 >= target else b0 + (b1 - b0) * (target - a0) / (a1 - a0)
    return math.inf


def ratios(rows: list[dict[str, Any]], items: list[dict[str, Any]], g: list[str], strategies: list[str],
           seeds: list[int], budgets: list[int], replay: float, n_boot: int) -> dict[str, Any]:
    """Examples each strategy needs to reach uniform's G accuracy at the largest budget, relative to uniform
    (uniform's examples / the strategy's: above 1 means fewer examples; 0: never reached), with a bootstrap
    that resamples the seeds and the test items (the same items for every run: they are shared)."""
    import numpy as np

    bits = {(r["seed"], r["strategy"], r["budget"]): np.array([c == "1" for c in r["correct"]], dtype=float)
            for r in rows if r["replay"] == replay}
    masks = [np.array([s in it["skills"] for it in items], dtype=float) for s in g]

    def g_macro(correct: np.ndarray, w: np.ndarray) -> float:
        accs = [(w * m * correct).sum() / (w * m).sum() for m in masks if (w * m).sum()]
        return float(np.mean(accs)) if accs else math.nan

    def ratio_once(seed_draw: list[int], w: np.ndarray) -> dict[str, float]:
        out: dict[str, list[float]] = {}
        for seed in seed_draw:
            curves = {}
            for s in strategies:
                pts = [(b, g_macro(bits[(seed, s, b)], w)) for b in [0] + budgets if (seed, s, b) in bits]
                curves[s] = pts
            if len(curves.get("uniform", [])) != len(budgets) + 1:
                continue
            target = curves["uniform"][-1][1]
            need_u = examples_needed(curves["uniform"], target)
            for s, pts in curves.items():
                need = examples_needed(pts, target) if len(pts) == len(budgets) + 1 else math.nan
                out.setdefault(s, []).append(need_u / need if need and math.isfinite(need) else 0.0
                                             if need == math.inf else math.nan)
        return {s: statistics.fmean(v) for s, v in out.items() if v and not any(math.isnan(x) for x in v)}

    point = ratio_once(seeds, np.ones(len(items)))
    rng = random.Random(0)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        w = np.bincount([rng.randrange(len(items)) for _ in items], minlength=len(items)).astype(float)
        got = ratio_once([rng.choice(seeds) for _ in seeds], w)
        for s, v in got.items():
            draws.setdefault(s, []).append(v)

    def ci(v: list[float]) -> tuple[float, float]:
        v = sorted(v)
        return (v[int(0.025 * len(v))], v[min(len(v) - 1, int(0.975 * len(v)))]) if v else (math.nan, math.nan)

    return {s: {"ratio": point.get(s, math.nan), "ci": ci(draws.get(s, []))} for s in strategies}


def mean_ci(xs: list[float]) -> list[float]:
    """Mean and a t 95% interval over seeds."""
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return [math.nan] * 3
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return [m, math.nan, math.nan]
    t = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}.get(len(xs) - 1, 1.96)
    h = t * statistics.stdev(xs) / math.sqrt(len(xs))
    return [m, m - h, m + h]


# ---------------------------------------------------------------- stages

def make_student(a: argparse.Namespace, g: list[str], work: Path, console: Console) -> tuple[ModelConfig, dict]:
    """Full fine-tuning on the suite without G, until it is competent on the rest (checked on validation)."""
    out = work / f"student-{'.'.join(g)}"
    from skillgap.models.scratch import is_scratch, scratch_model

    name = str(scratch_model(a.model, a.suite)) if is_scratch(a.model) else a.model  # a smoke run's tiny model
    base = ModelConfig(name, backend=a.backend, device=a.device)
    data = DataConfig(suite=a.suite, split="train", limit=None, seed=0, exclude_skills=tuple(g))
    tc = TargetConfig(strategy="uniform", budget=a.student_budget, pool_size=a.student_budget)
    cfg = TrainConfig(method="full", learning_rate=a.student_lr, warmup_steps=5, batch_size=a.train_batch_size,
                      eval_every=0, save_every=20, seed=0)
    ev = EvalConfig(max_new_tokens=a.max_new_tokens)
    result = train_recipe(base, data, tc, cfg, ev, out, runs_dir=work_runs(a), console=console)
    student = replace(base, model=result.weights)
    val = profile(student, DataConfig(suite=a.suite, split="validation", limit=a.val_limit, seed=0), ev,
                  work_runs(a), out / "validation.json", console).to_dict()
    known = [s for s in suite_of(DataConfig(suite=a.suite)).skills.ids if s not in g]
    alone = {s["id"]: s["alone"]["accuracy"] for s in val["skills"] if s.get("alone", {}).get("n")}
    check = {"known_alone_macro": statistics.fmean(alone[s] for s in known if s in alone),
             "alone": alone, "g_macro": macro(val, g), "overall": val["overall"]["accuracy"],
             "steps": result.steps, "examples": result.examples_seen, "seconds": result.seconds}
    if check["known_alone_macro"] < a.known_floor:
        console.print(f"[yellow]student without {g}: known skills alone {check['known_alone_macro']:.1%} < "
                      f"{a.known_floor:.0%} on validation; raise --student-budget[/yellow]")
    return student, check


def choose_lr(a: argparse.Namespace, student: ModelConfig, g: list[str], work: Path, base_cfg: TrainConfig,
              models: ModelPool, console: Console) -> tuple[float, list[dict]]:
    """The LoRA learning rate with the best validation accuracy after uniform at the largest budget."""
    path = work / f"settings-{'.'.join(g)}.json"
    if path.is_file():
        d = json.loads(path.read_text())
        return d["chosen_lr"], d["candidates"]
    val_data = DataConfig(suite=a.suite, split="validation", limit=a.val_limit, seed=0)
    ev = EvalConfig(max_new_tokens=a.max_new_tokens)
    rows = []
    for lr in [float(x) for x in a.lr.split(",")]:
        out = work / f"settings-{'.'.join(g)}" / f"lr{lr:g}"
        data = DataConfig(suite=a.suite, split="train", limit=None, seed=0)
        prep = prepare(student, data, TargetConfig(strategy="uniform", budget=max(budgets_of(a))), ev, work_runs(a),
                       out, console)
        models.close()
        result = train(student, prep.mixture.items, replace(base_cfg, learning_rate=lr), out, console=console)
        prof = profile(replace(student, adapter=result.weights), val_data, ev, work_runs(a), out / "validation.json",
                       console, models=models).to_dict()
        known = [s["id"] for s in prof["skills"] if s["id"] not in g]
        rows.append({"lr": lr, "overall": prof["overall"]["accuracy"], "g_macro": macro(prof, g),
                     "known_macro": macro(prof, known)})
        console.print(f"lr {lr:g}: validation overall {rows[-1]['overall']:.1%}, G {rows[-1]['g_macro']:.1%}, "
                      f"known {rows[-1]['known_macro']:.1%}")
    best = max(rows, key=lambda r: r["overall"])["lr"]
    write_json({"chosen_lr": best, "rule": "best validation accuracy overall, uniform at the largest budget",
                "candidates": rows}, path)
    return best, rows


def budgets_of(a: argparse.Namespace) -> list[int]:
    return sorted(int(b) for b in a.budgets.split(","))


def run_strategy(a: argparse.Namespace, student: ModelConfig, strategy: str, seed: int, replay: float,
                 cfg: TrainConfig, diag: dict[str, Any] | None, out: Path, models: ModelPool,
                 console: Console) -> dict[int, str]:
    """Train once at the largest budget, checkpointing at every budget; the adapter folder per budget."""
    budgets = budgets_of(a)
    data = DataConfig(suite=a.suite, split="train", limit=None, seed=seed)
    ev = EvalConfig(max_new_tokens=a.max_new_tokens)
    steps = budgets[-1] // a.train_batch_size
    models.close()  # give the trainer the engine's memory
    if strategy in FIXED:
        tc = TargetConfig(strategy=strategy, budget=budgets[-1], diagnose_limit=a.diagnose_limit, replay=replay)
        prep = prepare(student, data, tc, ev, work_runs(a), out, console,
                       missing=diag["missing"] if diag else None)
        train(student, prep.mixture.items, replace(cfg, seed=seed, max_steps=steps), out, console=console)
    else:
        mc = MixConfig(mixture=strategy, val_per_skill=16, round_steps=max(1, steps // 4), replay=replay)
        tcfg = replace(cfg, seed=seed, max_steps=steps, eval_every=max(1, steps // 8))
        online = build_online(data, mc, tcfg, [], None)
        result = train(student, [], tcfg, out, val=online.val, console=console, stream=online.stream,
                       round_steps=online.rounds)
        (out / "served.jsonl").write_text("".join(json.dumps({"id": it.id, "skills": list(it.skills)}) + "\n"
                                                  for it in online.served(result.examples_seen)))
    return {b: str(out / "checkpoints" / f"checkpoint-{b // a.train_batch_size}") for b in budgets}


def work_runs(a: argparse.Namespace) -> Path:
    return a.work_dir / "runs"


def share_touching(path: Path, g: list[str], n: int) -> float:
    """The share of the first `n` training examples (what a checkpoint after n examples read) touching G."""
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()][:n]
    return sum(bool(set(r["skills"]) & set(g)) for r in rows) / len(rows) if rows else math.nan


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    console = Console(stderr=True)
    budgets = budgets_of(a)
    if any(b % a.train_batch_size for b in budgets):
        raise SystemExit("every budget must be a multiple of --train-batch-size")
    seeds = [int(s) for s in a.seeds.split(",")]
    replays = [float(r) for r in a.replay.split(",")]
    strategies = a.strategies.split(",")
    a.work_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = json.loads(a.output_path.read_text()) if a.output_path.is_file() else {}
    results["config"] = {k: str(v) for k, v in vars(a).items()}
    t0 = time.perf_counter()
    ev = EvalConfig(max_new_tokens=a.max_new_tokens)
    cfg = TrainConfig(method="lora", lr_scheduler="constant_with_warmup", warmup_steps=2,
                      batch_size=a.train_batch_size, eval_every=0, save_every=budgets[0] // a.train_batch_size,
                      keep_checkpoints=None)
    models = ModelPool()
    try:
        for g_spec in a.g:
            g = g_spec.split(",")
            key = ".".join(g)
            res = results.setdefault("g", {}).setdefault(key, {"rows": []})
            suite = suite_of(DataConfig(suite=a.suite))
            bad = [s for s in g if s not in suite.skills.ids]
            if bad:
                raise SystemExit(f"--g {g_spec}: unknown skills {bad}")
            known = [s for s in active_skills(suite).ids if s not in g]
            student, check = make_student(a, g, a.work_dir, console)
            res["student"] = check | {"model": student.model}
            test = DataConfig(suite=a.suite, split="test", limit=a.test_limit, seed=0)
            sprof = profile(student, test, ev, work_runs(a), a.work_dir / f"student-{key}" / "test.json", console,
                            models=models).to_dict()
            res["student_test"] = measures(sprof, sprof, g, known)
            res["items"] = [{"id": r["id"], "skills": r["skills"], "k": r["k"]} for r in sprof["records"]]
            lr, cands = choose_lr(a, student, g, a.work_dir, cfg, models, console)
            res["settings"] = {"lr": lr, "candidates": cands}
            write_json(results, a.output_path)
            done = {(r["seed"], r["strategy"], r["replay"], r["budget"]) for r in res["rows"]}
            for seed in seeds:
                diag = None
                if {"stat-sel", "stat-syn", "curriculum"} & set(strategies):
                    d_out = a.work_dir / f"g-{key}" / f"seed{seed}"
                    d_out.mkdir(parents=True, exist_ok=True)
                    diag = diagnose(student, DataConfig(suite=a.suite, split="train", limit=None, seed=seed),
                                    TargetConfig(diagnose_limit=a.diagnose_limit), ev, work_runs(a), d_out, console,
                                    models=models)
                    res.setdefault("diagnosis", {})[str(seed)] = diagnosis_quality(diag["missing"], g) | {
                        "missing": diag["missing"]}
                for replay in replays:
                    for strategy in strategies:
                        if all((seed, strategy, replay, b) in done for b in [0] + budgets):
                            continue
                        out = a.work_dir / f"g-{key}" / f"seed{seed}" / f"{strategy}-r{replay:g}"
                        adapters = run_strategy(a, student, strategy, seed, replay, replace(cfg, learning_rate=lr),
                                                diag, out, models, console)
                        served = out / ("served.jsonl" if strategy in ONLINE else "train.jsonl")
                        run_key = (seed, strategy, replay)  # a run killed while measuring is measured again
                        res["rows"] = [r for r in res["rows"] if (r["seed"], r["strategy"], r["replay"]) != run_key]
                        row0 = {"seed": seed, "strategy": strategy, "replay": replay, "budget": 0}
                        res["rows"].append(row0 | res["student_test"])
                        for b, adapter in adapters.items():
                            prof = profile(replace(student, adapter=adapter), test, ev, work_runs(a),
                                           out / f"test-{b}.json", console, models=models).to_dict()
                            res["rows"].append({"seed": seed, "strategy": strategy, "replay": replay, "budget": b,
                                                "share_g": share_touching(served, g, b)} | measures(prof, sprof, g, known))
                            console.print(f"G={key} seed {seed} {strategy} replay {replay:g} @{b}: "
                                          f"G {res['rows'][-1]['g_macro']:.1%}, known "
                                          f"{res['rows'][-1]['known_macro']:.1%}")
                            write_json(results, a.output_path)
                        keep = {Path(p).name for p in adapters.values()}  # measured: the other checkpoints go
                        for ckpt in (out / "checkpoints").glob("checkpoint-*"):
                            if ckpt.name not in keep:
                                shutil.rmtree(ckpt)
            res["summary"] = summarize(res, g, strategies, seeds, budgets, replays, a.bootstrap)
            write_json(results, a.output_path)
    finally:
        models.close()
    results["seconds"] = round(time.perf_counter() - t0 + results.get("seconds", 0), 1)
    write_json(results, a.output_path)


def summarize(res: dict[str, Any], g: list[str], strategies: list[str], seeds: list[int], budgets: list[int],
              replays: list[float], n_boot: int) -> dict[str, Any]:
    rows = res["rows"]
    table: dict[str, Any] = {}
    for replay in replays:
        for s in strategies:
            for b in [0] + budgets:
                sel = [r for r in rows if r["strategy"] == s and r["replay"] == replay and r["budget"] == b]
                if sel:
                    table.setdefault(f"{s}@r{replay:g}", {})[str(b)] = {
                        k: mean_ci([r[k] for r in sel]) for k in ("g_macro", "known_macro", "overall")} | {
                        "seeds": len(sel), "share_g": mean_ci([r.get("share_g", math.nan) for r in sel])[0]}
    uniform_share = [r["share_g"] for r in rows if r["strategy"] == "uniform" and r["budget"] == budgets[-1]]
    ideal = 1 / statistics.fmean(uniform_share) if uniform_share else math.nan
    return {"table": table, "ideal_ratio": ideal,
            "ratios": {f"r{rp:g}": ratios(rows, res["items"], g, strategies, seeds, budgets, rp, n_boot)
                       for rp in replays}}


if __name__ == "__main__":
    main()
