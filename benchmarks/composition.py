"""Can the embedded model learn to compose from k = 2, 3 examples? (Zhao et al., NeurIPS 2024; issue 14)

The paper fine-tunes 7-13B models on Skill-Mix texts of k <= 3 skills and finds that k = 2, 3 data improves
k = 4, 5, combinations of skills never seen together, and held-out skills. Here the same questions on
`arith`, exact answers and no judge:

1. **Regimes** at one budget, from the same base model: training items of k = 1 only, of k <= 2, of k <= 3
   (`--k`), trained with `skillgap train`'s defaults (LoRA, uniform sampling of the restricted stream). In every
   regime no training item composes a held-out pair (`--hold-out-pairs`), and no training item composes a
   held-out skill with any other (`--hold-out-skills`). A held-out skill is still trained alone (k = 1): Zhao et
   al.'s held-out skills were known to the model from pre-training and only never composed in training, and the
   base model here knows no `arith` skill before training.
2. **Measures** on test items of the whole suite (every k, every combination), grouped *within* each k: "seen"
   items compose no held-out pair or skill, "unseen pair" items compose a held-out pair, "unseen skill" items
   compose a held-out skill with others. Comparing seen with unseen items of the same k keeps the question apart
   from how hard k itself is. `--per-group` draws the test items so that each k x group cell has that many
   (`--per-group 0`: the first `--test-limit` items of the test stream, as the first committed run did). Each
   group gets its accuracy, an exact McNemar test against the base model (paired, per seed), the mean over seeds
   with a 95% bootstrap interval over seeds and items, and against k = 1 training a verdict, withheld below
   `MIN_ITEMS` items (see `min_items`).

Resumable: trainings skip when done, profiles live in the work directory's run store, and `--output-path`
is rewritten after every run; a run already in it is skipped (so a new machine, without the work directory,
resumes from the committed results) as long as the base model's graded test items are the same bits. Results
made with other settings are never mixed in or overwritten: the script refuses, naming the settings.
`--report-only` rewrites the markdown from it.

    # the committed first run (it resumes from its results): the first 300 items of the test stream
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/composition.py --seeds 0,1,2 --per-group 0 \\
        --work-dir /var/tmp/skillgap-composition --output-path benchmarks/results/composition.json
    # 63 test items per k x group cell, and held-out skills too (a separate results file)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/composition.py --seeds 0 --hold-out-skills place_value,order_ops \\
        --work-dir /var/tmp/skillgap-composition-skills --output-path benchmarks/results/composition-skills.json

A smoke run (a minute; tests/test_composition_benchmark.py runs it): --model scratch-tiny --backend hf --budget 16
--train-batch-size 4 --per-group 2 --seeds 0 --hold-out-skills place_value --work-dir /tmp/c --output-path /tmp/c/c.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

from rich.console import Console

from skillgap.data import DataConfig, load_items
from skillgap.errors import ConfigError
from skillgap.models import ModelConfig, ModelPool
from skillgap.recipes.profile import EvalConfig, profile
from skillgap.recipes.train import TargetConfig, load_pool, train_recipe
from skillgap.train import TrainConfig
from skillgap.verify import assert_disjoint, paired_delta

from common import (benchmark_parser, bootstrap_mean, fmt_mean, fmt_points, model_name, numbers, option,
                    read_results, settings_of, write_json)

# Pairs that the k <= 2 stream composes often, each skill of which still composes with others.
PAIRS = "add_multi+mul_1digit,percent+fraction_of,sub_borrow+compare,mul_facts+div_remainder"
# Settings added after the first committed run, with the values that run had: its config lacks them.
ADDED = {"hold_out_skills": "", "per_group": "0"}
MAX_POOL = 200_000  # test items searched for --per-group before a cell is declared too rare to fill


def min_items(effect: float = 0.25, alpha: float = 0.05, power: float = 0.8) -> int:
    """Items a group needs before its interval is read as a verdict: the n at which a change of `effect` in
    accuracy is found with `power` by a two-sided test at `alpha`, at the worst-case variance (accuracies at 50%).
    0.25 is about the one lift this benchmark finds (k <= 2 training on k = 2 items, +27 points); with fewer
    items "no change detected" would say little about a change of that size."""
    z = NormalDist().inv_cdf
    return math.ceil((z(1 - alpha / 2) + z(power)) ** 2 * 2 * 0.25 / effect ** 2)


MIN_ITEMS = min_items()  # 63


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = benchmark_parser(__doc__, "skillgap-composition", "composition.json", max_new_tokens=256)
    p.add_argument("--regimes", default="1;1,2;1,2,3", help="the k of each regime's training items, ';' between")
    p.add_argument("--hold-out-pairs", default=PAIRS, help="skill pairs no training item composes")
    p.add_argument("--hold-out-skills", default="", help="skills no training item composes with another (they "
                                                         "are still trained alone)")
    p.add_argument("--budget", type=int, default=512, help="training examples, the same for every regime")
    p.add_argument("--per-group", type=int, default=MIN_ITEMS,
                   help="test items per k x group cell (default: %(default)s, see min_items); 0: the first "
                        "--test-limit items of the test stream")
    p.add_argument("--test-limit", type=int, default=300, help="with --per-group 0: test items")
    p.add_argument("--lr", type=float, default=TrainConfig.learning_rate)
    return p.parse_args(argv)


def held_out(config: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The held-out pairs and skills of a run's config (a config from before --hold-out-skills has none)."""
    pairs = [tuple(p.split("+")) for p in config["hold_out_pairs"].split(",") if p]
    skills = [s for s in config.get("hold_out_skills", "").split(",") if s]
    return pairs, skills  # type: ignore[return-value]


def cell(k: int, skills: Sequence[str], pairs: Sequence[tuple[str, str]], held_skills: Sequence[str]) -> str:
    """The group of one test item: "k=1", or within its k whether it composes a held-out skill, a held-out pair
    or neither ("seen")."""
    if k == 1:
        return "k=1"
    used = set(skills)
    if used & set(held_skills):
        return f"k={k} unseen skill"
    if any(a in used and b in used for a, b in pairs):
        return f"k={k} unseen pair"
    return f"k={k} seen"


def groups(items: list[dict[str, Any]], pairs: Sequence[tuple[str, str]],
           held_skills: Sequence[str] = ()) -> dict[str, list[int]]:
    """Test item indices by k, and the composed ones within their k by `cell`: unseen and seen combinations are
    compared at the same k, never one k against a mixture of others."""
    out: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        out.setdefault(f"k={it['k']}", []).append(i)
        if it["k"] >= 2:
            out.setdefault(cell(it["k"], it["skills"], pairs, held_skills), []).append(i)
    return dict(sorted(out.items()))


def training_data(ks: tuple[int, ...], pairs: list[tuple[str, str]], held_skills: list[str], seed: int) -> DataConfig:
    """A regime's training stream: items of k in `ks` that compose no held-out pair, and no held-out skill with
    any other skill (a held-out skill's k = 1 items stay)."""
    from skillgap.suites.arith import SKILLS

    for s in held_skills:
        if s not in SKILLS.ids:
            from skillgap.errors import unknown_name

            raise unknown_name("--hold-out-skills skill of suite 'arith'", s, list(SKILLS.ids))
    held = {tuple(sorted(p)) for p in pairs}
    held |= {tuple(sorted((s, t))) for s in held_skills for t in SKILLS.ids if t != s}
    return DataConfig(suite="arith", split="train", limit=None, seed=seed, k_values=ks,
                      hold_out_pairs=tuple(sorted(held)))  # type: ignore[arg-type]


def draw_test_items(pairs: list[tuple[str, str]], held_skills: list[str], per_group: int) -> list[Any]:
    """Test items of the whole suite, in stream order, `per_group` in each k x group cell (the first ones of each
    cell in the stream), so that no group is too small for a verdict by construction."""
    from skillgap.suites import load_suite

    suite = load_suite("arith")
    kinds = ["seen"] + ["unseen pair"] * bool(pairs) + ["unseen skill"] * bool(held_skills)
    wanted = ["k=1"] + [f"k={k} {kind}" for k in range(2, suite.max_k + 1) for kind in kinds]
    n = 4 * per_group * len(wanted)
    while True:
        taken: dict[str, int] = {}
        keep = []
        for it in suite.generate("test", n, 0):
            c = cell(it.k, it.skills, pairs, held_skills)
            if taken.get(c, 0) < per_group:
                taken[c] = taken.get(c, 0) + 1
                keep.append(it)
        short = [f"{c} ({taken.get(c, 0)})" for c in wanted if taken.get(c, 0) < per_group]
        if not short:
            return keep
        if n >= MAX_POOL:
            raise ConfigError(f"--per-group {per_group}: the first {n} arith test items fill too few of "
                              f"{', '.join(short)}; ask for fewer, or hold out pairs and skills that compose more.")
        n = min(4 * n, MAX_POOL)


def evaluation_data(a: argparse.Namespace, pairs: list[tuple[str, str]], held_skills: list[str]) -> DataConfig:
    """Where the test items come from: the sampled cells, written to a file named by its content (the run store
    must never take one sample's profile for another's), or the first --test-limit items of the stream."""
    if not a.per_group:
        return DataConfig(suite="arith", split="test", limit=a.test_limit, seed=0)
    text = "".join(json.dumps(it.to_dict()) + "\n" for it in draw_test_items(pairs, held_skills, a.per_group))
    path = a.work_dir / f"test-{hashlib.sha256(text.encode()).hexdigest()[:12]}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return DataConfig(suite=None, data=str(path), format="items", limit=None, seed=0)


def measures(correct: str, base: str, groups_: dict[str, list[int]]) -> dict[str, Any]:
    """Accuracy per group and its paired test against the base model on the same items."""
    out = {}
    for name, idx in groups_.items():
        d = paired_delta([(base[i] == "1", correct[i] == "1") for i in idx])
        out[name] = {k: d[k] for k in ("n", "before", "after", "delta", "gained", "lost", "p_value")}
    return out


def bits(runs: list[str], idx: list[int]) -> list[list[float]]:
    return [[float(r[i] == "1") for i in idx] for r in runs]


def verdict(diff: list[float], n: int) -> str:
    """What one interval of a difference supports: nothing below MIN_ITEMS items, else its sign or none."""
    if n < MIN_ITEMS:
        return f"too few items for a verdict (n = {n} < {MIN_ITEMS})"
    if diff[1] > 0:
        return "lift"
    return "drop" if diff[2] < 0 else "no change detected"


def report(res: dict[str, Any], path: Path, n_boot: int) -> None:
    """The markdown of a results file, computed from its per-item bits alone (so a new grouping regroups old runs)."""
    cfg = res["config"]
    pairs, held_skills = held_out(cfg)
    g = groups(res["items"], pairs, held_skills)
    done = res.get("runs", {})
    runs = {regime: [r["correct"] for r in by_seed.values()] for regime, by_seed in done.items()}
    sample = (f"{cfg.get('per_group', '0')} per k x group cell" if cfg.get("per_group", "0") != "0"
              else "the first of the suite's test stream")
    lines = ["# Learning to compose on `arith` (issue 14)", "",
             f"`{cfg['model']}`, LoRA with `skillgap train`'s defaults, {cfg['budget']} examples per regime. No "
             f"training item composes a held-out pair (`{cfg['hold_out_pairs'] or 'none'}`) or a held-out skill with "
             f"another (`{cfg.get('hold_out_skills') or 'none'}`). {len(res['items'])} test items of the whole suite "
             f"({sample}), shared by every run; {res.get('seconds', 0) / 60:.0f} minutes for the runs of the last "
             "session.", "",
             "Groups: `k=j` is every test item of j skills; within each k >= 2, `seen` items compose no held-out pair "
             "or skill, `unseen pair` items compose a held-out pair, `unseen skill` items a held-out skill with "
             f"others. A group of fewer than {MIN_ITEMS} items gets no verdict: below that, a change of 25 points "
             "(about the one lift found here) is missed more than one time in five (two-sided test at 0.05, power "
             "0.8, worst-case variance). Intervals are 95% bootstrap over seeds and items, per cell (not adjusted "
             "for the table's other cells).", "",
             "Accuracy, mean over seeds [95% interval]:", "",
             "| group | n | base model | " + " | ".join(f"train k in {{{r}}} ({len(b)} seeds)" for r, b in runs.items())
             + " |", "|---|---|---|" + "---|" * len(runs)]
    for name, idx in g.items():
        cells = [bootstrap_mean(bits(b, idx), n_boot) for b in [[res["base"]["correct"]], *runs.values()]]
        lines.append(f"| {name} | {len(idx)} | " + " | ".join(map(fmt_mean, cells)) + " |")
    regimes = list(done)
    if len(regimes) > 1:
        ref, others = regimes[0], regimes[1:]
        lines += ["", f"Against training on k in {{{ref}}} at the same budget (do composed training items help beyond "
                  "single-skill ones?): mean difference in points over the seeds both ran [95% interval], and its "
                  "verdict:", "", "| group | n | " + " | ".join(f"{{{r}}} − {{{ref}}}" for r in others) + " |",
                  "|---|---|" + "---|" * len(others)]
        for name, idx in g.items():
            cells = []
            for regime in others:
                seeds = [s for s in done[regime] if s in done[ref]]
                diff = bootstrap_mean([[x - y for x, y in zip(a_, b_)] for a_, b_ in zip(
                    bits([done[regime][s]["correct"] for s in seeds], idx),
                    bits([done[ref][s]["correct"] for s in seeds], idx))], n_boot)
                cells.append(f"{fmt_points(diff)} {verdict(diff, len(idx))}")
            lines.append(f"| {name} | {len(idx)} | " + " | ".join(cells) + " |")
    columns = [(regime, seed) for regime, by_seed in done.items() for seed in by_seed]
    lines += ["", "Paired against the base model (exact McNemar), per seed: base → trained accuracy "
              "(+gained/−lost, p):", "", "| group | n | " + " | ".join(f"{{{r}}} seed {s}" for r, s in columns) + " |",
              "|---|---|" + "---|" * len(columns)]
    per_run = {c: measures(done[c[0]][c[1]]["correct"], res["base"]["correct"], g) for c in columns}
    for name, idx in g.items():
        lines.append(f"| {name} | {len(idx)} | " + " | ".join(
            f"{m['before']:.0%} → {m['after']:.0%} (+{m['gained']}/−{m['lost']}, p={m['p_value']:.2g})"
            for m in (per_run[c][name] for c in columns)) + " |")
    path.write_text("\n".join(lines) + "\n")


# Options that change what is shown or where, not what a run measures: the others must match the saved runs'.
NOT_SETTINGS = ("seeds", "work_dir", "output_path", "report_only", "bootstrap")


def refuse_other_settings(res: dict[str, Any], config: dict[str, str], path: Path) -> None:
    """Runs measured under other settings are not comparable: never mixed in, never dropped."""
    if not res.get("runs"):
        return
    saved = {**ADDED, **res["config"]}
    other = sorted(k for k in config if k not in NOT_SETTINGS and saved.get(k) != config[k])
    if other:
        raise ConfigError(f"{path} holds runs made with other settings (" + ", ".join(
            f"{option(k)} {saved.get(k)}" for k in other) + "); give another --output-path.")


def correct_bits(prof: dict[str, Any]) -> str:
    return "".join("1" if r["correct"] else "0" for r in prof["records"])


def measure_base(res: dict[str, Any], base: ModelConfig, test: DataConfig, ev: EvalConfig, a: argparse.Namespace,
                 console: Console, models: ModelPool) -> None:
    """The base model on the test items: the items every run is paired on, and the base's grades. Saved runs
    paired against other grades (another machine's floating point) are dropped."""
    bprof = profile(base, test, ev, a.work_dir / "runs", a.work_dir / "base.json", console, models=models).to_dict()
    res["items"] = [{"id": r["id"], "k": r["k"], "skills": r["skills"]} for r in bprof["records"]]
    b_bits = correct_bits(bprof)
    if res.get("base", {}).get("correct", b_bits) != b_bits:
        console.print("the base model grades the test items differently from the saved results: starting afresh")
        res.pop("runs", None)
    res["base"] = {"correct": b_bits, "overall": bprof["overall"]["accuracy"]}


def train_regime(a: argparse.Namespace, base: ModelConfig, ks: tuple[int, ...], seed: int, held: tuple[list, list],
                 test: DataConfig, ev: EvalConfig, console: Console, models: ModelPool) -> dict[str, Any]:
    """One regime trained from the base model at one seed, and measured on the test items."""
    key = ",".join(map(str, ks))
    out = a.work_dir / f"k{''.join(map(str, ks))}" / f"seed{seed}"
    cfg = TrainConfig(method="lora", learning_rate=a.lr, batch_size=a.train_batch_size,
                      max_steps=a.budget // a.train_batch_size, eval_every=0, seed=seed)
    models.close()
    train_data = training_data(ks, *held, seed)
    target = TargetConfig(strategy="uniform", budget=a.budget, pool_size=max(4000, a.budget))
    assert_disjoint(load_pool(train_data, target)[0], load_items(test)[0],
                    f"the k in {{{key}}} training pool", "the test items")
    runs_dir = a.work_dir / "runs"
    result = train_recipe(base, train_data, target, cfg, ev, out, runs_dir=runs_dir, console=console)
    prof = profile(replace(base, adapter=result.weights), test, ev, runs_dir, out / "test.json", console,
                   models=models).to_dict()
    trained_k = sorted({len(json.loads(x)["skills"]) for x in (out / "train.jsonl").read_text().splitlines()})
    return {"correct": correct_bits(prof), "overall": prof["overall"]["accuracy"], "trained_k": trained_k}


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    console = Console(stderr=True)
    if a.report_only:
        report(json.loads(a.output_path.read_text()), a.output_path.with_suffix(".md"), a.bootstrap)
        return
    config = settings_of(a)
    held = held_out(config)
    regimes = [tuple(numbers(r)) for r in a.regimes.split(";")]
    for ks in regimes:  # names and k checked before any item is drawn or any model loads
        training_data(ks, *held, 0).check()
    if a.per_group < 0:
        raise ConfigError(f"--per-group must be 0 or more, got {a.per_group}.")
    base = ModelConfig(model_name(a.model, "arith"), backend=a.backend)
    ev = EvalConfig(max_new_tokens=a.max_new_tokens, grader="numeric")
    res = read_results(a.output_path)
    refuse_other_settings(res, config, a.output_path)
    res["config"] = config
    test = evaluation_data(a, *held)
    t0 = time.perf_counter()
    with ModelPool() as models:
        measure_base(res, base, test, ev, a, console, models)
        g = groups(res["items"], *held)
        for seed in numbers(a.seeds):
            for ks in regimes:
                key = ",".join(map(str, ks))
                if res.get("runs", {}).get(key, {}).get(str(seed)):
                    continue  # measured in an earlier session (the work directory may be gone, the results are not)
                run = train_regime(a, base, ks, seed, held, test, ev, console, models)
                res.setdefault("runs", {}).setdefault(key, {})[str(seed)] = run
                console.print(f"seed {seed} k in {{{key}}}: overall {run['overall']:.1%}; " + ", ".join(
                    f"{n} {m['after']:.0%}" for n, m in measures(run["correct"], res["base"]["correct"], g).items()))
                res["seconds"] = round(time.perf_counter() - t0, 1)
                write_json(res, a.output_path)
                report(res, a.output_path.with_suffix(".md"), a.bootstrap)


if __name__ == "__main__":
    main()
