"""The loop's commands: profile, import, run, train, compare, runs, show."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from skillgap.cli.options import (add_config_args, data_args, eval_args, eval_config, from_args, model_and_data,
                                  model_args, output_args, runs_dir_arg, teacher, teacher_args, training_args,
                                  training_config)
from skillgap.cli.tables import print_comparison, print_profile, print_runs
from skillgap import __version__
from skillgap.errors import SkillgapError
from skillgap.label import LabelConfig, item_text
from skillgap.logs import LogConfig
from skillgap.profile import build_profile
from skillgap.recipes.logs import import_log
from skillgap.recipes.online import MixConfig, online_recipe
from skillgap.recipes.profile import profile
from skillgap.recipes.run import run
from skillgap.recipes.train import TargetConfig, train_recipe
from skillgap.report import write_report
from skillgap.store import RunStore
from skillgap.suites import SUITES, load_suite
from skillgap.train import process_state
from skillgap.verify import VerifyConfig, compare, verdict_line


def profile_parser(p: argparse.ArgumentParser) -> None:
    model_args(p)
    data_args(p, limit=200)
    eval_args(p)
    output_args(p, "write the profile JSON here", required=False)


def profile_command(a: argparse.Namespace) -> int:
    model, data = model_and_data(a)
    prof = profile(model, data, eval_config(a), runs_dir=a.runs_dir, output_path=a.output_path)
    print_profile(prof.to_dict())
    if a.output_path:
        print(f"wrote {a.output_path}")
    return 0


def import_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("log", metavar="LOG", help="an lm-evaluation-harness samples_<task>_<date>.jsonl (--log_samples), "
                   "an Inspect .eval or .json log, or a LightEval details_<task>_<date>.parquet (--save-details)")
    g = p.add_argument_group("log")
    add_config_args(g, LogConfig)
    s = p.add_argument_group("skills", "where the items' skills come from when the rows carry none (doc.skills, "
                                       "metadata.skills, doc.specific.skills) and no --skills-from is given")
    s.add_argument("--skills", default=None, help="the inventory (YAML, JSON, CSV, or a labelled JSONL): orders the "
                                                  "profile's skills, and is what --labeler picks from")
    s.add_argument("--labeler", default=None, choices=("embed", "teacher"),
                   help="label the log's questions with --skills (embed: offline; teacher: --teacher)")
    add_config_args(s, LabelConfig, only=("max_skills",))
    teacher_args(p)
    output_args(p, "write the profile JSON here", required=False)


def import_command(a: argparse.Namespace) -> int:
    label = from_args(a, LabelConfig, labeler=a.labeler) if a.labeler else None
    prof = import_log(a.log, from_args(a, LogConfig), a.runs_dir, a.output_path, a.skills, label,
                      teacher(a) if a.labeler == "teacher" else None)
    print_profile(prof.to_dict())
    print(f"run {prof.run_id} in {a.runs_dir}: `skillgap compare` it with another import or run of the same items")
    if a.output_path:
        print(f"wrote {a.output_path}")
    return 0


def _target_args(p: argparse.ArgumentParser, steps: str) -> argparse._ArgumentGroup:
    target = p.add_argument_group("target")
    add_config_args(target, TargetConfig)
    m = p.add_argument_group("mixture (online, instead of a fixed --strategy set)")
    add_config_args(m, MixConfig, defaults={"mixture": None}, helps={
        "mixture": f"skill-it | random | stratified | curriculum: re-weight skills while training ({steps})"})
    return target


def _mixture(a: argparse.Namespace, target: TargetConfig) -> MixConfig | None:
    """The online mixture, if --mixture is given: its pool and replay share are the target's flags."""
    if vars(a)["MixConfig.mixture"] is None:
        return None
    return from_args(a, MixConfig, train_data=target.train_data, train_format=target.train_format,
                     train_fields=target.train_fields, replay=target.replay)


def run_parser(p: argparse.ArgumentParser) -> None:
    model_args(p)
    data_args(p, limit=100, limit_help="test items measured before and after training")
    _target_args(p, steps="default: --budget / --train-batch-size")
    teacher_args(p, synthesizes=True)
    training_args(p)
    eval_args(p)
    add_config_args(p.add_argument_group("verify"), VerifyConfig)
    output_args(p, "output directory (report.html, report.json, adapter, ...)", required=True, folder=True)


def run_command(a: argparse.Namespace) -> int:
    model, data = model_and_data(a)
    target = from_args(a, TargetConfig)
    report = run(model, data, target, training_config(a, data), eval_config(a), a.output_path, runs_dir=a.runs_dir,
                 verify=from_args(a, VerifyConfig), teacher=teacher(a), mixture=_mixture(a, target))
    print_comparison(report["before"], report["after"], report["deltas"] | {
        "improved": report["improved"], "regressions": report["regressions"]})
    print(f"wrote {a.output_path.rstrip('/')}/report.html and report.json")
    return 0


def train_parser(p: argparse.ArgumentParser) -> None:
    model_args(p)
    data_args(p, limit=None,
              data_help="a training file: items (prompt/messages + completion), or any --format (classification, ...)")
    _target_args(p, steps="needs --steps").add_argument(
        "--profile", default=None, help="a profile JSON (from `skillgap profile` or `skillgap import`) whose missing "
                                        "skills to target, instead of diagnosing the model first")
    p.add_argument("--export-only", action="store_true", help="write the targeted set (train.jsonl, and sft/ in TRL's "
                   "prompt/completion form with source_id, skills, strategy) and stop before training")
    teacher_args(p, synthesizes=True)
    training_args(p)
    eval_args(p)
    output_args(p, "output directory (adapter, train.jsonl, train_result.json)", required=True, folder=True)


def train_command(a: argparse.Namespace) -> int:
    model, data = model_and_data(a)
    target, tc, ev = from_args(a, TargetConfig), training_config(a, data), eval_config(a)
    mixture = _mixture(a, target)
    if mixture is not None:
        if process_state(model.device).num_processes > 1:
            raise SkillgapError("An online mixture (--mixture) trains in one process: run it without accelerate launch.")
        result, prof = online_recipe(model, data, mixture, tc, ev, a.output_path, runs_dir=a.runs_dir)
        print_profile(prof.to_dict())
        print(f"trained {result.steps} steps ({result.train_tokens} tokens) in {result.seconds:.0f} s; last loss "
              f"{_last_loss(result):.3f}; wrote {a.output_path.rstrip('/')}/mixture.jsonl and profile.json")
        return 0
    if data.data and target.train_data:
        raise SkillgapError("Give --data (a training file) or --train-data (a pool to select from), not both.")
    result = train_recipe(model, data, target, tc, ev, a.output_path, runs_dir=a.runs_dir, profile_path=a.profile,
                          teacher=teacher(a), export_only=a.export_only)
    if result is None:
        print(f"wrote {a.output_path.rstrip('/')}/sft/train.jsonl (datasets.load_dataset, trl sft --dataset_name) "
              "and sft-arrow/ (datasets.load_from_disk)")
        return 0
    if process_state(model.device).is_main_process:  # under accelerate launch, one summary line
        print(f"trained {result.steps} steps on {result.examples_seen} examples ({result.train_tokens} tokens) in "
              f"{result.seconds:.0f} s; last loss {_last_loss(result):.3f}; weights in {result.weights}")
    return 0


def _last_loss(result: Any) -> float:
    return result.log[-1]["loss"] if result.log else float("nan")


def compare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="run id (or unique prefix), or a profile/report JSON file: the baseline")
    p.add_argument("b", help="the same, for the run to compare with it")
    v = p.add_argument_group("verify")
    add_config_args(v, VerifyConfig)
    v.add_argument("--unpaired", action="store_true", help="compare profiles of different items with the unpaired "
                   "two-proportion test (default: paired, and an error unless both cover the same items)")
    output_args(p, "a folder for report.json and report.html of the comparison", required=False, folder=True)


def compare_command(a: argparse.Namespace) -> int:
    cfg = from_args(a, VerifyConfig, paired=not a.unpaired)
    cfg.check()
    before, after = _load_profile(a.a, a.runs_dir), _load_profile(a.b, a.runs_dir)
    verdict = compare(before, after, cfg)
    print_comparison(before, after, verdict)
    if a.output_path:
        html = write_report(comparison_report(before, after, verdict, [a.a, a.b]), a.output_path)
        print(f"wrote {html} and report.json")
    return 0


def comparison_report(before: dict[str, Any], after: dict[str, Any], verdict: dict[str, Any],
                      sources: list[str]) -> dict[str, Any]:
    """Two profiles (runs, imports or files) as the report `skillgap run` writes, without the training parts: the
    baseline's gap list stands as the diagnosis."""
    same = before.get("model") == after.get("model")
    return {"skillgap_version": __version__, "config": {"before": sources[0], "after": sources[1]},
            "model": before.get("model") if same else f"{before.get('model')} -> {after.get('model')}",
            "suite": after.get("data"), "before": before, "after": after, "diagnosis": before,
            "deltas": {k: verdict[k] for k in ("overall", "skills", "by_k", "test", "correction", "alpha")},
            "improved": verdict["improved"], "regressions": verdict["regressions"], "verdict": verdict_line(verdict)}


def _load_profile(ref: str, runs_dir: str) -> dict[str, Any]:
    """A profile from a JSON file (a profile, or a report's `after`) or from the run store."""
    if Path(ref).is_file():
        d = json.loads(Path(ref).read_text())
        return d["after"] if "after" in d and "skills" not in d else d
    store = RunStore(runs_dir)
    try:
        run = store.get(ref)
    finally:
        store.close()
    if not run["profile"]:
        raise SkillgapError(f"run {run['run_id']} is unfinished; re-run its command to complete it first.")
    return json.loads(run["profile"])


def runs_parser(p: argparse.ArgumentParser) -> None:
    runs_dir_arg(p)


def runs_command(a: argparse.Namespace) -> int:
    store = RunStore(a.runs_dir)
    rows = store.runs()
    store.close()
    if not rows:
        print(f"no runs in {a.runs_dir}")
        return 0
    print_runs(rows, [json.loads(r["profile"]).get("overall", {}).get("accuracy") if r["profile"] else None
                      for r in rows])
    return 0


def show_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id or a unique prefix of it")
    p.add_argument("--items", action="store_true", help="also list every item with its output and grade")
    runs_dir_arg(p)


def show_command(a: argparse.Namespace) -> int:
    store = RunStore(a.runs_dir)
    try:
        run = store.get(a.run)
        records = store.records(run["run_id"])
    finally:
        store.close()
    suite = run["data"].removeprefix("suite:").split("/")[0]
    skills = load_suite(suite).skills if run["data"].startswith("suite:") and suite in SUITES else None
    if run["status"] != "done":
        print(f"run {run['run_id']} is unfinished: {len(records)} of {run['n_items']} items graded; "
              "re-run its command to resume.")
    print_profile(build_profile(records, skills, run["run_id"], run["model"], run["data"]).to_dict())
    for r in records if a.items else []:  # the question, not the last turn (a messages item's solution)
        print(f"\n[{r.item.id}] skills={','.join(r.item.skills)} answer={r.item.answer} "
              f"extracted={r.grade.answer} status={r.grade.status} score={r.grade.score}\n"
              f"  prompt: {item_text(r.item)}\n  output: {r.output}")
    return 0


COMMANDS = {"profile": (profile_parser, profile_command), "import": (import_parser, import_command),
            "run": (run_parser, run_command),
            "train": (train_parser, train_command), "compare": (compare_parser, compare_command),
            "runs": (runs_parser, runs_command), "show": (show_parser, show_command)}
