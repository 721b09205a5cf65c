"""The commands about weights: localize (where a fine-tune keeps a skill), library (one adapter per skill), compose."""

from __future__ import annotations

import argparse
from pathlib import Path

from skillgap.cli.options import (add_config_args, comma_list, data_args, eval_args, eval_config, from_args,
                                  model_and_data, model_args, model_config, output_args, training_args,
                                  training_config)
from skillgap.cli.tables import console, table
from skillgap.data import DataConfig
from skillgap.errors import SkillgapError
from skillgap.library import Library, compose
from skillgap.localize import GraftConfig
from skillgap.recipes.library import LibraryConfig, library_recipe
from skillgap.recipes.localize import LocalizeConfig, finetuned_models, localize_recipe

LOCALIZE_DATA = ("suite", "data", "format", "fields", "seed")


def localize_parser(p: argparse.ArgumentParser) -> None:
    model_args(p)  # --model: the pre-trained base the masks graft onto
    g = p.add_argument_group("localize", "masks over the decoder blocks, found on each skill's single-skill items")
    g.add_argument("--finetuned", required=True,
                   help="the fine-tuned model: a folder (a full fine-tune of --model), a LoRA adapter folder of "
                        "--model (merged, so its delta is what is localized), or a skill library (`skillgap "
                        "library`): each skill localized in its own adapter")
    add_config_args(g, LocalizeConfig)
    add_config_args(g, GraftConfig)
    add_config_args(g, DataConfig, only=LOCALIZE_DATA, helps={
        "suite": "the suite whose items carry the skills",
        "data": "instead of a suite: a labelled train file (e.g. SST-2's, --format classification; its skill is the "
                "task: sst2)",
        "format": "for --data, --validation-data, --test-data (as profile's)",
        "seed": "items, score initialisation, random baseline"})
    eval_args(p)
    output_args(p, "output directory (localize.json, localize.md, overlap-*.png, masks/)", required=True, folder=True)


def localize_command(a: argparse.Namespace) -> int:
    lc = from_args(a, LocalizeConfig)
    data = from_args(a, DataConfig)
    for flag, value in (("--validation-data", lc.validation_data), ("--test-data", lc.test_data)):
        if value and not data.data:
            raise SkillgapError(f"{flag} goes with --data (the train file); a suite has its own splits.")
    base = model_config(a, data.suite or "arith")
    res = localize_recipe(base, finetuned_models(base, a.finetuned, lc.skills), data, lc,
                          from_args(a, GraftConfig, seed=data.seed), eval_config(a), a.output_path, a.runs_dir,
                          console=console())
    print(Path(a.output_path, "localize.md").read_text())
    print(f"wrote {a.output_path.rstrip('/')}/localize.json, localize.md, overlap-*.png and "
          f"{len(res['skills']) * len(lc.sparsities)} masks")
    return 0


def library_parser(p: argparse.ArgumentParser) -> None:
    model_args(p)
    data_args(p, limit=None, data_help="a labelled JSONL of training items instead of a suite", by_skill=False)
    add_config_args(p.add_argument_group("library"), LibraryConfig)
    training_args(p)
    eval_args(p)
    output_args(p, "the library folder (index.json, one adapter folder per skill)", required=True, folder=True)


def library_command(a: argparse.Namespace) -> int:
    model, data = model_and_data(a)
    lib = library_recipe(model, data, from_args(a, LibraryConfig), training_config(a, data), eval_config(a),
                         a.output_path, a.runs_dir, console=console())
    t = table(f"skill library {a.output_path} on {lib.base}", ("skill", "adapter", "examples", "steps",
                                                                "accuracy on its skill"))
    for x, e in lib.entries.items():
        t.add_row(x, e.adapter, str(e.examples), str(e.steps), "-" if e.accuracy is None else f"{e.accuracy:.1%}")
    console().print(t)
    print(f"wrote {lib.index_path}")
    return 0


def compose_parser(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("composition")
    g.add_argument("--library", required=True, help="a folder `skillgap library` wrote (index.json)")
    g.add_argument("--skills", required=True, metavar="A,B", help="the library's skills to compose, in order")
    g.add_argument("--combination", default="cat",
                   help="cat (default: the exact weighted sum of the deltas), linear, ties, dare_linear, dare_ties, "
                        "svd, magnitude_prune, ... (PEFT's add_weighted_adapter), arrow (per-token routing), or "
                        "ext-sub (remove one skill from --expert, keeping what the two share)")
    g.add_argument("--weights", default=None, metavar="W1,W2",
                   help="one per skill (default: 1 each); a negative weight removes a skill "
                        "(--skills a --weights -1 --combination linear is Zhang et al.'s negation)")
    g.add_argument("--density", type=float, default=None, help="ties, dare_*, magnitude_prune: share of each delta kept")
    g.add_argument("--top-k", type=int, default=1, help="arrow: adapters mixed per token (default: 1)")
    g.add_argument("--expert", default=None, metavar="ADAPTER",
                   help="ext-sub: the adapter to remove the skill from (e.g. one trained on several skills); "
                        "--weights -λ sets the strength (default: -1)")
    output_args(p, "the composed adapter folder: `skillgap profile --adapter` takes it", required=True, folder=True)


def compose_command(a: argparse.Namespace) -> int:
    lib = Library.load(a.library)
    skills = list(comma_list("--skills", a.skills, str, "names", "a,b"))
    weights = list(comma_list("--weights", a.weights, float, "one number per skill", "1,-1")) if a.weights else None
    out = compose(lib, skills, a.output_path, a.combination, weights, a.density, a.top_k, a.expert)
    backend = " --backend hf" if a.combination == "arrow" else ""
    print(f"wrote {out}\nmeasure it: skillgap profile --model {lib.base}{backend} --adapter {out} --output-path P")
    return 0


COMMANDS = {"localize": (localize_parser, localize_command), "library": (library_parser, library_command),
            "compose": (compose_parser, compose_command)}
