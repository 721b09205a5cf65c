"""Does targeting pay? A student with known gaps, every strategy from it at equal budgets (issue 13).

1. **Student.** The embedded model trained on `arith` items that exercise none of a held-out set G
   (`--exclude-skills`), a LoRA merged into the weights, so it is competent on the other skills and misses G.
   It is a model folder that every command accepts; `--student-*` set how it is made. It must reach
   `--known-floor` macro accuracy on the known skills' single-skill *validation* items. Every seed makes its
   own student (its items and LoRA drawn from the seed), and every run of that seed starts from it and is
   paired against it. Its adapters are kept in `--student-store`: copied to another machine, they give it the
   same student.
2. **Settings** for training a competent student (the learning rate of the LoRA), chosen on validation
   items (the suite's validation split, never test): `uniform` at the largest budget for each candidate
   `--lr` from the first seed's student, the one with the best validation accuracy overall wins, and every
   seed keeps it. Written to `<work>/settings-<G>.json` and to `--output-path`.
3. **Strategies** from the student, at the same budgets, for every seed and replay share: the fixed sets
   (`uniform`, `stat-sel`, `stat-syn`, `curriculum`) built at the largest budget, and Skill-it's online
   mixture (`skill-it`, the stream `skillgap run --mixture skill-it` trains on), each trained once with a
   constant learning rate and checkpointed at every budget (a checkpoint after B examples is what a B-example
   run gives). Every checkpoint is measured on the same `--test-limit` test items.
4. **Measures** per run and budget: macro accuracy over G, over the known skills, overall and by k, with
   exact McNemar tests against the student on the items touching G and on the others; the diagnosis of the
   student (precision and recall of its top-|G| missing skills against G); each strategy against `uniform`
   at the largest budget on the seeds that measured both (paired differences with a seeds x items bootstrap;
   on the G items an exact McNemar test per seed, and over the seeds the exact clustered McNemar test, which
   keeps an item's seeds together since every seed measures the same items, with Holm over all comparisons
   with uniform); and the examples each strategy needs to reach uniform's G accuracy at the largest budget,
   as a ratio to uniform's, read off the learning curves averaged over seeds, with a bootstrap interval over
   seeds and items. The ideal ratio if only G's share of the data mattered is 1 / (uniform's share of
   examples touching G).

Resumable at every step: trainings skip when done, profiles live in the work directory's run store, and
`--output-path` is rewritten after every measured checkpoint. Each row records its settings (`ROW_SETTINGS`,
the learning rate and its student's identity); an invocation whose settings differ from a G's rows is refused
before any work, since the tables average and pair every row of a G. Given a seed's student adapters
(`--student-store`), a new machine merges them again and that seed's runs carry on. Without them, a seed
whose runs are all measured is skipped, one partly measured is left as it is, with a warning (a rebuilt
student is another student: its runs would not pair with the seed's others), and a new seed builds its own.
`--rebuild-students` carries a partly measured seed on instead: its student is built again from the seed
(a "build" of the same recipe), measured on the test items, and every later run of the seed starts from that
build and is paired with its measurement; rows and students record their build, and the report shows how
many test items the builds grade differently.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/targeting_efficiency.py --g round,unit_convert,order_ops \\
        --seeds 0,1,2 --work-dir /var/tmp/targeting --output-path benchmarks/results/targeting_efficiency.json

A smoke run (a few minutes): --model scratch-tiny --student-budget 64 --budgets 8,16 --train-batch-size 4
    --test-limit 24 --val-limit 24 --diagnose-limit 16 --lr 1e-3 --seeds 0 --replay 0
    --student-store /tmp/students --work-dir /tmp/targeting --output-path /tmp/targeting.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import statistics
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig, load_items, suite_of
from skillgap.models import ModelConfig, ModelPool
from skillgap.recipes.online import MixConfig, build_online
from skillgap.recipes.profile import EvalConfig, profile
from skillgap.recipes.train import TargetConfig, diagnose, prepare, train_recipe
from skillgap.items import Item
from skillgap.suites import active_skills
from skillgap.train import TrainConfig, train
from skillgap.verify import adjust, assert_disjoint, cluster_bootstrap, cluster_mcnemar_p, paired_delta

from common import (benchmark_parser, fmt_mean, fmt_points, model_name, numbers, option, read_results, settings_of,
                    write_json)

# "stat-sel" is STAT's, on its count diagnosis (the paper's baseline); "stat-sel:joint" the same strategy on the joint
# diagnosis (issue 40: the budget over the gaps by shortfall, items whose other skills are mastered first); "active"
# the skill-blind rival (the pool items of highest loss on their reference answers)
FIXED = ("uniform", "stat-sel", "stat-sel:joint", "stat-syn", "curriculum", "active")
ONLINE = ("skill-it", "stratified", "random")
# What the arms are, where they differ from the method they are named after: tables and plots use these names.
SHOWN = {"stat-syn": "stat-syn (generator)", "skill-it": "Skill-it (4 rounds, prerequisite graph)",
         "stat-sel": "stat-sel (count)", "stat-sel:joint": "stat-sel (joint)"}
ARMS = {
    "stat-syn": ("the suite's own generator makes items of the diagnosed missing skills: no teacher writes "
                 "them and no agreement filter checks them, so this measures the item quotas of STAT-Syn, not "
                 "its synthesis"),
    "skill-it": ("Skill-it's online mixture as `skillgap run --mixture skill-it` runs it here: re-weighted every "
                 "quarter of the run (4 rounds; 8 steps each at the largest budget), over the suite's "
                 "prerequisite graph as it is (not halved), from 16 validation items a skill, its items drawn "
                 "per skill from the suite's generator rather than from the fixed strategies' training pool: "
                 "not the paper's cadence or item source"),
}


# What a row's figures depend on besides its seed, strategy, replay share and student (the build's identity, kept
# beside them): every row of a G is compared with or averaged with the others, so all must share these.
ROW_SETTINGS = ("model", "suite", "budgets", "train_batch_size", "max_new_tokens", "test_limit", "val_limit",
                "diagnose_limit", "student_budget", "student_more", "student_stages", "student_lr", "student_lora_r",
                "known_floor", "backend", "device")


def shown(strategy: str) -> str:
    return SHOWN.get(strategy, strategy)


def row_settings(a: argparse.Namespace) -> dict[str, str]:
    return {k: ",".join(map(str, budgets_of(a))) if k == "budgets" else str(getattr(a, k)) for k in ROW_SETTINGS}


def check_rows(rows: list[dict[str, Any]], key: str, settings: dict[str, str], path: Path) -> None:
    """Refuse, before any work, to add rows to a G whose rows were made with other settings: the tables average
    and pair every row of a G, so rows of two settings would mix unnoticed."""
    for r in rows:
        old = r.get("settings")
        if old is None:
            raise SystemExit(f"{path}: G={key} has a row (seed {r['seed']}, {r['strategy']}) without recorded "
                             "settings, so new rows cannot be checked against it; pass another --output-path")
        for k, v in settings.items():
            if old.get(k) != v:
                flag = option(k)
                raise SystemExit(f"{path}: G={key} rows were made with {flag} {old.get(k)}, not {v}; new rows would "
                                 f"not compare with them: pass {flag} {old.get(k)} or another --output-path")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = benchmark_parser(__doc__, "skillgap-targeting", "targeting_efficiency.json", max_new_tokens=128)
    p.add_argument("--suite", default="arith")
    p.add_argument("--g", action="append", required=True, metavar="A,B,C",
                   help="a held-out skill set G (repeat for a second G)")
    p.add_argument("--strategies", default="uniform,stat-sel,stat-syn,curriculum,skill-it")
    p.add_argument("--budgets", default="64,128,256,512")
    p.add_argument("--replay", default="0,0.25", help="replay shares to run every strategy with")
    p.add_argument("--test-limit", type=int, default=300, help="test items shared by every run")
    p.add_argument("--val-limit", type=int, default=300, help="validation items for the student and the settings")
    p.add_argument("--diagnose-limit", type=int, default=200)
    p.add_argument("--lr", default="1e-4,3e-4,1e-3", help="LoRA learning rates to choose from on validation items")
    p.add_argument("--student-budget", type=int, default=2400, help="training examples for the student")
    p.add_argument("--student-more", type=int, default=800, help="examples of each further stage, until the floor")
    p.add_argument("--student-stages", type=int, default=3, help="further stages at most")
    p.add_argument("--student-lr", type=float, default=1e-3, help="the student's LoRA learning rate")
    p.add_argument("--student-lora-r", type=int, default=16, help="the student's LoRA rank (alpha twice it)")
    p.add_argument("--student-store", type=Path, default=None,
                   help="where the student's adapters are kept, one folder per G (default: <work-dir>/students); "
                        "copy it to carry the same student to another machine (model files are not committed)")
    p.add_argument("--rebuild-students", action="store_true",
                   help="when a seed's student adapters are gone (a new machine), build it again from its seed and "
                        "measure the seed's remaining runs from that build, each paired with the build's own test "
                        "measurement (a rebuild matches only up to floating point)")
    p.add_argument("--known-floor", type=float, default=0.6)
    p.add_argument("--students-only", action="store_true",
                   help="make, measure and diagnose each seed's student, and train no strategy (the diagnosis "
                        "table needs no more)")
    p.add_argument("--device", default="auto")
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


def diagnosis_quality(missing: dict[str, int], g: list[str], accuracy: dict[str, float] | None = None,
                      records: list[dict[str, Any]] | None = None) -> dict:
    """Does the diagnosis name G? Its top-|G| skills by count (what STAT targets) against G, and, given per-skill
    accuracy on the same items, its |G| least accurate skills: counts favour the skills that many items exercise,
    a weak prerequisite of many composed items above a leaf the student never solves. Given the diagnosis's item
    outcomes, also the joint model's (`skillgap.attribution`, its settings fixed on the planted-gap simulations):
    its |G| least mastered skills, and the gap lists that targeting spends on (joint and accuracy, as
    `--diagnosis` builds them), each against G."""
    def against_g(top: list[str]) -> dict[str, Any]:
        hit = len(set(top) & set(g))
        return {"top": top, "precision": hit / len(top) if top else math.nan, "recall": hit / len(g)}

    out = against_g(sorted(missing, key=lambda s: (-missing[s], s))[: len(g)])
    if accuracy:
        out["by_accuracy"] = against_g(sorted(accuracy, key=lambda s: (accuracy[s], s))[: len(g)])
    if records:
        from skillgap.attribution import attribute, outcomes_of, targets

        fit = attribute(outcomes_of(records))
        ranked = [s for s, m in sorted(fit.mastery.items(), key=lambda kv: (kv[1].estimate, kv[0]))
                  if m.verdict != "confounded"]
        out["by_joint"] = against_g(ranked[: len(g)])
        aims = {how: targets({"records": records, "missing": missing}, how).weights for how in ("joint", "accuracy")}
        out["gaps"] = {how: against_g(list(w)) for how, w in aims.items()}
        out["joint_share_g"] = sum(w for s, w in aims["joint"].items() if s in g) / (sum(aims["joint"].values()) or 1)
        out["joint_mastery"] = {s: round(m.estimate, 4) for s, m in fit.mastery.items()}
    return out


def examples_needed(curve: list[tuple[int, float]], target: float) -> float:
    """The first budget where the curve reaches `target`, linear between measured budgets; inf if never."""
    if curve and curve[0][1] >= target:
        return float(curve[0][0])
    for (b0, a0), (b1, a1) in itertools.pairwise(curve):
        if a1 >= target:  # and a0 < target: every earlier point is below it
            return b0 + (b1 - b0) * (target - a0) / (a1 - a0)
    return math.inf


def ratio_on(uniform: list[tuple[int, float]], curve: list[tuple[int, float]]) -> float:
    """uniform's examples to reach its own accuracy at the largest budget / the examples `curve` needs to reach
    it: above 1, fewer. 0 when `curve` never reaches it within the budgets (its true ratio is then below
    uniform's examples / the largest budget); nan when uniform needs none (it never rose above the student)."""
    need_u = examples_needed(uniform, uniform[-1][1])
    need = examples_needed(curve, uniform[-1][1])
    if not need_u or not need:
        return math.nan
    return 0.0 if need == math.inf else need_u / need


def ratios(rows: list[dict[str, Any]], items: list[dict[str, Any]], g: list[str], strategy: str, seeds: list[int],
           budgets: list[int], replay: float, n_boot: int) -> dict[str, Any]:
    """Examples `strategy` needs to reach uniform's G accuracy at the largest budget, relative to uniform's, read
    off the two learning curves of G accuracy averaged over `seeds` (`ratio_on`), with a 95% bootstrap over
    seeds and items (the same items for every run), and the same ratio on each seed's own curves. A ratio of
    the mean curves, not a mean of per-seed ratios: those mix finite ratios with "never reached"."""
    import numpy as np

    at = {(r["seed"], r["strategy"], r["budget"]): r["correct"] for r in rows if r["replay"] == replay}
    points = [0] + budgets
    bits = np.array([[[[c == "1" for c in at[(seed, s, b)]] for b in points] for s in ("uniform", strategy)]
                     for seed in seeds], dtype=float)  # seeds x 2 x budgets x items
    masks = np.array([[s in it["skills"] for it in items] for s in g], dtype=float)
    masks = masks[masks.sum(1) > 0]

    def by_seed(w: np.ndarray) -> np.ndarray:  # draws x seeds x 2 x budgets: G accuracy, macro over G's skills
        return weighted_macro(w, masks, bits)

    def combine(v: np.ndarray) -> np.ndarray:  # the drawn seeds' curves, averaged -> one ratio a draw
        return np.array([ratio_on(list(zip(points, u)), list(zip(points, c))) for u, c in v.mean(axis=1)])

    est, lo, hi = cluster_bootstrap(by_seed, len(seeds), len(items), n_boot, combine=combine)
    return {"ratio": est, "ci": [lo, hi], "per_seed": [float(ratio_on(list(zip(points, u)), list(zip(points, c))))
                                                       for u, c in by_seed(np.ones((1, len(items))))[0]]}


# ---------------------------------------------------------------- stages

def make_student(a: argparse.Namespace, g: list[str], seed: int, work: Path,
                 console: Console) -> tuple[ModelConfig, dict]:
    """A LoRA on the suite without G, merged into the weights, until it is competent on the rest: `--student-budget`
    examples, then `--student-more` fresh examples a stage (a new LoRA on the last stage's merged weights) until
    the known skills' single-skill validation items reach `--known-floor`, at most `--student-stages` more.

    Every seed has its own student (its items and LoRA initialisation drawn from the seed), so the spread over
    seeds includes the student's: a result that holds for one student only does not pass for a general one.
    Each stage's adapter is kept in `--student-store/<G>/seed<s>/stage<i>` (bf16, ~10 MB), with the stage's
    figures in `student.json`: a machine given that folder merges them in seconds instead of training for most
    of an hour, and measures the same student. (A rebuild from the seed matches only up to floating point,
    which greedy decoding turns into different answers: rows measured against one student cannot be continued
    against another.)"""
    from skillgap.models.sources import adapter_identity, materialize, resolve_source
    from skillgap.models.vllm import merged_folder

    key = ".".join(g)
    store = student_store(a, g, seed)
    out = work / f"student-{key}" / f"seed{seed}"
    log_path = store / "student.json"
    saved = json.loads(log_path.read_text()) if log_path.is_file() else {"stages": []}
    name = model_name(a.model, a.suite)
    if saved["stages"] and saved["base"] != name:
        raise SystemExit(f"{log_path}: a student made from {saved['base']}, not from --model {name}; "
                         "pass another --student-store")
    saved = saved["stages"]
    student = ModelConfig(str(materialize(resolve_source(name))), backend=a.backend, device=a.device)
    cfg = TrainConfig(method="lora", learning_rate=a.student_lr, lora_r=a.student_lora_r,
                      lora_alpha=2 * a.student_lora_r, warmup_steps=5, batch_size=a.train_batch_size, eval_every=0,
                      save_every=20, seed=seed)
    ev = EvalConfig(max_new_tokens=a.max_new_tokens)
    known = [s for s in suite_of(DataConfig(suite=a.suite)).skills.ids if s not in g]
    stages: list[dict[str, Any]] = []
    for stage in range(a.student_stages + 1):
        adapter = store / f"stage{stage}"
        if not (adapter / "adapter_model.safetensors").is_file():
            n = a.student_budget if stage == 0 else a.student_more
            data = DataConfig(suite=a.suite, split="train", limit=None, seed=1000 * seed + stage,
                              exclude_skills=tuple(g))
            assert_disjoint(load_items(replace(data, limit=n))[0], measured_items(a), "the student's training pool",
                            MEASURED)
            result = train_recipe(student, data, TargetConfig(strategy="uniform", budget=n, pool_size=n), cfg, ev,
                                  out / f"stage{stage}", runs_dir=work_runs(a), console=console)
            keep_adapter(Path(result.weights), adapter)
            trained = {"examples": result.examples_seen, "steps": result.steps, "seconds": result.seconds}
        elif stage < len(saved):
            trained = {k: saved[stage][k] for k in ("examples", "steps", "seconds")}
        else:
            raise SystemExit(f"{adapter}: an adapter without its figures in {log_path}; delete it to retrain")
        student = replace(student, model=str(merged_folder(Path(student.model), str(adapter))))
        val = profile(student, DataConfig(suite=a.suite, split="validation", limit=a.val_limit, seed=0), ev,
                      work_runs(a), out / f"validation{stage}.json", console).to_dict()
        alone = {s["id"]: s["alone"]["accuracy"] for s in val["skills"] if s.get("alone", {}).get("n")}
        stages.append({"stage": stage, **trained, "adapter": adapter_identity(adapter),
                       "known_alone_macro": statistics.fmean(alone[s] for s in known if s in alone),
                       "alone": alone, "g_macro": macro(val, g), "overall": val["overall"]["accuracy"]})
        write_json({"g": g, "seed": seed, "base": name, "train": {k: str(v) for k, v in vars(cfg).items()},
                    "stages": stages}, log_path)
        console.print(f"student {seed} stage {stage}: known skills alone {stages[-1]['known_alone_macro']:.1%} on "
                      f"validation (floor {a.known_floor:.0%}), G {stages[-1]['g_macro']:.1%}")
        if stages[-1]["known_alone_macro"] >= a.known_floor:
            break
    else:
        console.print(f"[yellow]student without {g}: known skills alone {stages[-1]['known_alone_macro']:.1%} < "
                      f"{a.known_floor:.0%} after {len(stages)} stages; raise --student-budget[/yellow]")
    check = stages[-1] | {"stages": stages, "steps": sum(s["steps"] for s in stages),
                          "examples": sum(s["examples"] for s in stages),
                          "seconds": sum(s["seconds"] for s in stages),
                          "identity": "+".join(s["adapter"] for s in stages)}
    return student, check


def student_store(a: argparse.Namespace, g: list[str], seed: int) -> Path:
    return (a.student_store or a.work_dir / "students") / ".".join(g) / f"seed{seed}"


def keep_adapter(src: Path, dst: Path) -> None:
    """The adapter in bf16 (half the bytes; the merge is what is measured, so it is the student either way)."""
    import torch
    from safetensors.torch import load_file, save_file

    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy(src / "adapter_config.json", tmp / "adapter_config.json")
    weights = {k: v.to(torch.bfloat16).contiguous() for k, v in load_file(src / "adapter_model.safetensors").items()}
    save_file(weights, tmp / "adapter_model.safetensors")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)


def choose_lr(a: argparse.Namespace, student: ModelConfig, g: list[str], seed: int, work: Path,
              base_cfg: TrainConfig, models: ModelPool, console: Console, on_row: Any = None,
              measured: list[dict] | None = None) -> tuple[float, list[dict]]:
    """The LoRA learning rate with the best validation accuracy after uniform at the largest budget, chosen once
    per G on the first seed's student and kept for the other seeds.

    Each candidate is exactly that seed's `uniform` run (same items, seed and steps), so the chosen one is reused
    as that run: the sweep costs len(--lr) - 1 trainings. Candidates already `measured` (from the saved results,
    the same student) are not trained again: a new machine without the work directory resumes the sweep."""
    path = work / f"settings-{'.'.join(g)}.json"
    if path.is_file():
        d = json.loads(path.read_text())
        return d["chosen_lr"], d["candidates"]
    val_data = DataConfig(suite=a.suite, split="validation", limit=a.val_limit, seed=0)
    ev = EvalConfig(max_new_tokens=a.max_new_tokens)
    rows: list[dict] = []
    for lr in [float(x) for x in a.lr.split(",")]:
        if seen := [r for r in measured or [] if r["lr"] == lr]:
            rows.append(seen[0])
            continue
        out = sweep_dir(work, g, lr)
        adapters = run_strategy(a, student, "uniform", seed, 0.0, replace(base_cfg, learning_rate=lr), None, out,
                                models, console)
        prof = profile(replace(student, adapter=adapters[max(adapters)]), val_data, ev, work_runs(a),
                       out / "validation.json", console, models=models).to_dict()
        drop_merged(student, adapters[max(adapters)])
        known = [s["id"] for s in prof["skills"] if s["id"] not in g]
        rows.append({"lr": lr, "overall": prof["overall"]["accuracy"], "g_macro": macro(prof, g),
                     "known_macro": macro(prof, known), "unparsed": prof["overall"].get("unparsed", 0)})
        console.print(f"lr {lr:g}: validation overall {rows[-1]['overall']:.1%}, G {rows[-1]['g_macro']:.1%}, "
                      f"known {rows[-1]['known_macro']:.1%}")
        if on_row:
            on_row(rows)
    best = max(rows, key=lambda r: r["overall"])["lr"]
    write_json({"chosen_lr": best, "rule": "best validation accuracy overall, uniform at the largest budget",
                "validation_items": a.val_limit, "candidates": rows}, path)
    return best, rows


def sweep_dir(work: Path, g: list[str], lr: float) -> Path:
    return work / f"settings-{'.'.join(g)}" / f"lr{lr:g}"


def budgets_of(a: argparse.Namespace) -> list[int]:
    return sorted(numbers(a.budgets))


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
        name, _, how = strategy.partition(":")  # an arm without a diagnosis named is STAT's: counts
        tc = TargetConfig(strategy=name, budget=budgets[-1], diagnose_limit=a.diagnose_limit, replay=replay,
                          diagnosis=how or "count")
        prep = prepare(student, data, tc, ev, work_runs(a), out, console, diagnosis=diag)
        assert_disjoint(prep.mixture.items, measured_items(a), f"the {strategy} training set", MEASURED)
        train(student, prep.mixture.items, replace(cfg, seed=seed, max_steps=steps), out, console=console)
    else:
        mc = MixConfig(mixture=strategy, val_per_skill=16, round_steps=max(1, steps // 4), replay=replay)
        tcfg = replace(cfg, seed=seed, max_steps=steps, eval_every=max(1, steps // 8))
        online = build_online(data, mc, tcfg, measured_items(a), None)  # refuses a stream that reaches one
        result = train(student, [], tcfg, out, val=online.val, console=console, stream=online.stream,
                       round_steps=online.rounds)
        (out / "served.jsonl").write_text("".join(json.dumps({"id": it.id, "skills": list(it.skills)}) + "\n"
                                                  for it in online.served(result.examples_seen)))
    return {b: str(out / "checkpoints" / f"checkpoint-{b // a.train_batch_size}") for b in budgets}


MEASURED = "the benchmark's test and validation items"


def measured_items(a: argparse.Namespace) -> list[Item]:
    """The items the runs are measured on (test) and their settings chosen on (validation): no run trains on one."""
    return [it for split, n in (("test", a.test_limit), ("validation", a.val_limit))
            for it in load_items(DataConfig(suite=a.suite, split=split, limit=n, seed=0))[0]]


def drop_merged(student: ModelConfig, adapter: str) -> None:
    """A measured checkpoint's merged copy (vLLM on a CPU serves adapters merged) is 0.5 GB: 40 a seed fill a disk."""
    from skillgap.models.vllm import merged_path

    shutil.rmtree(merged_path(Path(student.model), adapter), ignore_errors=True)


def work_runs(a: argparse.Namespace) -> Path:
    return a.work_dir / "runs"


def per_seed(res: dict[str, Any]) -> None:
    """Results from before every seed had its own student: theirs was seed 0's."""
    if "student" in res:
        res["students"] = {"0": res.pop("student")}
        res["student_tests"] = {"0": res.pop("student_test")}
        res["settings"]["seed"] = 0
    if res.get("student_regrades") and isinstance(res["student_regrades"][0], int):
        res["student_regrades"] = [{"seed": 0, "items": n} for n in res["student_regrades"]]


def share_touching(path: Path, g: list[str], n: int) -> float:
    """The share of the first `n` training examples (what a checkpoint after n examples read) touching G."""
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()][:n]
    return sum(bool(set(r["skills"]) & set(g)) for r in rows) / len(rows) if rows else math.nan


@dataclass
class Student:
    """One seed's student as its runs use it: the model, which build of it, and its paired test baseline."""

    model: ModelConfig
    check: dict[str, Any]  # its figures and identity (make_student)
    build: int  # 0, or the rebuild it is (--rebuild-students)
    tkey: str  # its key in student_tests: "seed" or "seed/buildN"
    baseline: dict[str, Any]  # per item right or wrong: its first test measurement, what every row pairs with


@dataclass
class GRun:
    """What every stage of one G shares: the options, the results file and this G's part of it, and the tools."""

    a: argparse.Namespace
    results: dict[str, Any]  # the whole results file, rewritten after every measurement
    g: list[str]
    known: list[str]
    cfg: TrainConfig  # the strategy runs' training, before the learning rate
    settings: dict[str, str]  # what every row records (ROW_SETTINGS)
    models: ModelPool
    console: Console

    @property
    def key(self) -> str:
        return ".".join(self.g)

    @property
    def res(self) -> dict[str, Any]:
        return self.results["g"][self.key]

    @property
    def test(self) -> DataConfig:
        return DataConfig(suite=self.a.suite, split="test", limit=self.a.test_limit, seed=0)

    def save(self) -> None:
        write_json(self.results, self.a.output_path)


def report_only(a: argparse.Namespace) -> None:
    """The summary, markdown and plot again, from the results as they are."""
    results = json.loads(a.output_path.read_text())
    old = argparse.Namespace(**{k: results["config"].get(k, v) for k, v in vars(a).items()})
    for res in results.get("g", {}).values():
        per_seed(res)
        if res.get("rows"):
            res["summary"] = summarize(res, res["g"], budgets_of(old), a.bootstrap)
    holm_over_family(results)
    write_json(results, a.output_path)
    report(results, a.output_path.with_suffix(".md"), a.output_path.with_suffix(".png"))


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    console = Console(stderr=True)
    budgets = budgets_of(a)
    if a.report_only:
        report_only(a)
        return
    if any(b % a.train_batch_size for b in budgets):
        raise SystemExit("every budget must be a multiple of --train-batch-size")
    a.work_dir.mkdir(parents=True, exist_ok=True)
    results = read_results(a.output_path)
    settings = row_settings(a)
    for g_spec in a.g:
        key = g_spec.replace(",", ".")
        check_rows(results.get("g", {}).get(key, {}).get("rows", []), key, settings, a.output_path)
    results["config"] = settings_of(a)  # this invocation's; each row keeps its own
    t0 = time.perf_counter()
    cfg = TrainConfig(method="lora", lr_scheduler="constant_with_warmup", warmup_steps=2,
                      batch_size=a.train_batch_size, eval_every=0, save_every=budgets[0] // a.train_batch_size,
                      keep_checkpoints=None)
    models = ModelPool()
    try:
        for g_spec in a.g:
            run_g(a, results, g_spec, cfg, settings, models, console)
    finally:
        models.close()
    results["seconds"] = round(time.perf_counter() - t0 + results.get("seconds", 0), 1)
    write_json(results, a.output_path)


def run_g(a: argparse.Namespace, results: dict[str, Any], g_spec: str, cfg: TrainConfig, settings: dict[str, str],
          models: ModelPool, console: Console) -> None:
    """Every seed of one G: student, settings sweep, diagnosis, strategies; the summary and report after each."""
    g = g_spec.split(",")
    res = results.setdefault("g", {}).setdefault(".".join(g), {"rows": []})
    res["g"] = g
    suite = suite_of(DataConfig(suite=a.suite))
    bad = [s for s in g if s not in suite.skills.ids]
    if bad:
        raise SystemExit(f"--g {g_spec}: unknown skills {bad}")
    r = GRun(a, results, g, [s for s in active_skills(suite).ids if s not in g], cfg, settings, models, console)
    per_seed(res)
    res.setdefault("students", {})
    res.setdefault("student_tests", {})
    for seed in numbers(a.seeds):
        done = {(x["strategy"], x["replay"], x["budget"]) for x in res["rows"] if x["seed"] == seed}
        runs = [(strategy, replay) for replay in numbers(a.replay, float) for strategy in a.strategies.split(",")]
        todo = [x for x in runs if not all((*x, b) in done for b in [0] + budgets_of(a))]
        if not todo:
            continue
        student = student_of(r, seed, bool(done), todo)
        if student is None:
            continue
        r.save()  # the student's figures, before the sweep
        lr = sweep(r, seed, student)
        diag = diagnose_student(r, seed, student)
        r.save()
        if a.students_only:
            continue
        for strategy, replay in todo:
            run_arm(r, seed, student, strategy, replay, lr, diag)
        res["summary"] = summarize(res, g, budgets_of(a), a.bootstrap)
        holm_over_family(results)
        r.save()
        report(results, a.output_path.with_suffix(".md"), a.output_path.with_suffix(".png"))


def student_of(r: GRun, seed: int, done: bool, todo: list[tuple[str, float]]) -> Student | None:
    """The seed's student, made or merged from its store, and measured on the test items; None when its runs must
    stay unmeasured (its adapters are gone, or a rebuild differs, and --rebuild-students was not given)."""
    a, console, store = r.a, r.console, student_store(r.a, r.g, seed)
    if done and not a.rebuild_students and not (store / "stage0" / "adapter_model.safetensors").is_file():
        console.print(f"[yellow]G={r.key} seed {seed}: its student's adapters are not in {store}, and a rebuild "
                      f"is another student: the runs {todo} are left unmeasured (--rebuild-students builds it again "
                      "and measures them from that build, each row paired with its own build)[/yellow]")
        return None
    model, check = make_student(a, r.g, seed, a.work_dir, console)
    students, tests = r.res["students"], r.res["student_tests"]
    first = students.setdefault(str(seed), check | {"model": model.model})
    builds = [first] + first.get("rebuilds", [])
    build = next((i for i, b in enumerate(builds) if b["identity"] == check["identity"]), None)
    if build is None and not done:  # no rows yet (an earlier build was lost unused): this one is it
        students[str(seed)] = first = check | {"model": model.model}
        tests.pop(str(seed), None)
        build = 0
    if build is None and not a.rebuild_students:
        console.print(f"[yellow]G={r.key} seed {seed}: the rows were measured from another student than the one "
                      f"in {store}; its runs {todo} are left unmeasured (or pass --rebuild-students)[/yellow]")
        return None
    if build is None:  # the same recipe and seed, another build: its runs pair with it alone
        first.setdefault("rebuilds", []).append(check | {"model": model.model})
        build = len(builds)
        console.print(f"[yellow]G={r.key} seed {seed}: a rebuild of its student (build {build}); its runs are "
                      "paired with this build's own test measurement[/yellow]")
    elif build == 0:
        first.update(check | {"model": model.model})
    tkey = str(seed) if build == 0 else f"{seed}/build{build}"
    return Student(model, check, build, tkey, measure_student(r, seed, model, build, tkey))


def measure_student(r: GRun, seed: int, model: ModelConfig, build: int, tkey: str) -> dict[str, Any]:
    """The student on the test items; returns the paired baseline of every row: its build's first measurement,
    whichever machine this is (a regrade here is counted, not used)."""
    res, console = r.res, r.console
    sprof = profile(model, r.test, EvalConfig(max_new_tokens=r.a.max_new_tokens), work_runs(r.a),
                    r.a.work_dir / f"student-{r.key}" / f"seed{seed}" / "test.json", console,
                    models=r.models).to_dict()
    now = measures(sprof, sprof, r.g, r.known)
    items = [{"id": x["id"], "skills": x["skills"], "k": x["k"]} for x in sprof["records"]]
    if res.setdefault("items", items) != items:
        raise SystemExit(f"{r.a.output_path}: G={r.key} was measured on other test items; "
                         "pass the --test-limit it was run with, or another --output-path")
    tests = res["student_tests"]
    if tkey not in tests:
        tests[tkey] = now
        if build:
            differ = sum(x != y for x, y in zip(tests[str(seed)]["correct"], now["correct"]))
            res["students"][str(seed)]["rebuilds"][build - 1]["test_items_graded_otherwise"] = differ
            console.print(f"G={r.key} seed {seed} build {build}: G {now['g_macro']:.1%}, known "
                          f"{now['known_macro']:.1%}, overall {now['overall']:.1%}; grades {differ} "
                          f"of {len(now['correct'])} test items otherwise than build 0")
    elif tests[tkey]["correct"] != now["correct"]:  # the same weights on another machine
        differ = sum(x != y for x, y in zip(tests[tkey]["correct"], now["correct"]))
        console.print(f"[yellow]G={r.key} seed {seed}: on this machine the same student grades {differ} of "
                      f"{len(now['correct'])} test items differently (floating point); every row keeps the first "
                      "measurement as its paired baseline[/yellow]")
        res.setdefault("student_regrades", []).append({"seed": seed, "build": build, "items": differ})
    return {"records": [{"id": it["id"], "correct": c == "1"} for it, c in zip(res["items"], tests[tkey]["correct"])]}


def sweep(r: GRun, seed: int, student: Student) -> float:
    """The G's learning rate: chosen on the first seed that gets here (choose_lr), kept for every later seed."""
    res = r.res
    if res.get("settings", {}).get("lr") is None:
        def so_far(rows: list[dict]) -> None:  # a sweep cut short resumes from its measured candidates
            res["settings"] = {"lr": None, "seed": seed, "candidates": rows}
            r.save()

        lr, cands = choose_lr(r.a, student.model, r.g, seed, r.a.work_dir, r.cfg, r.models, r.console, so_far,
                              res.get("settings", {}).get("candidates", []))
        res["settings"] = {"lr": lr, "seed": seed, "candidates": cands}
        r.save()
    return res["settings"]["lr"]


def diagnose_student(r: GRun, seed: int, student: Student) -> dict[str, Any] | None:
    """The student's missing-skill profile, for the strategies that target it, and how well it names G."""
    if not {"stat-sel", "stat-sel:joint", "stat-syn", "curriculum"} & set(r.a.strategies.split(",")):
        return None
    a = r.a
    out = a.work_dir / f"g-{r.key}" / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    diag = diagnose(student.model, DataConfig(suite=a.suite, split="train", limit=None, seed=seed),
                    TargetConfig(diagnose_limit=a.diagnose_limit), EvalConfig(max_new_tokens=a.max_new_tokens),
                    work_runs(a), out, r.console, models=r.models)
    accuracy = {s["id"]: s["accuracy"] for s in diag["skills"] if s["n"]}
    records = [{k: x[k] for k in ("id", "skills", "correct", "status")} for x in diag["records"]]
    r.res.setdefault("diagnosis", {})[student.tkey] = diagnosis_quality(diag["missing"], r.g, accuracy, records) | {
        "missing": diag["missing"], "accuracy": accuracy, "records": records}
    return diag


def run_arm(r: GRun, seed: int, student: Student, strategy: str, replay: float, lr: float,
            diag: dict[str, Any] | None) -> None:
    """One strategy at one replay share from the student: trained once, each budget's checkpoint measured."""
    a, res = r.a, r.res
    replays = numbers(a.replay, float)
    if strategy == "uniform" and replay != replays[0]:  # uniform has no replay share: its run at the first is this
        same = [x for x in res["rows"] if (x["seed"], x["strategy"], x["replay"]) == (seed, strategy, replays[0])]
        if len(same) == len(budgets_of(a)) + 1:
            res["rows"] += [x | {"replay": replay, "same_run_as_replay": replays[0]} for x in same]
            r.save()
            return
    out = a.work_dir / f"g-{r.key}" / f"seed{seed}" / f"{strategy}-r{replay:g}"
    if strategy == "uniform" and seed == res["settings"]["seed"] and replay == 0:
        out = sweep_dir(a.work_dir, r.g, lr)  # the settings sweep trained it already
    adapters = run_strategy(a, student.model, strategy, seed, replay, replace(r.cfg, learning_rate=lr), diag, out,
                            r.models, r.console)
    served = out / ("served.jsonl" if strategy in ONLINE else "train.jsonl")
    run_key = (seed, strategy, replay)  # a run killed while measuring is measured again
    res["rows"] = [x for x in res["rows"] if (x["seed"], x["strategy"], x["replay"]) != run_key]
    row0 = {"seed": seed, "strategy": strategy, "replay": replay, "budget": 0, "build": student.build,
            "student": student.check["identity"], "settings": r.settings | {"lr": str(lr)}}
    res["rows"].append(row0 | res["student_tests"][student.tkey])
    for b, adapter in adapters.items():
        prof = profile(replace(student.model, adapter=adapter), r.test, EvalConfig(max_new_tokens=a.max_new_tokens),
                       work_runs(a), out / f"test-{b}.json", r.console, models=r.models).to_dict()
        res["rows"].append(row0 | {"budget": b, "share_g": share_touching(served, r.g, b)}
                           | measures(prof, student.baseline, r.g, r.known))
        r.console.print(f"G={r.key} seed {seed} {strategy} replay {replay:g} @{b}: G {res['rows'][-1]['g_macro']:.1%}, "
                        f"known {res['rows'][-1]['known_macro']:.1%}")
        r.save()
        drop_merged(student.model, adapter)
    keep = {Path(p).name for p in adapters.values()}  # measured: the other checkpoints go
    for ckpt in (out / "checkpoints").glob("checkpoint-*"):
        if ckpt.name not in keep:
            shutil.rmtree(ckpt)


def weighted_macro(w: Any, masks: Any, bits: Any) -> Any:
    """Macro accuracy over skills when item i counts w[d, i] times in draw d: the mean over the skills (rows of
    `masks`, skills x items) of each one's weighted accuracy. w: draws x items, bits: ... x items (1 right);
    returns draws x ... (nan where no drawn item has any of the skills)."""
    import numpy as np

    den = w @ masks.T  # draws x skills
    num = np.einsum("dn,kn,...n->d...k", w, masks, bits, optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw without any item of a skill: that skill is nan
        return np.nanmean(num / np.where(den > 0, den, np.nan).reshape(den.shape[:1] + (1,) * (bits.ndim - 1)
                                                                       + den.shape[1:]), axis=-1)


def boot_means(rows: list[dict[str, Any]], items: list[dict[str, Any]], skills: list[str] | None,
               n_boot: int, minus: list[dict[str, Any]] | None = None) -> list[float]:
    """Mean over seeds of a macro accuracy over `skills` (None: accuracy over all items), with a 95% bootstrap
    interval that resamples seeds and test items together (the items are shared by every run). Given `minus`,
    the same seeds' rows of another run, the mean paired difference rows - minus: each draw takes the same
    items and seeds for both."""
    import numpy as np

    def bits(rs: list[dict[str, Any]]) -> np.ndarray:  # seeds x items
        return np.array([[ch == "1" for ch in r["correct"]] for r in rs], dtype=float)

    c, c0 = bits(rows), bits(minus) if minus is not None else None
    masks = (np.array([[s in it["skills"] for it in items] for s in skills], dtype=float) if skills
             else np.ones((1, len(items))))
    masks = masks[masks.sum(1) > 0]

    def by_seed(w: np.ndarray) -> np.ndarray:  # w: draws x items -> draws x seeds
        acc = weighted_macro(w, masks, c)
        return acc if c0 is None else acc - weighted_macro(w, masks, c0)

    return cluster_bootstrap(by_seed, len(rows), len(items), n_boot)


def versus_uniform(res: dict[str, Any], g: list[str], strategies: list[str], budget: int, replays: list[float],
                   n_boot: int) -> dict[str, Any]:
    """Each strategy against `uniform` at `budget`, on the seeds that measured both, on the same test items: the
    paired difference of G, known and overall accuracy (seeds x items bootstrap), and on the items touching G
    an exact McNemar test per seed and one over the seeds with each item's changes kept together
    (`cluster_mcnemar_p`: the seeds share the items, so pooling their discordant pairs would count an item up
    to once per seed). The accuracy table averages each strategy over the seeds it has; this compares like with
    like, which is the verdict "targeting beats uniform" needs."""
    rows, items = res["rows"], res["items"]
    known = [s for s in {x for it in items for x in it["skills"]} if s not in g]
    touch = [bool(set(it["skills"]) & set(g)) for it in items]
    at = {(r["seed"], r["strategy"], r["replay"]): r for r in rows if r["budget"] == budget}
    out: dict[str, Any] = {}
    for rp in replays:
        for s in strategies:
            seeds = sorted(x for (x, y, r) in at if y == s and r == rp and (x, "uniform", rp) in at)
            if s == "uniform" or not seeds:
                continue
            mine, base = [at[(x, s, rp)] for x in seeds], [at[(x, "uniform", rp)] for x in seeds]
            seed_tests, changes = [], [0] * sum(touch)
            for x, m, u in zip(seeds, mine, base):
                pairs = [(cu == "1", cm == "1") for cu, cm, t in zip(u["correct"], m["correct"], touch) if t]
                d = paired_delta(pairs)
                seed_tests.append({"seed": x, "gained": d["gained"], "lost": d["lost"], "p_value": d["p_value"]})
                changes = [c + after - before for c, (before, after) in zip(changes, pairs)]
            out.setdefault(f"r{rp:g}", {})[s] = {
                "seeds": seeds, "g_macro": boot_means(mine, items, g, n_boot, minus=base),
                "known_macro": boot_means(mine, items, known, n_boot, minus=base),
                "overall": boot_means(mine, items, None, n_boot, minus=base), "per_seed": seed_tests,
                "clustered": {"items_up": sum(c > 0 for c in changes), "items_down": sum(c < 0 for c in changes),
                              "p_value": cluster_mcnemar_p(changes)}}
    return out


def holm_over_family(results: dict[str, Any]) -> None:
    """Holm's adjustment over every comparison with uniform in the results (each strategy, G and replay share),
    the family the verdict "targeting beats uniform" is drawn from, written beside each clustered p."""
    family = [v["clustered"] for res in results.get("g", {}).values()
              for vs in res.get("summary", {}).get("versus_uniform", {}).values() for v in vs.values()]
    for c, p in zip(family, adjust([c["p_value"] for c in family], "holm")):
        c.update(p_holm=p, family=len(family))


def summarize(res: dict[str, Any], g: list[str], budgets: list[int], n_boot: int) -> dict[str, Any]:
    """Per strategy, replay share and budget: G, known and overall accuracy (mean over the seeds measured, with
    a seeds x items bootstrap interval), and, per replay share, each strategy's examples-needed ratio over the
    seeds where it and uniform have whole runs at that share (each seed's runs are from its own student).
    Strategies and shares are those the rows hold, whichever invocation measured them."""
    rows, items = res["rows"], res["items"]
    strategies = [s for s in FIXED + ONLINE if any(r["strategy"] == s for r in rows)]
    replays = sorted({r["replay"] for r in rows})
    known = [s for s in {x for it in items for x in it["skills"]} if s not in g]
    seeds = sorted({r["seed"] for r in rows})
    table: dict[str, Any] = {}
    for replay in replays:
        for s in strategies:
            for b in [0] + budgets:
                sel = sorted((r for r in rows if r["strategy"] == s and r["replay"] == replay and r["budget"] == b),
                             key=lambda r: r["seed"])
                if sel:
                    table.setdefault(f"{s}@r{replay:g}", {})[str(b)] = {
                        "g_macro": boot_means(sel, items, g, n_boot), "known_macro": boot_means(sel, items, known, n_boot),
                        "overall": boot_means(sel, items, None, n_boot), "seeds": [r["seed"] for r in sel],
                        "unparsed": sum(r["unparsed"] for r in sel),
                        "share_g": statistics.fmean(r.get("share_g", 0.0) for r in sel) if b else None}
    measured = {(r["seed"], r["strategy"], r["replay"], r["budget"]) for r in rows}
    uniform_share = [r["share_g"] for r in rows if r["strategy"] == "uniform" and r["budget"] == budgets[-1]]
    ideal = 1 / statistics.fmean(uniform_share) if uniform_share else math.nan
    out = {"table": table, "ideal_ratio": ideal, "uniform_share_g": statistics.fmean(uniform_share)
           if uniform_share else math.nan, "ratio_seeds": {}, "ratios": {}}
    for rp in replays:  # each strategy against uniform over the seeds that have both runs whole
        for s in strategies:
            sd = [x for x in seeds if all((x, y, rp, b) in measured for y in ("uniform", s) for b in budgets)]
            out["ratio_seeds"].setdefault(f"r{rp:g}", {})[s] = sd
            out["ratios"].setdefault(f"r{rp:g}", {})[s] = (
                ratios(rows, items, g, s, sd, budgets, rp, n_boot) if sd
                else {"ratio": math.nan, "ci": [math.nan, math.nan], "per_seed": []})
    out["versus_uniform"] = versus_uniform(res, g, strategies, budgets[-1], replays, n_boot)
    return out


# ---------------------------------------------------------------- report

def fmt_ratio(r: float) -> str:
    """An examples-needed ratio; 0 is a strategy that never reached the target within the budgets."""
    return "-" if math.isnan(r) else "never" if r == 0 else f"{r:.2f}x"


def report(results: dict[str, Any], md_path: Path, png_path: Path) -> None:
    """The markdown a user reads, and the plot: G accuracy against examples, one line per strategy."""
    cfg = results["config"]  # the last invocation's; the replay shares are those the rows hold, over every run
    replays = ",".join(f"{r:g}" for r in sorted({r["replay"] for res in results.get("g", {}).values()
                                                  for r in res.get("rows", [])})) or cfg["replay"]
    lines = ["# Does targeting pay? A student with known gaps (issue 13)", "",
             ("Written by `benchmarks/targeting_efficiency.py` from `targeting_efficiency.json`; see "
             "`benchmarks/README.md` for the design and the choice of G."), "",
             (f"Students, one a seed: `{cfg['model']}` with LoRAs merged into the weights (r "
             f"{cfg.get('student_lora_r', 16)}, lr {cfg['student_lr']}), trained on `{cfg['suite']}` train items that "
             f"exercise no skill of G, drawn with the seed: {cfg['student_budget']} examples, then "
             f"{cfg['student_more']} a stage until the floor (`--student-store`). Strategies: LoRA from the seed's "
             f"student at budgets {cfg['budgets']}, replay shares {replays}; {cfg['test_limit']} test items "
             "shared by every run, each paired against its own seed's student. Intervals: 95% bootstrap over seeds "
             "and test items."), "", "What two of the arms are:", ""]
    lines += [f"- **{shown(s)}**: {text}." for s, text in ARMS.items()] + [""]
    for key, res in results.get("g", {}).items():
        sm = res.get("summary", {})
        lines += [f"## G = {{{', '.join(key.split('.'))}}}", ""]
        lines += students_lines(res, cfg) + settings_lines(res, cfg) + accuracy_lines(sm) + ratio_lines(sm)
        lines += versus_lines(sm) + paired_lines(res, cfg) + [""]
    md_path.write_text("\n".join(lines) + "\n")
    plot(results, png_path)


def students_lines(res: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """The G's students: one a seed, and any rebuild of one."""
    lines: list[str] = []
    if res.get("students"):
        lines += [("Students, one a seed (validation: known skills on their single-skill items, floor "
                   f"{float(cfg['known_floor']):.0%}; test: the {len(res.get('items', []))} items every run is "
                   "measured on):"), "",
                  "| seed | examples | steps | min | validation: known alone | G | overall | "
                  "test: G | known | overall | by k |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        builds = [(sd, st) for sd, first in sorted(res["students"].items(), key=lambda x: int(x[0]))
                  for sd, st in [(sd, first)] + [(f"{sd}/build{i}", b)
                                                 for i, b in enumerate(first.get("rebuilds", []), 1)]]
        for sd, st in builds:
            t = res.get("student_tests", {}).get(sd)
            test = (f"{t['g_macro']:.1%} | {t['known_macro']:.1%} | {t['overall']:.1%} | "
                    + ", ".join(f"k={k} {v:.0%}" for k, v in t["by_k"].items()) if t else "- | - | - | -")
            lines.append(f"| {sd} | {st['examples']} | {st['steps']} | {st['seconds'] / 60:.0f} | "
                         f"{st['known_alone_macro']:.1%} | {st['g_macro']:.1%} | {st['overall']:.1%} | {test} |")
        lines += [f"\nSeed {sd.replace('/build', ', build ')} is a rebuild of the seed's student on another "
                  f"machine (`--rebuild-students`): it grades {st['test_items_graded_otherwise']} of the test "
                  "items otherwise than the first build, and the runs made from it are paired with it."
                  for sd, st in builds if "test_items_graded_otherwise" in st]
        lines.append("")
    return lines


def settings_lines(res: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """The chosen learning rate, the design ceiling, and how well each diagnosis names G."""
    lines: list[str] = []
    sm = res.get("summary", {})
    if "settings" in res:
        cands = ", ".join(f"{c['lr']:g}: {c['overall']:.1%} (G {c['g_macro']:.1%}, known {c['known_macro']:.1%})"
                          for c in res["settings"]["candidates"])
        chosen = res["settings"]["lr"]
        lines += [(f"- **LoRA learning rate** {'(sweep unfinished)' if chosen is None else f'{chosen:g}'}, the "
                   f"best validation accuracy overall after `uniform` at the largest budget from seed "
                   f"{res['settings'].get('seed', 0)}'s student, kept for every seed: {cands}.")]
    if sm:
        lines += [(f"- **Design ceiling**: {sm['uniform_share_g']:.1%} of uniform's examples touch G, so if only "
                  f"G's share mattered a targeted set would need 1/{sm['uniform_share_g']:.2f} = "
                  f"**{sm['ideal_ratio']:.2f}x** fewer examples.")]
    diag = res.get("diagnosis", {})
    if diag:
        lines += ["", ("Diagnosis (the student's missing-skill profile on "
                  f"{cfg['diagnose_limit']} train items): its top |G| skills by missing count, what STAT "
                  "targets, and its |G| least accurate skills, against G:"), "",
                  "| seed | top by count | precision | recall | least accurate | precision | recall |",
                  "|---|---|---|---|---|---|---|"]
        for sd, d in diag.items():
            acc = d.get("by_accuracy", {"top": ["-"], "precision": math.nan, "recall": math.nan})
            lines += [f"| {sd} | {', '.join(d['top'])} | {d['precision']:.2f} | {d['recall']:.2f} | "
                      f"{', '.join(acc['top'])} | {acc['precision']:.2f} | {acc['recall']:.2f} |"]
        lines += joint_lines(diag)
    lines += test_outcome_lines(res)
    return lines


def outcome_diagnoses(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every student diagnosed from its 300 test outcomes (student -> `diagnosis_quality`): the only item outcomes
    kept for the seeds measured before issue 40. A diagnosis on test items is not what targeting uses (it diagnoses
    train items); nothing is chosen on it, and it says whether a method names G given more items. STAT's count here
    is its rule without step traces (every skill of a wrong item)."""
    items, tests = res.get("items"), res.get("student_tests") or {}
    out = {}
    for key, t in sorted(tests.items(), key=lambda kv: (int(kv[0].split("/")[0]), kv[0])):
        rows = [{"id": it["id"], "skills": it["skills"], "correct": c == "1", "status": "ok"}
                for it, c in zip(items or [], t["correct"])]
        counts: dict[str, int] = {}
        for r in rows:
            for sk in r["skills"] if not r["correct"] else ():
                counts[sk] = counts.get(sk, 0) + 1
        skills = {sk for r in rows for sk in r["skills"]}
        accuracy = {sk: statistics.fmean(r["correct"] for r in rows if sk in r["skills"]) for sk in skills}
        out[key] = diagnosis_quality(counts, res["g"], accuracy, rows)
    return out


def quality_row(name: str, d: dict[str, Any]) -> str:
    """One student's diagnoses as a table row: precision / recall of each against G, the joint gaps, G's share."""
    def pr(x: dict[str, Any]) -> str:
        return f"{x['precision']:.2f} / {x['recall']:.2f}"

    return (f"| {name} | {pr(d)} | {pr(d['by_accuracy'])} | {pr(d['by_joint'])} | {pr(d['gaps']['accuracy'])} "
            f"| {pr(d['gaps']['joint'])} | {', '.join(d['gaps']['joint']['top']) or '-'} | {d['joint_share_g']:.0%} |")


QUALITY_HEAD = ["| student | count, top |G| | accuracy, top |G| | joint, top |G| | accuracy gaps | joint gaps | "
                "joint gaps named | G's share of the joint budget |", "|---|---|---|---|---|---|---|---|"]


def test_outcome_lines(res: dict[str, Any]) -> list[str]:
    """`outcome_diagnoses` as a table."""
    found = outcome_diagnoses(res)
    if not found:
        return []
    return ["", ("Every student diagnosed from its own test outcomes (300 items; the only outcomes kept for seeds "
            "0-2; settings fixed before, nothing chosen here), precision / recall against G:"), "", *QUALITY_HEAD,
            *(quality_row(k, d) for k, d in found.items())]


def joint_lines(diag: dict[str, Any]) -> list[str]:
    """Each diagnosis against G where the item outcomes were kept (issue 40): the top |G| of each ranking, and the
    gap lists targeting spends its budget on (`--diagnosis joint` and `accuracy`), precision / recall. Seeds 0-2
    informed the joint model's design; seeds 3 and up are its confirmation."""
    kept = {sd: d for sd, d in diag.items() if "by_joint" in d}
    if not kept:
        return []
    return ["", ("Every diagnosis of the same train items against G (precision / recall): the top |G| skills by "
            "STAT's count, by accuracy and by the joint model's mastery, and the gap lists `--diagnosis joint` and "
            "`--diagnosis accuracy` hand to targeting (skills whose mastery's upper bound is below 60%), with the "
            "share of the joint allotment that goes to G. Seeds 3 and up are new students, diagnosed after the "
            "joint model's settings were fixed on the planted-gap simulations "
            "(`benchmarks/results/attribution_planted.md`):"), "", *QUALITY_HEAD,
            *(quality_row(sd, d) for sd, d in sorted(kept.items(), key=lambda kv: int(kv[0].split("/")[0])))]


def accuracy_lines(sm: dict[str, Any]) -> list[str]:
    """Accuracy on G, on the known skills and overall, per strategy, replay share and budget."""
    lines: list[str] = []
    if sm.get("table"):
        budgets = [b for b in next(iter(sm["table"].values()))]
        for metric, title in (("g_macro", "Accuracy on G (macro over its skills)"),
                              ("known_macro", "Accuracy on the known skills (macro): forgetting"),
                              ("overall", "Accuracy overall")):
            lines += ["", f"### {title}", "", "| strategy | replay | " + " | ".join(f"@{b}" for b in budgets)
                      + " | seeds |", "|---|---|" + "---|" * len(budgets) + "---|"]
            for name, row in sm["table"].items():
                strat, rp = name.rsplit("@r", 1)
                lines.append(f"| {shown(strat)} | {rp} | " + " | ".join(fmt_mean(row[b][metric]) if b in row else "-"
                                                                 for b in budgets)
                             + f" | {len(row[budgets[-1]]['seeds']) if budgets[-1] in row else 0} |")
        lines += ["", "Share of the examples read that touch G, at the largest budget: "
                  + ", ".join(f"{shown(n.rsplit('@r', 1)[0])} at replay {n.rsplit('@r', 1)[1]} "
                              f"{row[budgets[-1]]['share_g']:.0%}" for n, row in sm["table"].items()
                              if budgets[-1] in row and row[budgets[-1]]["share_g"] is not None) + "."]
    return lines


def ratio_lines(sm: dict[str, Any]) -> list[str]:
    """Examples each strategy needs to reach uniform's G accuracy, relative to uniform's."""
    lines: list[str] = []
    if sm.get("ratios"):
        lines += ["", ("### Examples needed to reach uniform's G accuracy at the largest budget, relative to "
                  "uniform (>1: fewer examples), on the learning curves averaged over the seeds that have "
                  "both runs whole [95% bootstrap over seeds and items]; then each seed's own ratio. "
                  "\"never\": not reached within the budgets (an interval bound of 0 means the same)"), "",
                  "| strategy | " + " | ".join(f"replay {rk[1:]}" for rk in sm["ratios"]) + " |",
                  "|---|" + "---|" * len(sm["ratios"])]
        for s in next(iter(sm["ratios"].values())):
            cells = []
            for rk, rs in sm["ratios"].items():
                r, sd = rs[s], sm["ratio_seeds"][rk][s]
                cells.append("-" if not sd else
                             f"{fmt_ratio(r['ratio'])} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]; "
                             + ", ".join(f"s{x} {fmt_ratio(v)}" for x, v in zip(sd, r.get("per_seed", []))))
            lines.append(f"| {shown(s)} | " + " | ".join(cells) + " |")
        lines += ["", f"Ideal if only G's share mattered: {sm['ideal_ratio']:.2f}x."]
    return lines


def versus_lines(sm: dict[str, Any]) -> list[str]:
    """Each strategy against uniform at the largest budget, paired."""
    lines: list[str] = []
    if sm.get("versus_uniform"):
        family = next(iter(next(iter(sm["versus_uniform"].values())).values()))["clustered"].get("family")
        lines += ["", ("### Against uniform at the largest budget (the same seeds and test items, paired; points, "
                  "95% bootstrap over seeds and items). G items won and lost against uniform: per seed, exact "
                  "McNemar; over the seeds, the items whose summed change is up or down and the exact clustered "
                  "McNemar test (items as clusters: the seeds share the items, so their discordant pairs are "
                  f"not pooled), with Holm's adjustment over the {family} comparisons with uniform of every G and "
                  "replay share"), "",
                  "| strategy | replay | seeds | G | known | overall | G items, per seed | over seeds | Holm |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for rk, vs in sm["versus_uniform"].items():
            for s, v in vs.items():
                per = ", ".join(f"s{d['seed']} +{d['gained']}/−{d['lost']} (p={d['p_value']:.2g})"
                                for d in v["per_seed"])
                c = v["clustered"]
                lines.append(f"| {shown(s)} | {rk[1:]} | {', '.join(map(str, v['seeds']))} | "
                             + " | ".join(fmt_points(v[m]) for m in ("g_macro", "known_macro", "overall"))
                             + f" | {per} | {c['items_up']} up, {c['items_down']} down (p={c['p_value']:.2g}) | "
                             f"{c['p_holm']:.2g} |")
    return lines


def paired_lines(res: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """Every run against its student at the largest budget, paired, with Holm over the table."""
    lines: list[str] = []
    paired = [r for r in res.get("rows", []) if r["budget"] == max(int(b) for b in cfg["budgets"].split(","))]
    if paired:
        paired = sorted(paired, key=lambda r: (r["replay"], r["strategy"], r["seed"]))
        holm = iter(adjust([r[k]["p_value"] for r in paired for k in ("items_g", "items_known")], "holm"))
        lines += ["", ("### Paired against the student at the largest budget (same test items, exact McNemar per "
                  f"seed; Holm: adjusted over the {2 * len(paired)} tests of this table)"),
                  "", ("| strategy | replay | seed | G items: before → after (gained/lost, p, Holm) | "
                  "other items: before → after (gained/lost, p, Holm) |"), "|---|---|---|---|---|"]
        for r in paired:
            cell = [f"{d['before']:.1%} → {d['after']:.1%} (+{d['gained']}/−{d['lost']}, p={d['p_value']:.2g}, "
                    f"{next(holm):.2g})" for d in (r["items_g"], r["items_known"])]
            lines.append(f"| {shown(r['strategy'])} | {r['replay']:g} | {r['seed']} | {cell[0]} | {cell[1]} |")
    return lines


def plot(results: dict[str, Any], path: Path) -> None:
    """One column per G and replay share: accuracy on G (top) and on the known skills (bottom) against examples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    panels = [(key, rp, res["summary"]["table"]) for key, res in results.get("g", {}).items()
              if res.get("summary", {}).get("table") for rp in sorted({n.rsplit("@r", 1)[1]
                                                                       for n in res["summary"]["table"]})]
    if not panels:
        return
    colors = {"uniform": "tab:gray", "stat-sel": "tab:blue", "stat-syn": "tab:green", "curriculum": "tab:orange",
              "skill-it": "tab:red", "stratified": "tab:purple", "random": "tab:brown", "stat-sel:joint": "tab:cyan",
              "active": "tab:olive"}
    fig, axes = plt.subplots(2, len(panels), figsize=(4.0 * len(panels), 6.4), sharex=True, sharey="row", dpi=110,
                             squeeze=False)
    for col, (key, rp, table) in enumerate(panels):
        for name, row in table.items():
            strat, r = name.rsplit("@r", 1)
            if r != rp:
                continue
            xs = [int(b) for b in row]
            for ax, metric in zip(axes[:, col], ("g_macro", "known_macro")):
                m = [row[b][metric] for b in row]
                ax.plot(xs, [v[0] for v in m], marker="o", ms=3, label=shown(strat), color=colors.get(strat))
                ax.fill_between(xs, [v[1] for v in m], [v[2] for v in m], color=colors.get(strat), alpha=0.12, lw=0)
                ax.set_xticks(xs)
                ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
                ax.grid(alpha=0.3)
        axes[0, col].set_title(f"G = {key.replace('.', ', ')}\nreplay share {rp}", fontsize=9)
        axes[1, col].set_xlabel("training examples")
    axes[0, 0].set_ylabel("accuracy on G (macro)")
    axes[1, 0].set_ylabel("accuracy on the known skills (macro)")
    busiest = max(range(len(panels)), key=lambda c: len(axes[0, c].get_lines()))  # the panel with every strategy
    axes[0, busiest].legend(fontsize=8)
    fig.suptitle("From the student (0 examples): mean over seeds, 95% bootstrap over seeds and test items", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
