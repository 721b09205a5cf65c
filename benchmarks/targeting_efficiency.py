"""Which targeting strategy closes the gaps with the fewest training examples?

For each seed: diagnose the base model on the pool and measure it on fresh test items (shared by
every strategy). For each strategy: build its training set at the largest budget, train once with
a constant learning rate (after warmup) and keep a checkpoint at every budget, then re-measure
each checkpoint on the same test items. With a constant schedule the checkpoint after B examples
is what a B-example run would give, so one training yields the whole learning curve. (For
`curriculum` the first B examples are the curriculum's early stages, which is what a curriculum
means; a separate B-budget curriculum would compress all stages into B.)

Reported per strategy and budget: overall accuracy, accuracy on the initially-missing skills
(macro mean over the skills the diagnosis named), and the number of examples each strategy
needs to reach a target on those skills (by default uniform's accuracy at the largest budget;
linear interpolation between measured budgets, budget 0 being the base model), with the ratio
to uniform and a t-interval over seeds.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/targeting_efficiency.py --model smollm2-135m \
        --budgets 128,256,512,1024 --seeds 0,1,2 --eval-limit 100 --output-path benchmarks/targeting_efficiency.json
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from skillgap.data import DataConfig
from skillgap.models import ModelConfig
from skillgap.recipes.profile import EvalConfig, profile, write_json
from skillgap.recipes.train import TargetConfig, diagnose, prepare
from skillgap.train import TrainConfig, train

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def missing_skill_accuracy(prof: dict, skills: list[str]) -> float:
    accs = [s["accuracy"] for s in prof["skills"] if s["id"] in skills and s["n"]]
    return sum(accs) / len(accs) if accs else 0.0


def examples_needed(curve: list[tuple[int, float]], target: float) -> float:
    """First budget where the curve reaches `target`, interpolated linearly; inf if it never does."""
    for (b0, a0), (b1, a1) in zip(curve, curve[1:]):
        if a1 >= target:
            return float(b0) if a0 >= target else b0 + (b1 - b0) * (target - a0) / (a1 - a0)
    return math.inf


def mean_ci(xs: list[float]) -> tuple[float, float, float]:
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return math.nan, math.nan, math.nan
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, math.nan, math.nan
    h = T95.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / math.sqrt(len(xs))
    return m, m - h, m + h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--suite", default="arith")
    ap.add_argument("--strategies", default="uniform,stat-sel,stat-syn,curriculum")
    ap.add_argument("--budgets", default="128,256,512,1024")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--eval-limit", type=int, default=100)
    ap.add_argument("--diagnose-limit", type=int, default=100)
    ap.add_argument("--train-batch-size", type=int, default=16)
    ap.add_argument("--target-accuracy", type=float, default=None,
                    help="accuracy on the initially-missing skills to reach (default: uniform's at the largest budget)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work-dir", default="benchmarks/targeting_runs")
    ap.add_argument("--output-path", default="benchmarks/targeting_efficiency.json")
    a = ap.parse_args()
    console = Console(stderr=True)
    budgets = sorted(int(b) for b in a.budgets.split(","))
    if any(b % a.train_batch_size for b in budgets):
        raise SystemExit("every budget must be a multiple of --train-batch-size")
    strategies, seeds = a.strategies.split(","), [int(s) for s in a.seeds.split(",")]
    work, runs_dir = Path(a.work_dir), Path(a.work_dir) / "runs"
    model = ModelConfig(a.model, device=a.device)
    ev = EvalConfig(batch_size=16, max_new_tokens=128)
    step = budgets[0] // a.train_batch_size
    t_cfg = TrainConfig(batch_size=a.train_batch_size, eval_every=0, save_every=step, keep_checkpoints=None)
    rows = []  # one per (seed, strategy, budget)
    t_start = time.perf_counter()
    for seed in seeds:
        data = DataConfig(suite=a.suite, split="test", limit=a.eval_limit, seed=seed)
        tc = TargetConfig(budget=budgets[-1], diagnose_limit=a.diagnose_limit)
        seed_dir = work / f"seed{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        diag = diagnose(model, data, tc, ev, runs_dir, seed_dir, console)
        missing_skills = sorted(diag["missing"])
        before = profile(model, data, ev, runs_dir, seed_dir / "before.json", console).to_dict()
        for strategy in strategies:
            out = seed_dir / strategy
            out.mkdir(parents=True, exist_ok=True)
            prep = prepare(model, data, replace(tc, strategy=strategy), ev, runs_dir, out, console,
                           missing=diag["missing"])
            t0 = time.perf_counter()
            result = train(model, prep.mixture.items, replace(t_cfg, seed=seed), out, console=console)
            train_s = time.perf_counter() - t0
            rows.append({"seed": seed, "strategy": strategy, "budget": 0, "overall": before["overall"]["accuracy"],
                         "missing_acc": missing_skill_accuracy(before, missing_skills),
                         "skills": {s["id"]: s["accuracy"] for s in before["skills"]}})
            for b in budgets:
                ckpt = out / "checkpoints" / f"checkpoint-{b // a.train_batch_size}"
                adapter = ckpt if ckpt.is_dir() else Path(result.weights)
                after = profile(replace(model, adapter=str(adapter)), data, ev, runs_dir,
                                out / f"after-{b}.json", console).to_dict()
                rows.append({"seed": seed, "strategy": strategy, "budget": b, "overall": after["overall"]["accuracy"],
                             "missing_acc": missing_skill_accuracy(after, missing_skills),
                             "skills": {s["id"]: s["accuracy"] for s in after["skills"]},
                             "mixture": prep.mixture.by_skill() if b == budgets[-1] else None,
                             "train_seconds": round(train_s, 1)})
            console.print(f"seed {seed} {strategy}: " + ", ".join(
                f"{r['budget']}: {100 * r['missing_acc']:.1f}%" for r in rows if r["seed"] == seed
                and r["strategy"] == strategy))
            write_json({"rows": rows}, a.output_path)

    summary = summarize(rows, strategies, seeds, budgets, a.target_accuracy)
    write_json({"config": vars(a), "rows": rows, "summary": summary,
                "seconds": round(time.perf_counter() - t_start, 1)}, a.output_path)
    print_summary(summary, budgets)


def summarize(rows: list[dict], strategies: list[str], seeds: list[int], budgets: list[int],
              target: float | None) -> dict:
    def curve(seed: int, strategy: str, key: str) -> list[tuple[int, float]]:
        return sorted((r["budget"], r[key]) for r in rows if r["seed"] == seed and r["strategy"] == strategy)

    out: dict = {"by_budget": {}, "examples_needed": {}, "ratio_to_uniform": {}, "targets": {}}
    for s in strategies:
        for b in [0] + budgets:
            for key in ("overall", "missing_acc"):
                xs = [r[key] for r in rows if r["strategy"] == s and r["budget"] == b]
                out["by_budget"].setdefault(s, {}).setdefault(str(b), {})[key] = mean_ci(xs)
    for seed in seeds:
        tgt = target if target is not None else dict(curve(seed, "uniform", "missing_acc")).get(budgets[-1])
        if tgt is None:
            continue
        out["targets"][str(seed)] = tgt
        needed = {s: examples_needed(curve(seed, s, "missing_acc"), tgt) for s in strategies}
        for s in strategies:
            out["examples_needed"].setdefault(s, []).append(needed[s])
            if "uniform" in needed and math.isfinite(needed[s]) and needed[s] > 0:
                out["ratio_to_uniform"].setdefault(s, []).append(needed["uniform"] / needed[s])
    out["ratio_ci"] = {s: mean_ci(v) for s, v in out["ratio_to_uniform"].items()}
    return out


def print_summary(summary: dict, budgets: list[int]) -> None:
    from rich.table import Table

    t = Table(title="accuracy on initially-missing skills (macro) / overall, mean over seeds [95% CI]")
    t.add_column("strategy")
    for b in [0] + budgets:
        t.add_column(str(b), justify="right")
    for s, per in summary["by_budget"].items():
        cells = []
        for b in [0] + budgets:
            m, lo, hi = per[str(b)]["missing_acc"]
            o = per[str(b)]["overall"][0]
            cells.append(f"{100 * m:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] / {100 * o:.1f}")
        t.add_row(s, *cells)
    Console().print(t)
    r = Table(title="examples needed to reach the target (per seed); ratio uniform/strategy [95% CI]")
    for c in ("strategy", "examples needed", "ratio"):
        r.add_column(c)
    for s, xs in summary["examples_needed"].items():
        m, lo, hi = summary["ratio_ci"].get(s, (math.nan,) * 3)
        r.add_row(s, ", ".join("never" if not math.isfinite(x) else f"{x:.0f}" for x in xs),
                  f"{m:.2f} [{lo:.2f}, {hi:.2f}]")
    Console().print(r)


if __name__ == "__main__":
    main()
