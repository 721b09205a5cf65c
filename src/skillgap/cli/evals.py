"""The evaluations beside the loop: skillmix (can a model combine k skills in one text?) and graph (Skill-it)."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields

from skillgap.cli.options import (add_config_args, data_args, from_args, model_and_data, model_args, model_config,
                                  output_args, training_args, training_config)
from skillgap.cli.tables import console, mean_ci, table
from skillgap.models import ModelConfig
from skillgap.recipes.graph import STEPS, graph_recipe
from skillgap.recipes.online import MixConfig
from skillgap.recipes.skillmix import SkillMixConfig, skillmix
from skillgap.teacher import Cache

JUDGE_FLAGS = ("judge_max_new_tokens", "judge_retries", "judge_format")


def skillmix_parser(p: argparse.ArgumentParser) -> None:
    model_args(p)
    g = p.add_argument_group("skillmix", "draws of k skills and a topic; the paper: 3 rounds x 3 grading runs")
    add_config_args(g, SkillMixConfig, only=tuple(f.name for f in fields(SkillMixConfig) if f.name not in JUDGE_FLAGS))
    j = p.add_argument_group("judge", "grades each text on the k + 3 rubric; a capable judge is needed for meaningful "
                                      "grades; every call is cached on disk ($SKILLGAP_CACHE/teacher.db)")
    add_config_args(j, ModelConfig, prefix="judge", only=("model", "base_url", "backend"), required=("model",),
                    helps={"model": "alias, model folder, .gguf, or the served name with --judge-base-url",
                           "base_url": "the judge's OpenAI-compatible endpoint", "backend": ""})
    add_config_args(j, SkillMixConfig, only=JUDGE_FLAGS)
    j.add_argument("--cache", default=None, help="the reply cache, an SQLite file (default: $SKILLGAP_CACHE/teacher.db)")
    output_args(p, "the results JSON; the HTML page goes beside it (.html)", required=True)


def skillmix_command(a: argparse.Namespace) -> int:
    res = skillmix(model_config(a), from_args(a, ModelConfig, "judge"), from_args(a, SkillMixConfig), a.output_path,
                   a.runs_dir, cache=Cache(a.cache) if a.cache else None, console=console())
    t = table(f"Skill-Mix {res['run_id']}: {res['student']} graded by {res['judge']}",
              ("k", "draws", "graded", "judge errors", "full marks", "all skills", "skill fraction"),
              "% of graded texts, 95% CI; a judge reply that does not parse is a judge error, not a 0")
    for r in res["by_k"]:
        t.add_row(str(r["k"]), str(r["n"]), str(r["graded"]), str(r["judge_errors"]),
                  *(mean_ci(r[m]) for m in ("full_marks", "all_skills", "skill_fraction")))
    console().print(t)
    print(f"wrote {a.output_path} and {os.path.splitext(a.output_path)[0]}.html")
    return 0


def graph_parser(p: argparse.ArgumentParser) -> None:
    model_args(p)
    data_args(p, limit=None)
    g = p.add_argument_group("graph", f"to estimate: --steps (default {STEPS}) of training on each skill alone")
    add_config_args(g, MixConfig, only=("graph", "val_per_skill"), helps={
        "graph": "rows such as '100/110/001' or a graph JSON: write and draw it instead of estimating one",
        "val_per_skill": "validation items per skill"})
    g.add_argument("--pretrain-steps", type=int, default=0,
                   help="steps on all skills (stratified) first; each skill's run starts from there, so a "
                        "from-scratch model learns the answer format before the graph is measured (default: 0)")
    training_args(p)
    output_args(p, "the graph JSON; the heat-map goes beside it (.png)", required=True)


def graph_command(a: argparse.Namespace) -> int:
    model, data = model_and_data(a)
    mc = from_args(a, MixConfig)
    graph, png = graph_recipe(model, data, training_config(a, data), a.output_path, given=mc.graph,
                              pretrain_steps=a.pretrain_steps, val_per_skill=mc.val_per_skill, runs_dir=a.runs_dir)
    t = table(f"skills graph ({graph.source}): row i = trained skill, column j = evaluated skill", ("", *graph.skills))
    for s, row in zip(graph.skills, graph.matrix):
        t.add_row(s, *(f"{x:.2f}" for x in row))
    console().print(t)
    print(f"wrote {a.output_path} and {png}")
    return 0


COMMANDS = {"skillmix": (skillmix_parser, skillmix_command), "graph": (graph_parser, graph_command)}
