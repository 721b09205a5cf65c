"""The `skillgap` command: one module per command group, each command parse -> recipe -> print.

    skillgap run --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --seed 0 --output-path out/
    skillgap profile --model smollm2-135m --suite arith --limit 200 --seed 0 --output-path profile.json
    skillgap train --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --output-path out/
    skillgap compare RUN_A RUN_B
    skillgap runs
    skillgap show RUN_ID

The flags are the config dataclasses' fields (`skillgap.cli.options`). Only the chosen command's module is imported,
so `skillgap --help`, `skillgap runs` and a mistyped option never load torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from skillgap import __version__
from skillgap.errors import SkillgapError

DESCRIPTION = "Find the skills a language model is missing, train exactly those, and prove the gain."
EXAMPLES = """examples:
  skillgap run --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --seed 0 --output-path out/
  skillgap train --model smollm2-135m --data train.jsonl --output-path out/
  skillgap compare out/before.json out/after.json
  skillgap import lm-eval-out/smollm2/samples_arith_2026-12-08T00-10-00.jsonl --filter strict-match --output-path p.json
  skillgap import logs/2026-12-08T00-10-00_arith_Xyz.eval --skills-from labels.jsonl
  skillgap train --model scratch-tiny --suite lego --mixture skill-it --steps 100 --seed 0 --output-path out/
  skillgap label --data gsm8k/test.jsonl --format gsm8k --skills gsm8k_labels.jsonl --output-path labelled.jsonl
  skillgap discover --data train.jsonl --limit 500 --teacher gpt-4o-mini --teacher-base-url URL --output-path skills.yaml
  skillgap diagnose RUN_ID --skills skills.yaml --teacher gpt-4o-mini --teacher-base-url URL --output-path msp.json
  skillgap attribute out/before.json --output-path gaps.json
  skillgap attribute graded.jsonl --mastery 0.6
  skillgap graph --model scratch-tiny --suite lego --pretrain-steps 200 --steps 100 --output-path graph.json
  skillgap profile --model smollm2-135m --suite arith --limit 200 --seed 0 --output-path profile.json
  skillgap profile --model ./my-model-dir --data items.jsonl --batch-size 32 --device cuda
  skillgap profile --model Qwen2.5-7B-Instruct --base-url http://localhost:8000/v1 --suite arith --limit 500
  skillgap skillmix --model M --base-url URL --judge J --judge-base-url URL --skills skills.csv --topics topics.txt --k 1,2,3 --output-path sm.json
  skillgap train --model M --train-data ism_sda_k2_1000.jsonl --strategy skillmix --teacher T --teacher-base-url URL --output-path out/
  skillgap localize --model smollm2-135m --finetuned out/ft --skills add_1digit,mul_facts --sparsity 1e-5,1e-4 --output-path loc/
  skillgap localize --model smollm2-135m --finetuned sst2-ft/adapter --data sst2_train.jsonl --format classification --validation-data sst2_dev.jsonl --test-data sst2_test.jsonl --skills sst2 --output-path loc-sst2/
  skillgap library --model smollm2-135m --suite arith --skills add_multi,mul_1digit --budget 256 --output-path lib/
  skillgap compose --library lib/ --skills add_multi,mul_1digit --combination cat --output-path lib/both
  skillgap compose --library lib/ --skills add_multi,mul_1digit --combination arrow --top-k 1 --output-path lib/router
  skillgap compose --library lib/ --skills add_multi --combination ext-sub --expert joint/ --weights -1 --output-path x/
  skillgap runs
  skillgap show smollm2-135m-arith-s0
"""

# command -> (the module that declares and runs it, its one-line help); a module is imported only when chosen
COMMANDS: dict[str, tuple[str, str]] = {
    "profile": ("skillgap.cli.loop", "measure a model skill by skill"),
    "import": ("skillgap.cli.loop", "read an lm-eval, Inspect or LightEval log into a skill profile, without generating a token"),
    "run": ("skillgap.cli.loop", "the whole loop: profile, target, train, verify, report"),
    "train": ("skillgap.cli.loop", "build a targeted training set and fine-tune on it"),
    "graph": ("skillgap.cli.evals", "estimate a skills graph (Skill-it), or draw a given one"),
    "skillmix": ("skillgap.cli.evals", "Skill-Mix: can the model write one text that shows k skills? (a judge grades)"),
    "localize": ("skillgap.cli.weights", "where a fine-tuned model keeps a skill: grafting masks (Panigrahi et al. "
                                         "2023)"),
    "library": ("skillgap.cli.weights", "one LoRA per skill into a folder with an index (compose and remove them "
                                        "with skillgap compose)"),
    "compose": ("skillgap.cli.weights", "merge or route a library's skill adapters into one adapter folder (PEFT)"),
    "label": ("skillgap.cli.skills", "label a dataset with skills from an inventory (embed or teacher)"),
    "discover": ("skillgap.cli.skills", "name the skills a dataset needs: teacher names, clustered, named again"),
    "diagnose": ("skillgap.cli.skills", "a teacher names the missing skills behind each wrong answer of a run"),
    "attribute": ("skillgap.cli.skills", "which skills a model is missing: every skill's mastery fitted jointly over "
                                         "graded answers (a run, a profile, or records graded anywhere)"),
    "compare": ("skillgap.cli.loop", "two profiles side by side, with the significant differences"),
    "runs": ("skillgap.cli.loop", "list runs in the run store"),
    "show": ("skillgap.cli.loop", "print a run's profile table"),
}
WITH_EXAMPLES = ("profile", "import", "run", "train", "graph", "skillmix", "localize", "library", "compose", "label",
                 "discover", "diagnose", "attribute")


def command(name: str) -> tuple[Any, Any]:
    """(add its flags to a parser, run it on the parsed flags), imported now."""
    return importlib.import_module(COMMANDS[name][0]).COMMANDS[name]


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """Every command, with the flags of `chosen` only: the others' modules (and torch) stay unimported."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="skillgap", description=DESCRIPTION, formatter_class=raw,
                                     epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"skillgap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help) in COMMANDS.items():
        p = sub.add_parser(name, help=help, formatter_class=raw,
                           epilog=EXAMPLES if name in WITH_EXAMPLES else None)
        p.set_defaults(output_path=None, output_is_folder=False)
        if name == chosen:
            command(name)[0](p)
    return parser


def check_output_path(a: argparse.Namespace) -> None:
    """An --output-path that cannot be written is a one-line error before any work, not a traceback at the end."""
    if not a.output_path:
        return
    path = Path(a.output_path)
    if a.output_is_folder and path.exists() and not path.is_dir():
        raise SkillgapError(f"--output-path {a.output_path} is a file; `skillgap {a.command}` writes a folder there: "
                            "give a new or existing folder.")
    if not a.output_is_folder and path.is_dir():
        raise SkillgapError(f"--output-path {a.output_path} is a folder; `skillgap {a.command}` writes a file there: "
                            f"give a file path, e.g. {path / (a.command + '.json')}.")
    blocker = next((q for q in path.parents if q.exists() and not q.is_dir()), None)
    if blocker is not None:
        raise SkillgapError(f"--output-path {a.output_path}: {blocker} is a file, not a folder.")


def main(argv: list[str] | None = None) -> int:
    # A command-line run shows rich progress bars; datasets' per-map bars would bury them.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' shard-writing bars at each checkpoint
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((x for x in argv if not x.startswith("-")), None)
    args = build_parser(chosen if chosen in COMMANDS else None).parse_args(argv)
    try:
        check_output_path(args)
        return command(args.command)[1](args)
    except SkillgapError as e:
        print(f"skillgap: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skillgap: interrupted; finished batches are saved, re-run the same command to resume.",
              file=sys.stderr)
        return 130


def __getattr__(name: str) -> Any:
    """`from skillgap.cli import print_profile, print_comparison`: the tables, imported when asked for."""
    if name in ("print_profile", "print_comparison"):
        return getattr(importlib.import_module("skillgap.cli.tables"), name)
    raise AttributeError(f"module 'skillgap.cli' has no attribute {name!r}")
