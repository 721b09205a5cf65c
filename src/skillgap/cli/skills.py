"""The commands that name skills: label, discover, diagnose, attribute."""

from __future__ import annotations

import argparse

from skillgap.cli.options import (add_config_args, data_args, data_config, from_args, output_args, teacher,
                                  teacher_args)
from rich.table import Table

from skillgap.attribution import AttributionConfig
from skillgap.cli.tables import console, print_attribution, print_profile
from skillgap.label import LabelConfig
from skillgap.recipes.diagnose import attribute_recipe, diagnose_recipe
from skillgap.recipes.label import discover_recipe, label_recipe


def label_parser(p: argparse.ArgumentParser) -> None:
    data_args(p, limit=None, limit_help="items to label", by_skill=False,
              data_help="the dataset to label (JSONL, CSV, Parquet, a saved dataset; GSM8K and MATH formats)")
    g = p.add_argument_group("label")
    g.add_argument("--skills", required=True, help="the inventory: YAML, JSON or CSV of skills, or a labelled JSONL "
                                                   "(its skills, and its items as neighbours for --labeler embed)")
    g.add_argument("--examples", default=None, help="embed: a labelled JSONL whose items vote as neighbours "
                                                    "(default: --skills when it is one)")
    add_config_args(g, LabelConfig)
    teacher_args(p)
    output_args(p, "the labelled items (JSONL); the inventory is written beside it", required=True)


def label_command(a: argparse.Namespace) -> int:
    cfg = from_args(a, LabelConfig)
    label_recipe(data_config(a), a.skills, cfg, a.output_path, a.examples,
                 teacher(a) if cfg.labeler == "teacher" else None, console())
    print(f"wrote {a.output_path}")
    return 0


def discover_parser(p: argparse.ArgumentParser) -> None:
    data_args(p, limit=None, limit_help="items to name skills for", data_help="the dataset (any --format)",
              by_skill=False)
    g = p.add_argument_group("discover")
    g.add_argument("--clusters", type=int, default=None,
                   help="coarse skills to form (default: the square root of the number of distinct names)")
    g.add_argument("--distance", type=float, default=None,
                   help="instead of --clusters: merge names closer than this cosine distance")
    g.add_argument("--per-item", type=int, default=3, help="fine-grained names the teacher gives per item (default: 3)")
    teacher_args(p)
    output_args(p, "the inventory (YAML); the items labelled with it go beside it (.items.jsonl)", required=True)


def discover_command(a: argparse.Namespace) -> int:
    found = discover_recipe(data_config(a), teacher(a), a.output_path, a.clusters, a.distance, a.per_item, console())
    t = Table(title="discovered skills", title_justify="left")
    for col in ("id", "name", "members"):
        t.add_column(col)
    for s in found.inventory:
        t.add_row(s.id, s.name, ", ".join(found.members[s.id][:6]))
    console().print(t)
    print(f"wrote {a.output_path}")
    return 0


def diagnose_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a profile run id (or unique prefix), from `skillgap profile` or `skillgap runs`")
    p.add_argument("--skills", default=None, help="the inventory to choose from (default: the suite's, else the "
                                                  "<data>.skills.yaml beside the run's data file, else the skills "
                                                  "its items carry)")
    p.add_argument("--diagnose-with-reference", action="store_true",
                   help="also show the teacher the gold answer (default: the question and the model's solution "
                        "only, as STAT and AdaptMI diagnose)")
    teacher_args(p)
    output_args(p, "the profile JSON with the teacher's missing-skill profile (for `skillgap train --profile`)",
                required=True)


def diagnose_command(a: argparse.Namespace) -> int:
    prof = diagnose_recipe(a.run, teacher(a), a.output_path, a.runs_dir, a.skills, console(),
                           with_reference=a.diagnose_with_reference)
    print_profile(prof)
    print(f"wrote {a.output_path}")
    return 0


def attribute_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="RUN|PROFILE|RECORDS",
                   help="graded answers: a run id from the store, a profile JSON (or a `skillgap run` folder: its "
                        "before.json), or a JSONL of {\"id\", \"skills\", \"correct\"} rows graded anywhere "
                        "(correct null: no gradable answer; optional \"chance\": the rate of guessing right)")
    add_config_args(p.add_argument_group("attribution"), AttributionConfig)
    output_args(p, "the mastery of every skill, the gaps and the model check, as JSON", required=False)


def attribute_command(a: argparse.Namespace) -> int:
    res = attribute_recipe(a.source, from_args(a, AttributionConfig), a.runs_dir, a.output_path)
    print_attribution(res)
    if a.output_path:
        print(f"wrote {a.output_path}")
    return 0


COMMANDS = {"label": (label_parser, label_command), "discover": (discover_parser, discover_command),
            "diagnose": (diagnose_parser, diagnose_command), "attribute": (attribute_parser, attribute_command)}
