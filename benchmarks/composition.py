"""Can the embedded model learn to compose from k = 2, 3 examples? (Zhao et al., NeurIPS 2024; issue 14)

The paper fine-tunes 7-13B models on Skill-Mix texts of k <= 3 skills and finds that k = 2, 3 data improves
k = 4, 5 and combinations of skills never seen together. Here the same question on `arith`, exact answers
and no judge:

1. **Regimes** at one budget, from the same base model: training items of k = 1 only, of k <= 2, of k <= 3
   (`--k`), every one with the held-out pairs of skills left out (`--hold-out-pairs`), trained with
   `skillgap train`'s defaults (LoRA, uniform sampling of the restricted stream).
2. **Measures** on the same `--test-limit` test items of the whole suite (every k, every combination):
   accuracy by k = 1..4, on the items that compose a held-out pair ("unseen combinations") and on the
   other composed items ("seen"), each with an exact McNemar test against the base model (paired), and the
   mean over seeds with a 95% bootstrap interval over seeds and items.

Resumable: trainings skip when done, profiles live in the work directory's run store, and `--output-path`
is rewritten after every run; a run already in it is skipped (so a new machine, without the work directory,
resumes from the committed results) as long as the base model's graded test items are the same bits.
`--report-only` rewrites the markdown from it.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/composition.py --seeds 0,1,2 \\
        --work-dir /var/tmp/skillgap-composition --output-path benchmarks/results/composition.json

A smoke run (a minute): --model scratch-tiny --backend hf --budget 16 --train-batch-size 4 --test-limit 24 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig, load_items
from skillgap.models import ModelConfig, ModelPool
from skillgap.recipes.profile import EvalConfig, profile, write_json
from skillgap.recipes.train import TargetConfig, load_pool, train_recipe
from skillgap.train import TrainConfig
from skillgap.verify import assert_disjoint, paired_delta

# Pairs that the k <= 2 stream composes often, each skill of which still composes with others.
PAIRS = "add_multi+mul_1digit,percent+fraction_of,sub_borrow+compare,mul_facts+div_remainder"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--regimes", default="1;1,2;1,2,3", help="the k of each regime's training items, ';' between")
    p.add_argument("--hold-out-pairs", default=PAIRS, help="skill pairs no training item composes")
    p.add_argument("--budget", type=int, default=512, help="training examples, the same for every regime")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--test-limit", type=int, default=300)
    p.add_argument("--train-batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=TrainConfig.learning_rate)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--backend", default="auto")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--work-dir", type=Path, default=Path("/var/tmp/skillgap-composition"))
    p.add_argument("--output-path", type=Path, default=Path("benchmarks/results/composition.json"))
    p.add_argument("--report-only", action="store_true", help="rewrite the markdown from the results, train nothing")
    return p.parse_args(argv)


def groups(items: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> dict[str, list[int]]:
    """Test item indices by k, and the composed ones split by whether they hold a held-out pair."""
    out: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        out.setdefault(f"k={it['k']}", []).append(i)
        if it["k"] >= 2:
            unseen = any(a in it["skills"] and b in it["skills"] for a, b in pairs)
            out.setdefault("unseen pairs" if unseen else "seen pairs", []).append(i)
    return dict(sorted(out.items()))


def measures(correct: str, base: str, groups_: dict[str, list[int]]) -> dict[str, Any]:
    """Accuracy per group and its paired test against the base model on the same items."""
    out = {}
    for name, idx in groups_.items():
        pairs = [(base[i] == "1", correct[i] == "1") for i in idx]
        d = paired_delta(pairs)
        out[name] = {k: d[k] for k in ("n", "before", "after", "delta", "gained", "lost", "p_value")}
    return out


def boot(runs: list[str], idx: list[int], n_boot: int) -> list[float]:
    """Mean accuracy over seeds on items `idx`, with a 95% bootstrap interval over seeds and items."""
    import numpy as np

    c = np.array([[r[i] == "1" for i in idx] for r in runs], dtype=float)
    if c.size == 0:
        return [math.nan] * 3
    rng = np.random.default_rng(0)
    w = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=n_boot).astype(float)
    per = (w @ c.T) / len(idx)  # draws x seeds
    pick = rng.integers(0, len(runs), size=(n_boot, len(runs)))
    draws = np.take_along_axis(per, pick, axis=1).mean(1)
    return [float(c.mean()), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]


def boot_diff(runs: list[str], ref: list[str], idx: list[int], n_boot: int) -> list[float]:
    """Mean accuracy difference `runs` − `ref` (paired by seed and item) with a 95% bootstrap over both."""
    import numpy as np

    d = np.array([[(r[i] == "1") - (q[i] == "1") for i in idx] for r, q in zip(runs, ref)], dtype=float)
    if d.size == 0:
        return [math.nan] * 3
    rng = np.random.default_rng(0)
    w = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=n_boot).astype(float)
    per = (w @ d.T) / len(idx)
    pick = rng.integers(0, len(d), size=(n_boot, len(d)))
    draws = np.take_along_axis(per, pick, axis=1).mean(1)
    return [float(d.mean()), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]


def report(res: dict[str, Any], path: Path, n_boot: int) -> None:
    g = groups(res["items"], [tuple(p.split("+")) for p in res["config"]["hold_out_pairs"].split(",")])
    names = list(g)
    lines = ["# Learning to compose on `arith` (issue 14)", "",
             (f"`{res['config']['model']}`, LoRA with `skillgap train`'s defaults, {res['config']['budget']} examples per "
             f"regime, held-out pairs `{res['config']['hold_out_pairs']}`; {len(res['items'])} test items of the whole "
             "suite shared by every run. Mean over seeds [95% bootstrap over seeds and items]; n per group below."), "",
             "| regime | seeds | " + " | ".join(f"{n} (n={len(g[n])})" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    base = [res["base"]["correct"]]
    lines.append("| base model | - | " + " | ".join(_cell(boot(base, g[n], n_boot)) for n in names) + " |")
    for regime, runs in res["runs"].items():
        bits = [r["correct"] for r in runs.values()]
        lines.append(f"| train k in {{{regime}}} | {len(bits)} | "
                     + " | ".join(_cell(boot(bits, g[n], n_boot)) for n in names) + " |")
    regimes = list(res["runs"])
    if len(regimes) > 1:
        ref = regimes[0]
        lines += ["", f"Against training on k in {{{ref}}} at the same budget (the question: do composed training items "
                  "help beyond single-skill ones?), mean difference in points over the seeds both ran "
                  "[95% bootstrap over seeds and items]:", "",
                  "| regime | seeds | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for regime in regimes[1:]:
            seeds = [x for x in res["runs"][regime] if x in res["runs"][ref]]
            a_, b_ = [res["runs"][regime][x]["correct"] for x in seeds], [res["runs"][ref][x]["correct"] for x in seeds]
            lines.append(f"| {{{regime}}} − {{{ref}}} | {len(seeds)} | " + " | ".join(
                _pp(boot_diff(a_, b_, g[n], n_boot)) for n in names) + " |")
    lines += ["", "Paired against the base model (exact McNemar), per seed:", "",
              "| regime | seed | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for regime, runs in res["runs"].items():
        for seed, r in runs.items():
            lines.append(f"| {{{regime}}} | {seed} | " + " | ".join(
                f"{m['before']:.0%} → {m['after']:.0%} (+{m['gained']}/−{m['lost']}, p={m['p_value']:.2g})"
                for m in (r["measures"][n] for n in names)) + " |")
    path.write_text("\n".join(lines) + "\n")


def _pp(m: list[float]) -> str:
    return "-" if math.isnan(m[0]) else f"{100 * m[0]:+.1f} [{100 * m[1]:+.1f}, {100 * m[2]:+.1f}]"


def _cell(m: list[float]) -> str:
    return "-" if math.isnan(m[0]) else f"{m[0]:.1%} [{m[1]:.1%}, {m[2]:.1%}]"


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    console = Console(stderr=True)
    if a.report_only:
        report(json.loads(a.output_path.read_text()), a.output_path.with_suffix(".md"), a.bootstrap)
        return
    pairs = tuple(tuple(p.split("+")) for p in a.hold_out_pairs.split(","))
    regimes = [tuple(int(k) for k in r.split(",")) for r in a.regimes.split(";")]
    seeds = [int(s) for s in a.seeds.split(",")]
    from skillgap.models.scratch import is_scratch, scratch_model

    name = str(scratch_model(a.model, "arith")) if is_scratch(a.model) else a.model
    base = ModelConfig(name, backend=a.backend)
    ev = EvalConfig(max_new_tokens=a.max_new_tokens)
    test = DataConfig(suite="arith", split="test", limit=a.test_limit, seed=0)
    runs_dir = a.work_dir / "runs"
    res: dict[str, Any] = json.loads(a.output_path.read_text()) if a.output_path.is_file() else {}
    config = {k: str(v) for k, v in vars(a).items()}
    same = ("seeds", "work_dir", "output_path", "report_only")
    if {k: v for k, v in res.get("config", {}).items() if k not in same} != {k: v for k, v in config.items() if k not in same}:
        res.pop("runs", None)  # measured under other settings: not comparable
    res["config"] = config
    t0 = time.perf_counter()
    with ModelPool() as models:
        bprof = profile(base, test, ev, runs_dir, a.work_dir / "base.json", console, models=models).to_dict()
        res["items"] = [{"id": r["id"], "k": r["k"], "skills": r["skills"]} for r in bprof["records"]]
        b_bits = "".join("1" if r["correct"] else "0" for r in bprof["records"])
        if res.get("base", {}).get("correct", b_bits) != b_bits:
            console.print("the base model grades the test items differently from the saved results: starting afresh")
            res.pop("runs", None)
        res["base"] = {"correct": b_bits, "overall": bprof["overall"]["accuracy"]}
        g = groups(res["items"], list(pairs))
        for seed in seeds:
            for ks in regimes:
                key = ",".join(map(str, ks))
                done = res.get("runs", {}).get(key, {}).get(str(seed))
                if done:
                    continue  # measured in an earlier session (the work directory may be gone, the results are not)
                out = a.work_dir / f"k{''.join(map(str, ks))}" / f"seed{seed}"
                data = DataConfig(suite="arith", split="train", limit=None, seed=seed, k_values=ks,
                                  hold_out_pairs=pairs)
                cfg = TrainConfig(method="lora", learning_rate=a.lr, batch_size=a.train_batch_size,
                                  max_steps=a.budget // a.train_batch_size, eval_every=0, seed=seed)
                models.close()
                target = TargetConfig(strategy="uniform", budget=a.budget, pool_size=max(4000, a.budget))
                assert_disjoint(load_pool(data, target)[0], load_items(test)[0], f"the k in {{{key}}} training pool",
                                "the test items")
                result = train_recipe(base, data, target, cfg, ev, out, runs_dir=runs_dir, console=console)
                prof = profile(replace(base, adapter=result.weights), test, ev, runs_dir, out / "test.json", console,
                               models=models).to_dict()
                bits = "".join("1" if r["correct"] else "0" for r in prof["records"])
                trained_k = sorted({len(json.loads(x)["skills"]) for x in (out / "train.jsonl").read_text().splitlines()})
                res.setdefault("runs", {}).setdefault(key, {})[str(seed)] = {
                    "correct": bits, "overall": prof["overall"]["accuracy"], "trained_k": trained_k,
                    "measures": measures(bits, b_bits, g)}
                console.print(f"seed {seed} k in {{{key}}}: overall {prof['overall']['accuracy']:.1%}; "
                              + ", ".join(f"{n} {m['after']:.0%}" for n, m in res['runs'][key][str(seed)]['measures'].items()))
                res["seconds"] = round(time.perf_counter() - t0, 1)
                write_json(res, a.output_path)
                report(res, a.output_path.with_suffix(".md"), a.bootstrap)


if __name__ == "__main__":
    main()
