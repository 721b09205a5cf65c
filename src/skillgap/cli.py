"""The `skillgap` command. Subcommands map one-to-one onto recipes; flags are grouped by concern.

    skillgap profile --model smollm2-135m --suite arith --limit 200 --seed 0 --output-path profile.json
    skillgap runs
    skillgap show RUN_ID
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from skillgap import __version__
from skillgap.errors import SkillgapError

EXAMPLES = """examples:
  skillgap profile --model smollm2-135m --suite arith --limit 200 --seed 0 --output-path profile.json
  skillgap profile --model ./my-model-dir --data items.jsonl --batch-size 32 --device cuda
  skillgap profile --model Qwen2.5-7B-Instruct --base-url http://localhost:8000/v1 --suite arith --limit 500
  skillgap runs
  skillgap show smollm2-135m-arith-s0
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default=os.environ.get("SKILLGAP_RUNS", "runs"),
                   help="where the run store (skillgap.db) lives (default: ./runs or $SKILLGAP_RUNS)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skillgap", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"skillgap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="measure a model skill by skill", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    m = p.add_argument_group("model")
    m.add_argument("--model", default="smollm2-135m",
                   help="alias (smollm2-135m), model folder, .gguf file, or served model name (default: smollm2-135m)")
    m.add_argument("--backend", choices=["hf", "openai"], default=None,
                   help="default: openai when --base-url is given, else hf")
    m.add_argument("--device", default="auto", help="hf: auto | cpu | cuda | cuda:N | mps (default: auto)")
    m.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    m.add_argument("--base-url", default=None, help="openai: endpoint, e.g. http://localhost:8000/v1")
    m.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight (default: 8)")
    d = p.add_argument_group("data")
    d.add_argument("--suite", default=None, help="built-in procedural suite (default: arith)")
    d.add_argument("--data", default=None, help="a JSONL file of items instead of a suite")
    d.add_argument("--limit", type=int, default=200, help="number of items (default: 200)")
    d.add_argument("--seed", type=int, default=0, help="suite seed (default: 0)")
    e = p.add_argument_group("eval")
    e.add_argument("--batch-size", type=int, default=16, help="chats per generation batch (default: 16)")
    e.add_argument("--max-new-tokens", type=int, default=128, help="generation budget per item (default: 128)")
    e.add_argument("--grader", default=None, help="numeric | exact | regex:<pattern> | module:function")
    o = p.add_argument_group("output")
    o.add_argument("--output-path", default=None, help="write the profile JSON here")
    _add_common(o)

    p = sub.add_parser("runs", help="list runs in the run store")
    _add_common(p)
    p = sub.add_parser("show", help="print a run's profile table")
    p.add_argument("run", help="run id or a unique prefix of it")
    p.add_argument("--items", action="store_true", help="also list every item with its output and grade")
    _add_common(p)
    return parser


def cmd_profile(a: argparse.Namespace) -> int:
    from skillgap.data import DataConfig
    from skillgap.models import ModelConfig
    from skillgap.recipes.profile import EvalConfig, profile

    if a.suite and a.data:
        raise SkillgapError("Give --suite or --data, not both.")
    model = ModelConfig(model=a.model, backend=a.backend, device=a.device, dtype=a.dtype, base_url=a.base_url,
                        concurrency=a.concurrency)
    data = DataConfig(suite=None if a.data else (a.suite or "arith"), data=a.data, limit=a.limit, seed=a.seed)
    ev = EvalConfig(batch_size=a.batch_size, max_new_tokens=a.max_new_tokens, grader=a.grader)
    prof = profile(model, data, ev, runs_dir=a.runs_dir, output_path=a.output_path)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"profile": cmd_profile, "runs": cmd_runs, "show": cmd_show}[args.command](args)
    except SkillgapError as e:
        print(f"skillgap: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skillgap: interrupted; finished batches are saved, re-run the same command to resume.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
