"""The `skillgap` command. Subcommands map one-to-one onto recipes; flags are grouped by concern.

    skillgap run --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --seed 0 --output-path out/
    skillgap profile --model smollm2-135m --suite arith --limit 200 --seed 0 --output-path profile.json
    skillgap train --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --output-path out/
    skillgap compare RUN_A RUN_B
    skillgap runs
    skillgap show RUN_ID
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from typing import Any

from skillgap import __version__
from skillgap.errors import SkillgapError

EXAMPLES = """examples:
  skillgap run --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --seed 0 --output-path out/
  skillgap train --model smollm2-135m --data train.jsonl --output-path out/
  skillgap compare out/before.json out/after.json
  skillgap train --model scratch-tiny --suite lego --mixture skill-it --steps 100 --seed 0 --output-path out/
  skillgap graph --model scratch-tiny --suite lego --pretrain-steps 200 --steps 100 --output-path graph.json
  skillgap profile --model smollm2-135m --suite arith --limit 200 --seed 0 --output-path profile.json
  skillgap profile --model ./my-model-dir --data items.jsonl --batch-size 32 --device cuda
  skillgap profile --model Qwen2.5-7B-Instruct --base-url http://localhost:8000/v1 --suite arith --limit 500
  skillgap runs
  skillgap show smollm2-135m-arith-s0
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default=os.environ.get("SKILLGAP_RUNS", "runs"),
                   help="where the run store (skillgap.db) lives (default: ./runs or $SKILLGAP_RUNS)")


def _output_args(p: argparse.ArgumentParser, help: str, required: bool) -> None:
    o = p.add_argument_group("output")
    o.add_argument("--output-path", default=None, required=required, help=help)
    _add_common(o)


def _model_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--model", default="smollm2-135m",
                   help="alias (smollm2-135m), model folder, .gguf file, or served model name (default: smollm2-135m)")
    m.add_argument("--backend", choices=["hf", "openai"], default=None,
                   help="default: openai when --base-url is given, else hf")
    m.add_argument("--adapter", default=None, help="hf: a LoRA adapter folder to apply (e.g. out/adapter)")
    m.add_argument("--device", default="auto", help="hf: auto | cpu | cuda | cuda:N | mps (default: auto)")
    m.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    m.add_argument("--base-url", default=None, help="openai: endpoint, e.g. http://localhost:8000/v1")
    m.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight (default: 8)")


def _data_args(p: argparse.ArgumentParser, limit: int | None, limit_help: str = "number of items",
               data_help: str = "a JSONL file of items instead of a suite") -> None:
    d = p.add_argument_group("data")
    d.add_argument("--suite", default=None, help="built-in procedural suite (default: arith)")
    d.add_argument("--data", default=None, help=data_help)
    d.add_argument("--format", default="auto", help="for --data: auto | items | gsm8k | math | table (CSV, Parquet, "
                                                    "a saved `datasets` folder) (default: auto, from the first record)")
    d.add_argument("--field", action="append", default=None, metavar="TARGET=COLUMN",
                   help="for --data: map a column to an item field (prompt, answer, skills, id, completion); repeatable")
    d.add_argument("--limit", type=int, default=limit, help=f"{limit_help} (default: {limit or 'all'})")
    d.add_argument("--seed", type=int, default=0, help="seed for the suite, selection and training (default: 0)")


def _eval_args(p: argparse.ArgumentParser) -> None:
    e = p.add_argument_group("eval")
    e.add_argument("--batch-size", type=int, default=16, help="chats per generation batch (default: 16)")
    e.add_argument("--max-new-tokens", type=int, default=128, help="generation budget per item (default: 128)")
    e.add_argument("--grader", default=None, help="numeric | exact | regex:<pattern> | module:function")


def _target_args(p: argparse.ArgumentParser) -> None:
    from skillgap.recipes.train import TargetConfig

    d = TargetConfig()
    t = p.add_argument_group("target")
    t.add_argument("--strategy", default=d.strategy, help="uniform | stat-sel | stat-syn | curriculum "
                                                          f"(default: {d.strategy})")
    t.add_argument("--budget", type=int, default=d.budget, help=f"training examples (default: {d.budget})")
    t.add_argument("--diagnose-limit", type=int, default=d.diagnose_limit,
                   help=f"pool items the base model is diagnosed on (default: {d.diagnose_limit})")
    t.add_argument("--pool-size", type=int, default=d.pool_size,
                   help=f"suite items generated to select from (default: {d.pool_size})")
    t.add_argument("--train-data", default=None, help="a JSONL pool of training items instead of the suite's")


def _mixture_args(p: argparse.ArgumentParser) -> None:
    from skillgap.recipes.online import MixConfig

    d = MixConfig()
    m = p.add_argument_group("mixture (online, instead of a fixed --strategy set)")
    m.add_argument("--mixture", default=None, help="skill-it | random | stratified | curriculum: re-weight skills "
                                                    "while training (needs --steps)")
    m.add_argument("--graph", default=None, help="skills graph: a JSON file from `skillgap graph`, or rows such as "
                                                  "'100/110/001' (default: the suite's, else its prerequisites)")
    m.add_argument("--eta", type=float, default=None, help="Skill-it learning rate (default: the suite's, else 0.5)")
    m.add_argument("--window", type=int, default=d.window, help=f"evaluations per update (default: {d.window})")
    m.add_argument("--round-steps", type=int, default=None,
                   help="steps per round T, a multiple of --eval-every (default: a sixth of --steps)")
    m.add_argument("--val-per-skill", type=int, default=d.val_per_skill,
                   help=f"validation items per skill for the per-skill loss (default: {d.val_per_skill})")


def _train_args(p: argparse.ArgumentParser) -> None:
    from skillgap.train import TrainConfig

    d = TrainConfig()
    t = p.add_argument_group("train")
    t.add_argument("--method", default="auto", choices=["auto", "lora", "full"],
                   help="auto: full for a from-scratch model (scratch-tiny), else lora (default: auto)")
    t.add_argument("--precision", default=d.precision, choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 mixed precision where the CPU or GPU has bf16 units (default: auto)")
    t.add_argument("--learning-rate", type=float, default=None,
                   help=f"(default: {d.learning_rate} for lora, 3e-4 for a from-scratch model, 2e-5 for full "
                        "fine-tuning of a pretrained one)")
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"(default: {d.epochs})")
    t.add_argument("--max-steps", "--steps", type=int, default=d.max_steps, help="> 0 overrides --epochs")
    t.add_argument("--train-batch-size", type=int, default=d.batch_size, help=f"(default: {d.batch_size})")
    t.add_argument("--grad-accum", type=int, default=d.grad_accum, help=f"(default: {d.grad_accum})")
    t.add_argument("--lora-r", type=int, default=d.lora_r, help=f"(default: {d.lora_r})")
    t.add_argument("--lora-alpha", type=int, default=d.lora_alpha, help=f"(default: {d.lora_alpha})")
    t.add_argument("--max-length", type=int, default=d.max_length, help=f"tokens per record (default: {d.max_length})")
    t.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help=f"(default: {d.warmup_steps})")
    t.add_argument("--eval-every", type=int, default=d.eval_every,
                   help=f"steps between per-skill validation losses (default: {d.eval_every})")
    t.add_argument("--save-every", type=int, default=d.save_every,
                   help=f"steps between checkpoints (default: {d.save_every})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skillgap", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"skillgap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="measure a model skill by skill", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    _data_args(p, limit=200)
    _eval_args(p)
    _output_args(p, "write the profile JSON here", required=False)

    p = sub.add_parser("run", help="the whole loop: profile, target, train, verify, report", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    _data_args(p, limit=100, limit_help="test items measured before and after training")
    _target_args(p)
    _train_args(p)
    _eval_args(p)
    _output_args(p, "output directory (report.html, report.json, adapter, ...)", required=True)

    p = sub.add_parser("train", help="build a targeted training set and fine-tune on it", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    _data_args(p, limit=None, data_help="a JSONL file of training items (prompt/messages + completion)")
    _target_args(p)
    p.add_argument_group("target").add_argument(
        "--profile", default=None, help="a profile JSON (from `skillgap profile`) whose missing skills to target, "
                                        "instead of diagnosing the model first")
    _mixture_args(p)
    _train_args(p)
    _eval_args(p)
    _output_args(p, "output directory (adapter, train.jsonl, train_result.json)", required=True)

    p = sub.add_parser("graph", help="estimate a skills graph (Skill-it), or draw a given one", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    _data_args(p, limit=None)
    g = p.add_argument_group("graph", "to estimate: --steps (default 50) of training on each skill alone")
    g.add_argument("--graph", default=None, help="rows such as '100/110/001' or a graph JSON: write and draw it "
                                                 "instead of estimating one")
    g.add_argument("--pretrain-steps", type=int, default=0,
                   help="steps on all skills (stratified) first; each skill's run starts from there, so a "
                        "from-scratch model learns the answer format before the graph is measured (default: 0)")
    g.add_argument("--val-per-skill", type=int, default=100, help="validation items per skill (default: 100)")
    _train_args(p)
    _output_args(p, "the graph JSON; the heat-map goes beside it (.png)", required=True)

    p = sub.add_parser("compare", help="two profiles side by side, with the significant differences")
    p.add_argument("a", help="run id (or unique prefix), or a profile/report JSON file: the baseline")
    p.add_argument("b", help="the same, for the run to compare with it")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level, Holm-corrected over skills")
    _add_common(p)

    p = sub.add_parser("runs", help="list runs in the run store")
    _add_common(p)
    p = sub.add_parser("show", help="print a run's profile table")
    p.add_argument("run", help="run id or a unique prefix of it")
    p.add_argument("--items", action="store_true", help="also list every item with its output and grade")
    _add_common(p)
    return parser


def _configs(a: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags as the recipes' config dataclasses, one per concern."""
    from skillgap.data import DataConfig
    from skillgap.formats import parse_fields
    from skillgap.models import ModelConfig
    from skillgap.models.scratch import is_scratch, scratch_model
    from skillgap.recipes.profile import EvalConfig

    if a.suite and a.data:
        raise SkillgapError("Give --suite or --data, not both.")
    name = a.model
    if is_scratch(a.model):  # a from-scratch model takes its vocabulary from the suite
        if a.data:
            raise SkillgapError(f"--model {a.model} builds its vocabulary from a suite; give --suite, not --data.")
        name = str(scratch_model(a.model, a.suite or "arith"))
    out: dict[str, Any] = {
        "model": ModelConfig(model=name, backend=a.backend, device=a.device, dtype=a.dtype, base_url=a.base_url,
                             concurrency=a.concurrency, adapter=a.adapter),
        "data": DataConfig(suite=None if a.data else (a.suite or "arith"), data=a.data, limit=a.limit, seed=a.seed,
                           format=a.format, fields=tuple(parse_fields(a.field).items())),
    }
    if hasattr(a, "batch_size"):
        out["ev"] = EvalConfig(batch_size=a.batch_size, max_new_tokens=a.max_new_tokens, grader=a.grader)
    if hasattr(a, "strategy"):
        from skillgap.recipes.train import TargetConfig

        out["target"] = TargetConfig(strategy=a.strategy, budget=a.budget, diagnose_limit=a.diagnose_limit,
                                     pool_size=a.pool_size, train_data=a.train_data)
    if hasattr(a, "method"):
        from skillgap.train import TrainConfig

        method = a.method if a.method != "auto" else "full" if is_scratch(a.model) else "lora"
        lr = a.learning_rate or (TrainConfig.learning_rate if method == "lora" else 3e-4 if is_scratch(a.model) else 2e-5)
        # a from-scratch model is tiny: bf16 buys no speed there, only rounding in every update
        precision = "fp32" if a.precision == "auto" and is_scratch(a.model) else a.precision
        out["train"] = TrainConfig(method=method, precision=precision, learning_rate=lr, epochs=a.epochs,
                                   max_steps=a.max_steps, batch_size=a.train_batch_size, grad_accum=a.grad_accum,
                                   lora_r=a.lora_r, lora_alpha=a.lora_alpha, max_length=a.max_length,
                                   warmup_steps=a.warmup_steps, eval_every=a.eval_every, save_every=a.save_every,
                                   seed=a.seed)
    if getattr(a, "mixture", None):
        from skillgap.recipes.online import MixConfig

        out["mixture"] = MixConfig(mixture=a.mixture, graph=a.graph, eta=a.eta, window=a.window,
                                   round_steps=a.round_steps, val_per_skill=a.val_per_skill, train_data=a.train_data)
    return out


def cmd_profile(a: argparse.Namespace) -> int:
    from skillgap.recipes.profile import profile

    c = _configs(a)
    prof = profile(c["model"], c["data"], c["ev"], runs_dir=a.runs_dir, output_path=a.output_path)
    print_profile(prof.to_dict())
    if a.output_path:
        print(f"wrote {a.output_path}")
    return 0


def print_profile(p: dict[str, Any]) -> None:
    from rich.table import Table

    def pct(x: float) -> str:
        return f"{100 * x:5.1f}"

    t = Table(title=f"run {p['run_id']}", caption=f"{p['model']} on {p['data']}", title_justify="left")
    for col in ("skill", "n", "acc %", "95% CI", "alone %", "missing", "unparsed"):
        t.add_column(col, justify="left" if col == "skill" else "right", no_wrap=True)
    for s in sorted(p["skills"], key=lambda s: s["accuracy"]):
        alone = s.get("alone", {})
        t.add_row(s["id"], str(s["n"]), pct(s["accuracy"]), f"{pct(s['ci_low'])}-{pct(s['ci_high']).strip()}",
                  f"{pct(alone['accuracy'])} ({alone['n']})" if alone.get("n") else "-",
                  str(p["missing"].get(s["id"], 0)), str(s["unparsed"]))
    o = p["overall"]
    t.add_section()
    t.add_row("overall", str(o["n"]), pct(o["accuracy"]),
              f"{pct(o['ci_low'])}-{pct(o['ci_high']).strip()}", "", str(sum(p["missing"].values())),
              str(o["unparsed"]))
    k = Table(title="accuracy by number of composed skills (k)", title_justify="left")
    for col in ("k", "n", "acc %", "95% CI", "unparsed"):
        k.add_column(col, justify="right")
    for r in p["by_k"]:
        k.add_row(str(r["k"]), str(r["n"]), pct(r["accuracy"]), f"{pct(r['ci_low'])}-{pct(r['ci_high']).strip()}",
                  str(r["unparsed"]))
    console = _console()
    console.print(t)
    console.print(k)


def _console() -> Any:
    """A console at least 120 columns wide, so tables stay readable when piped to a file."""
    from rich.console import Console

    return Console(width=max(120, Console().width))


def cmd_run(a: argparse.Namespace) -> int:
    from skillgap.recipes.run import run

    c = _configs(a)
    if c["data"].data and not a.train_data:
        raise SkillgapError("With --data (the test items), also give --train-data (the pool to train from).")
    report = run(c["model"], c["data"], c["target"], c["train"], c["ev"], a.output_path, runs_dir=a.runs_dir)
    print_comparison(report["before"], report["after"], report["deltas"] | {
        "improved": report["improved"], "regressions": report["regressions"]})
    print(f"wrote {a.output_path.rstrip('/')}/report.html and report.json")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from skillgap.recipes.train import train_recipe

    c = _configs(a)
    if a.mixture:
        from skillgap.recipes.online import online_recipe

        if a.limit is None:
            c["data"] = replace(c["data"], limit=500)  # test items profiled after training
        result, prof = online_recipe(c["model"], c["data"], c["mixture"], c["train"], c["ev"], a.output_path,
                                     runs_dir=a.runs_dir)
        print_profile(prof.to_dict())
        last = result.log[-1]["loss"] if result.log else float("nan")
        print(f"trained {result.steps} steps ({result.train_tokens} tokens) in {result.seconds:.0f} s; last loss "
              f"{last:.3f}; wrote {a.output_path.rstrip('/')}/mixture.jsonl and profile.json")
        return 0
    if a.data and a.train_data:
        raise SkillgapError("Give --data (a training file) or --train-data (a pool to select from), not both.")
    result = train_recipe(c["model"], c["data"], c["target"], c["train"], c["ev"], a.output_path,
                          runs_dir=a.runs_dir, profile_path=a.profile)
    last = result.log[-1]["loss"] if result.log else float("nan")
    print(f"trained {result.steps} steps on {result.examples_seen} examples ({result.train_tokens} tokens) in "
          f"{result.seconds:.0f} s; last loss {last:.3f}; weights in {result.weights}")
    return 0


def _load_profile(ref: str, runs_dir: str) -> dict[str, Any]:
    """A profile from a JSON file (a profile, or a report's `after`) or from the run store."""
    from pathlib import Path

    if Path(ref).is_file():
        d = json.loads(Path(ref).read_text())
        return d["after"] if "after" in d and "skills" not in d else d
    from skillgap.store import RunStore

    store = RunStore(runs_dir)
    try:
        run = store.get(ref)
    finally:
        store.close()
    if not run["profile"]:
        raise SkillgapError(f"run {run['run_id']} is unfinished; re-run its command to complete it first.")
    return json.loads(run["profile"])


def cmd_compare(a: argparse.Namespace) -> int:
    from skillgap.verify import compare

    before, after = _load_profile(a.a, a.runs_dir), _load_profile(a.b, a.runs_dir)
    print_comparison(before, after, compare(before, after, alpha=a.alpha))
    return 0


def print_comparison(before: dict[str, Any], after: dict[str, Any], verdict: dict[str, Any]) -> None:
    from rich.table import Table

    def pct(x: float) -> str:
        return f"{100 * x:5.1f}"

    def row(d: dict[str, Any]) -> list[str]:
        style = {"improved": "green", "regression": "bold red"}.get(d["flag"], "")
        flag = f"[{style}]{d['flag']}[/{style}]" if style else ""
        return [f"{pct(d['before'])} ({d['n_before']})", f"{pct(d['after'])} ({d['n_after']})",
                f"{100 * d['delta']:+.1f}", f"{100 * d['delta_ci_low']:+.1f} to {100 * d['delta_ci_high']:+.1f}",
                f"{d['p_value']:.3f}", flag]

    cols = ("acc % before (n)", "acc % after (n)", "delta pp", "95% CI of delta", "p", "")
    t = Table(title=f"{before.get('run_id', 'A')} -> {after.get('run_id', 'B')}", title_justify="left",
              caption="flags: significant at 0.05, Holm-corrected over skills")
    t.add_column("skill", no_wrap=True)
    for c in cols:
        t.add_column(c, justify="right", no_wrap=True)
    for d in sorted(verdict["skills"], key=lambda d: d["delta"]):
        t.add_row(d["id"], *row(d))
    t.add_section()
    t.add_row("overall", *row(verdict["overall"]))
    k = Table(title="by number of composed skills (k)", title_justify="left")
    k.add_column("k")
    for c in cols:
        k.add_column(c, justify="right", no_wrap=True)
    for d in verdict["by_k"]:
        k.add_row(str(d["k"]), *row(d))
    console = _console()
    console.print(t)
    console.print(k)
    console.print(f"improved: {', '.join(verdict['improved']) or 'none'}; "
                  f"regressions: {', '.join(verdict['regressions']) or 'none'}")


def cmd_runs(a: argparse.Namespace) -> int:
    from rich.table import Table

    from skillgap.store import RunStore

    store = RunStore(a.runs_dir)
    rows = store.runs()
    store.close()
    if not rows:
        print(f"no runs in {a.runs_dir}")
        return 0
    t = Table()
    for col in ("run", "kind", "status", "items", "accuracy", "model", "data", "updated"):
        t.add_column(col, no_wrap=col in ("run", "status", "items"))
    for r in rows:
        acc = json.loads(r["profile"])["overall"]["accuracy"] if r["profile"] else None
        t.add_row(r["run_id"], r["kind"], r["status"], f"{r['n_done']}/{r['n_items']}",
                  "-" if acc is None else f"{100 * acc:.1f}%", r["model"], r["data"], r["updated"])
    _console().print(t)
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    from skillgap.profile import build_profile
    from skillgap.store import RunStore
    from skillgap.suites import SUITES, load_suite

    store = RunStore(a.runs_dir)
    try:
        run = store.get(a.run)
        records = store.records(run["run_id"])
    finally:
        store.close()
    suite = run["data"].removeprefix("suite:").split("/")[0]
    skills = load_suite(suite).skills if run["data"].startswith("suite:") and suite in SUITES else None
    prof = build_profile(records, skills, run["run_id"], run["model"], run["data"]).to_dict()
    if run["status"] != "done":
        print(f"run {run['run_id']} is unfinished: {len(records)} of {run['n_items']} items graded; "
              "re-run its command to resume.")
    print_profile(prof)
    if a.items:
        for r in records:
            print(f"\n[{r.item.id}] skills={','.join(r.item.skills)} answer={r.item.answer} "
                  f"extracted={r.grade.answer} status={r.grade.status} score={r.grade.score}\n"
                  f"  prompt: {r.item.chat()[-1]['content']}\n  output: {r.output}")
    return 0


def cmd_graph(a: argparse.Namespace) -> int:
    from skillgap.recipes.graph import graph_recipe

    c = _configs(a)
    tc = c["train"] if a.max_steps > 0 else replace(c["train"], max_steps=50)
    graph, png = graph_recipe(c["model"], c["data"], tc, a.output_path, given=a.graph,
                              pretrain_steps=a.pretrain_steps, val_per_skill=a.val_per_skill, runs_dir=a.runs_dir)
    from rich.table import Table

    t = Table(title=f"skills graph ({graph.source}): row i = trained skill, column j = evaluated skill",
              title_justify="left")
    t.add_column("")
    for s in graph.skills:
        t.add_column(s, justify="right")
    for s, row in zip(graph.skills, graph.matrix):
        t.add_row(s, *(f"{x:.2f}" for x in row))
    _console().print(t)
    print(f"wrote {a.output_path} and {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    # A command-line run shows rich progress bars; datasets' per-map bars would bury them.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' shard-writing bars at each checkpoint
    args = build_parser().parse_args(argv)
    try:
        commands = {"profile": cmd_profile, "run": cmd_run, "train": cmd_train, "graph": cmd_graph,
                    "compare": cmd_compare, "runs": cmd_runs, "show": cmd_show}
        return commands[args.command](args)
    except SkillgapError as e:
        print(f"skillgap: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skillgap: interrupted; finished batches are saved, re-run the same command to resume.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
