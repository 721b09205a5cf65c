"""Does Skill-it's online mixture learn the synthetic skills faster than random or stratified sampling?

The paper's setup (Skill-it!, Chen et al. 2023; the reference notebooks, 5 seeds, GPT-Neo-125M,
batch 32): LEGO at 6000 steps, mean accuracy over the 5 skills, random 0.621 / stratified
0.985 / Skill-it 0.993; Addition at 3000 steps, random 0.895 / stratified 0.762 / Skill-it
0.982. Here the model is `scratch-tiny` (from scratch, about 1.05M parameters, on 2 CPU cores),
and the steps are scaled to fit the machine.

Every (method, seed) is one `skillgap train --mixture METHOD` run through the library: the same
code path as the CLI. It records per-skill validation accuracy and answer loss every
`--eval-every` steps (`val_loss.jsonl`), and a final profile on test items (`profile.json`).
Runs go `--jobs` at a time, one CPU thread each (two 2-thread runs on two cores spin-wait on
each other and crawl). A finished run is skipped when the script is run again.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/skillit_reproduction.py --suite lego \\
        --methods random,stratified,skill-it --seeds 0,1,2 --steps 3000 --output-dir benchmarks/skillit
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REFERENCE = {  # mean accuracy over skills, from the reference notebooks (notebooks/lego.ipynb, addition.ipynb)
    "lego": {"steps": 6000, "random": 0.621, "stratified": 0.985, "skill-it": 0.993, "curriculum": 0.854,
             "mid": {"steps": 3000, "random": 0.595, "stratified": 0.759, "skill-it": 0.842, "curriculum": 0.634}},
    "addition": {"steps": 3000, "random": 0.895, "stratified": 0.762, "skill-it": 0.982, "curriculum": 0.763},
}
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}


def run_one(suite: str, method: str, seed: int, a: argparse.Namespace) -> dict:
    out = Path(a.output_dir) / suite / f"{method}-s{seed}"
    args = [sys.executable, "-m", "skillgap", "train", "--model", a.model, "--suite", suite, "--mixture", method,
            "--steps", str(a.steps), "--train-batch-size", str(a.batch_size), "--learning-rate", str(a.learning_rate),
            "--warmup-steps", str(a.warmup_steps), "--eval-every", str(a.eval_every),
            "--save-every", str(a.steps // 2), "--val-per-skill", str(a.val_per_skill), "--limit", str(a.test_limit),
            "--max-new-tokens", "2", "--seed", str(seed), "--output-path", str(out),
            "--runs-dir", str(Path(a.output_dir) / "runs")]
    if a.round_steps:
        args += ["--round-steps", str(a.round_steps)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    if not (out / "profile.json").is_file():
        p = subprocess.run(args, env=env, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{p.stderr[-3000:]}")
    seconds = time.perf_counter() - t0
    prof = json.loads((out / "profile.json").read_text())
    curve = [json.loads(x) for x in (out / "val_loss.jsonl").read_text().splitlines() if x.strip()]
    rounds = [json.loads(x) for x in (out / "mixture.jsonl").read_text().splitlines() if x.strip()]
    result = json.loads((out / "train_result.json").read_text())
    print(f"{suite} {method} seed {seed}: test acc {prof['overall']['accuracy']:.3f} "
          f"({result['seconds']:.0f} s training, {seconds:.0f} s this call)", flush=True)
    return {"suite": suite, "method": method, "seed": seed, "test": {s["id"]: s["accuracy"] for s in prof["skills"]},
            "test_overall": prof["overall"]["accuracy"], "test_answer_loss": prof["answer_loss"],
            "curve": curve, "rounds": rounds, "train_seconds": result["seconds"]}


def mean_ci(xs: list[float]) -> tuple[float, float]:
    m = statistics.fmean(xs)
    half = T95.get(len(xs) - 1, 2.0) * statistics.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else float("nan")
    return m, half


def summarise(runs: list[dict], suite: str, steps: int) -> dict:
    methods = sorted({r["method"] for r in runs}, key=["random", "stratified", "curriculum", "skill-it"].index)
    table = {}
    for m in methods:
        rs = [r for r in runs if r["method"] == m]
        at = {}
        for frac in (0.5, 1.0):
            step = int(steps * frac)
            accs = []
            for r in rs:
                row = min(r["curve"], key=lambda c: abs(c["step"] - step))
                accs.append(statistics.fmean(row["accuracy"].values()))
            at[str(step)] = mean_ci(accs)
        table[m] = {"val_mean_acc": at, "test_mean_acc": mean_ci([statistics.fmean(r["test"].values()) for r in rs]),
                    "test_per_skill": {s: statistics.fmean(r["test"][s] for r in rs) for s in rs[0]["test"]},
                    "test_answer_loss": statistics.fmean(statistics.fmean(r["test_answer_loss"].values()) for r in rs),
                    "train_seconds": statistics.fmean(r["train_seconds"] for r in rs), "seeds": len(rs)}
    return table


def plot(runs: list[dict], suite: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skills = list(runs[0]["curve"][0]["accuracy"])
    methods = sorted({r["method"] for r in runs}, key=["random", "stratified", "curriculum", "skill-it"].index)
    colors = {"random": "tab:gray", "stratified": "tab:blue", "curriculum": "tab:orange", "skill-it": "tab:red"}
    fig, axes = plt.subplots(1, len(skills) + 1, figsize=(3.2 * (len(skills) + 1), 3.2), sharey=True, dpi=110)
    for m in methods:
        rs = [r for r in runs if r["method"] == m]
        steps = [c["step"] for c in rs[0]["curve"]]
        for ax, s in zip(axes, skills + ["mean"]):
            ys = [statistics.fmean((statistics.fmean(r["curve"][i]["accuracy"].values()) if s == "mean"
                                    else r["curve"][i]["accuracy"][s]) for r in rs) for i in range(len(steps))]
            ax.plot(steps, ys, label=m, color=colors[m])
    for ax, s in zip(axes, skills + ["mean over skills"]):
        ax.set_title(s, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"{suite}: per-skill accuracy against steps (mean of {len({r['seed'] for r in runs})} seeds)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(suite: str, table: dict, steps: int) -> str:
    ref = REFERENCE[suite]
    half = str(steps // 2)
    lines = [f"| {suite} method | val acc @{half} | val acc @{steps} | test acc @{steps} (±95% CI) | "
             f"answer loss | reference @{ref['steps']} |", "|---|---|---|---|---|---|"]
    for m, row in table.items():
        v1, v2, t = row["val_mean_acc"][half], row["val_mean_acc"][str(steps)], row["test_mean_acc"]
        lines.append(f"| {m} | {v1[0]:.3f} | {v2[0]:.3f} | {t[0]:.3f} ± {t[1]:.3f} | {row['test_answer_loss']:.3f} | "
                     f"{ref.get(m, '-')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", default="lego", help="lego | addition | lego,addition")
    ap.add_argument("--methods", default="random,stratified,skill-it")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--model", default="scratch-tiny")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    ap.add_argument("--warmup-steps", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--round-steps", type=int, default=None, help="default: a sixth of --steps (the paper: 1000 of 6000)")
    ap.add_argument("--val-per-skill", type=int, default=100)
    ap.add_argument("--test-limit", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--output-dir", default="benchmarks/skillit")
    a = ap.parse_args()
    out = Path(a.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"args": vars(a), "reference": REFERENCE, "suites": {}}
    for suite in a.suite.split(","):
        jobs = [(suite, m, int(s)) for s in a.seeds.split(",") for m in a.methods.split(",")]
        with ThreadPoolExecutor(a.jobs) as pool:
            runs = list(pool.map(lambda j: run_one(*j, a), jobs))
        table = summarise(runs, suite, a.steps)
        plot(runs, suite, out / f"{suite}.png")
        md = markdown(suite, table, a.steps)
        print(md)
        report["suites"][suite] = {"table": table, "markdown": md, "runs": runs}
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out / 'results.json'} and the plots in {out}")


if __name__ == "__main__":
    main()
