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
from pathlib import Path
from dataclasses import replace
from typing import Any

from skillgap import __version__
from skillgap.errors import SkillgapError

EXAMPLES = """examples:
  skillgap run --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --seed 0 --output-path out/
  skillgap train --model smollm2-135m --data train.jsonl --output-path out/
  skillgap compare out/before.json out/after.json
  skillgap train --model scratch-tiny --suite lego --mixture skill-it --steps 100 --seed 0 --output-path out/
  skillgap label --data gsm8k/test.jsonl --format gsm8k --skills gsm8k_labels.jsonl --output-path labelled.jsonl
  skillgap discover --data train.jsonl --limit 500 --teacher gpt-4o-mini --teacher-base-url URL --output-path skills.yaml
  skillgap diagnose RUN_ID --skills skills.yaml --teacher gpt-4o-mini --teacher-base-url URL --output-path msp.json
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


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default=os.environ.get("SKILLGAP_RUNS", "runs"),
                   help="where the run store (skillgap.db) lives (default: ./runs or $SKILLGAP_RUNS)")


def _output_args(p: argparse.ArgumentParser, help: str, required: bool, folder: bool = False) -> None:
    o = p.add_argument_group("output")
    o.add_argument("--output-path", default=None, required=required, help=help)
    p.set_defaults(output_is_folder=folder)
    _add_common(o)


def _check_output_path(a: argparse.Namespace) -> None:
    """An --output-path that cannot be written is a one-line error before any work, not a traceback at the end."""
    if not getattr(a, "output_path", None):
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


def _model_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--model", default="smollm2-135m",
                   help="alias (smollm2-135m), model folder, .gguf file, or served model name (default: smollm2-135m)")
    m.add_argument("--backend", choices=["auto", "hf", "vllm", "openai"], default="auto",
                   help="auto (default): openai when --base-url is given, else vllm where it is installed, else hf")
    m.add_argument("--adapter", default=None, help="hf, vllm: a LoRA adapter folder to apply (e.g. out/adapter)")
    m.add_argument("--adapter-mode", default="auto", choices=["auto", "lora", "merge"],
                   help="vllm: serve the adapter through LoRARequest or merged into the weights "
                        "(default: auto, lora on GPU, merge on CPU where it is faster)")
    m.add_argument("--max-model-len", type=int, default=None,
                   help="vllm: longest prompt + completion in tokens (default: the model's, at most 4096)")
    m.add_argument("--tensor-parallel-size", type=int, default=1,
                   help="vllm: GPUs one engine spreads the model over (default: 1)")
    m.add_argument("--device", default="auto", help="hf, vllm: auto | cpu | cuda | cuda:N | mps (default: auto)")
    m.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="auto (default): float32 on CPU, where it reproduces greedy outputs exactly; bfloat16 on GPU")
    m.add_argument("--base-url", default=None, help="openai: endpoint, e.g. http://localhost:8000/v1")
    m.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight (default: 8)")


def _data_args(p: argparse.ArgumentParser, limit: int | None, limit_help: str = "number of items",
               data_help: str = "a JSONL file of items instead of a suite", by_skill: bool = True) -> None:
    d = p.add_argument_group("data")
    d.add_argument("--suite", default=None, help="built-in procedural suite (default: arith)")
    d.add_argument("--data", default=None, help=data_help)
    d.add_argument("--format", default="auto", help="for --data: auto | items | gsm8k | math | alpaca | classification | table (CSV, Parquet, "
                                                    "a saved `datasets` folder) (default: auto, from the first record)")
    d.add_argument("--field", action="append", default=None, metavar="TARGET=COLUMN",
                   help="for --data: map a column to an item field (prompt, answer, skills, id, completion); repeatable")
    d.add_argument("--limit", type=int, default=limit, help=f"{limit_help} (default: {limit or 'all'}); from a file, a "
                                                             "seeded sample balanced over skills (see --sample)")
    d.add_argument("--sample", default="stratified", choices=["stratified", "first"],
                   help="how --limit draws from a file: stratified (default: every skill as many items as it can "
                        "get, seeded) or first (the first N, as lm-eval's --limit)")
    if by_skill:
        d.add_argument("--skills", dest="item_skills", default=None, metavar="A,B",
                       help="only items made of these skills (of the suite, or of the file's labels)")
        d.add_argument("--exclude-skills", default=None, metavar="C,D",
                       help="no item that exercises one of these skills, composed items included")
        d.add_argument("--k", dest="k_values", default=None, metavar="K,K",
                       help="only items composing this many skills (e.g. 1,2: train on compositions of at most 2)")
        d.add_argument("--hold-out-pairs", default=None, metavar="A+B,C+D",
                       help="no item that composes both skills of a pair, so those combinations stay unseen")
    d.add_argument("--seed", type=int, default=0, help="seed for the suite, selection and training (default: 0)")


def _eval_args(p: argparse.ArgumentParser) -> None:
    e = p.add_argument_group("eval")
    e.add_argument("--batch-size", type=int, default=16, help="chats per generation batch (default: 16)")
    e.add_argument("--max-new-tokens", type=int, default=128, help="generation budget per item (default: 128)")
    e.add_argument("--grader", default=None,
                   help="auto (a file's default: each item by its reference: number, time, True/False, yes/no, text) | "
                        "numeric | exact | math | regex:<pattern> | module:function | judge (an LLM judge: --judge)")
    e.add_argument("--judge", default=None, help="the judge model for --grader judge (alias, folder, or served name)")
    e.add_argument("--judge-base-url", default=None, help="the judge's OpenAI-compatible endpoint")
    e.add_argument("--ray", action="store_true",
                   help="generate on a Ray cluster: $RAY_ADDRESS (e.g. ray://head:10001), else a local one; "
                        "grading and the run store stay here. Needs: pip install \"ray[data]\"")
    e.add_argument("--ray-replicas", type=int, default=None, metavar="N", help="--ray: model replicas (default: 2)")
    e.add_argument("--ray-gpus-per-replica", type=float, default=None, metavar="G",
                   help="--ray: GPUs per replica; 1 for --backend vllm on GPUs (default: 0)")
    e.add_argument("--ray-cpus-per-replica", type=float, default=None, metavar="C",
                   help="--ray: CPUs per replica (default: 1)")


def _target_args(p: argparse.ArgumentParser) -> None:
    from skillgap.recipes.train import TargetConfig

    d = TargetConfig()
    t = p.add_argument_group("target")
    t.add_argument("--strategy", default=d.strategy, help="uniform | stat-sel | stat-syn | curriculum | skillmix "
                                                          f"(default: {d.strategy})")
    t.add_argument("--budget", type=int, default=d.budget, help=f"training examples (default: {d.budget})")
    t.add_argument("--diagnose-limit", type=int, default=d.diagnose_limit,
                   help=f"pool items the base model is diagnosed on (default: {d.diagnose_limit})")
    t.add_argument("--pool-size", type=int, default=d.pool_size,
                   help=f"suite items generated to select from (default: {d.pool_size})")
    t.add_argument("--train-data", default=None, help="a pool of training items instead of the suite's (JSONL items, "
                                                      "or any --train-format)")
    t.add_argument("--replay", type=float, default=d.replay, metavar="SHARE",
                   help="share of the budget drawn uniformly from the pool, spread through training, so the skills a "
                        "targeted set leaves out keep examples (default: 0); with --mixture, that share of every "
                        "draw in the natural proportions")
    t.add_argument("--skillmix-k", type=int, default=d.skillmix_k,
                   help=f"skillmix: skills a teacher-written example combines (default: {d.skillmix_k})")
    t.add_argument("--query-types", default=None, help="skillmix: a file of query types, `Name: definition` a line "
                                                       "or Instruct-SkillMix's queries markdown (default: built-in 8)")
    t.add_argument("--train-format", default="auto", help="for --train-data, as --format (default: auto)")
    t.add_argument("--train-field", action="append", default=None, metavar="TARGET=COLUMN",
                   help="for --train-data, as --field; repeatable")


def _mixture_args(p: argparse.ArgumentParser, steps: str = "needs --steps") -> None:
    from skillgap.recipes.online import MixConfig

    d = MixConfig()
    m = p.add_argument_group("mixture (online, instead of a fixed --strategy set)")
    m.add_argument("--mixture", default=None, help="skill-it | random | stratified | curriculum: re-weight skills "
                                                    f"while training ({steps})")
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


def _verify_args(p: argparse.ArgumentParser) -> None:
    from skillgap.verify import VerifyConfig

    d = VerifyConfig()
    v = p.add_argument_group("verify")
    v.add_argument("--alpha", type=float, default=d.alpha, help=f"significance level (default: {d.alpha})")
    v.add_argument("--correction", default=d.correction,
                   help="multiple-testing correction over skills and over k: holm (family-wise) | bh "
                        f"(Benjamini-Hochberg, false-discovery rate) | none (default: {d.correction})")


def _verify_config(a: argparse.Namespace) -> Any:
    from skillgap.verify import VerifyConfig

    cfg = VerifyConfig(alpha=a.alpha, correction=a.correction, paired=not getattr(a, "unpaired", False))
    cfg.check()
    return cfg


def _teacher_args(p: argparse.ArgumentParser, synthesizes: bool = False) -> None:
    """The teacher's options; for `train` and `run` (synthesizes) it is optional and only writes STAT-Syn items."""
    role = "for --strategy stat-syn: the model that writes new questions and samples solutions (STAT-Syn)" \
        if synthesizes else "the model that names, labels or diagnoses skills"
    t = p.add_argument_group("teacher", f"{role}; every call is cached on disk ($SKILLGAP_CACHE/teacher.db), so a "
                                        "re-run costs nothing")
    default = "none: the suite's generator writes the items, exactly; needed with --train-data" if synthesizes \
        else "smollm2-135m, which runs but names skills poorly"
    t.add_argument("--teacher", default=None if synthesizes else "smollm2-135m",
                   help=f"alias, model folder, .gguf, or the served model name with --teacher-base-url "
                        f"(default: {default})")
    t.add_argument("--teacher-backend", choices=["auto", "hf", "vllm", "openai"], default=None,
                   help="default: openai when --teacher-base-url is given, else vllm where installed, else hf")
    t.add_argument("--teacher-base-url", default=None, help="an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    t.add_argument("--teacher-concurrency", type=int, default=8, help="openai: requests in flight (default: 8)")
    t.add_argument("--teacher-timeout", type=float, default=120.0, help="openai: seconds per request (default: 120)")
    t.add_argument("--teacher-retries", type=int, default=2,
                   help="re-asks after a malformed reply, with the reason fed back (default: 2)")
    t.add_argument("--teacher-max-new-tokens", type=int, default=256, help="(default: 256)")
    t.add_argument("--teacher-cache", default=None, help="the reply cache, an SQLite file "
                                                         "(default: $SKILLGAP_CACHE/teacher.db)")


def _teacher(a: argparse.Namespace) -> Any:
    from skillgap.models import ModelConfig
    from skillgap.teacher import Cache, Teacher

    if a.teacher is None:
        for flag in ("teacher_backend", "teacher_base_url"):
            if getattr(a, flag) is not None:
                raise SkillgapError(f"--{flag.replace('_', '-')} without --teacher: name the teacher model too.")
        return None
    cfg = ModelConfig(model=a.teacher, backend=a.teacher_backend, base_url=a.teacher_base_url,
                      concurrency=a.teacher_concurrency, timeout=a.teacher_timeout)
    cfg.check()
    cache = Cache(a.teacher_cache) if a.teacher_cache else None
    return Teacher(cfg, cache, max_new_tokens=a.teacher_max_new_tokens, retries=a.teacher_retries)


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
    _mixture_args(p, steps="default: --budget / --train-batch-size")
    _teacher_args(p, synthesizes=True)
    _train_args(p)
    _eval_args(p)
    _verify_args(p)
    _output_args(p, "output directory (report.html, report.json, adapter, ...)", required=True, folder=True)

    p = sub.add_parser("train", help="build a targeted training set and fine-tune on it", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    _data_args(p, limit=None,
               data_help="a training file: items (prompt/messages + completion), or any --format (classification, ...)")
    _target_args(p)
    p.add_argument_group("target").add_argument(
        "--profile", default=None, help="a profile JSON (from `skillgap profile`) whose missing skills to target, "
                                        "instead of diagnosing the model first")
    _teacher_args(p, synthesizes=True)
    _mixture_args(p)
    _train_args(p)
    _eval_args(p)
    _output_args(p, "output directory (adapter, train.jsonl, train_result.json)", required=True, folder=True)

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

    p = sub.add_parser("skillmix", help="Skill-Mix: can the model write one text that shows k skills? (a judge grades)",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    from skillgap.recipes.skillmix import SkillMixConfig

    d = SkillMixConfig("", "")
    g = p.add_argument_group("skillmix", "draws of k skills and a topic; the paper: 3 rounds x 3 grading runs")
    g.add_argument("--skills", required=True, help="skills with a definition and an example: the reference's "
                                                   "skills.csv (LeoYu/skill-mix) or a JSONL of {skill, definition, example}")
    g.add_argument("--topics", required=True, help="topics, one a line (the reference's topics.txt)")
    g.add_argument("--k", default=",".join(map(str, d.k)), help=f"numbers of skills per text (default: "
                                                                f"{','.join(map(str, d.k))})")
    g.add_argument("--n", type=int, default=d.n, help=f"draws per k (default: {d.n})")
    g.add_argument("--rounds", type=int, default=d.rounds, help=f"generation rounds, best of (default: {d.rounds})")
    g.add_argument("--grading-runs", type=int, default=d.grading_runs,
                   help=f"judge samples per text, majority per point (default: {d.grading_runs})")
    g.add_argument("--filter-names", action="store_true",
                   help="zero a skill's point when its name appears verbatim in the text")
    g.add_argument("--temperature", type=float, default=d.temperature, help=f"student and judge (default: {d.temperature})")
    g.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens,
                   help=f"the student's, per turn (default: {d.max_new_tokens})")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of the draws (default: 0)")
    j = p.add_argument_group("judge", "grades each text on the k + 3 rubric; a capable judge is needed for meaningful "
                                      "grades; every call is cached on disk ($SKILLGAP_CACHE/teacher.db)")
    j.add_argument("--judge", required=True, help="alias, model folder, .gguf, or the served name with --judge-base-url")
    j.add_argument("--judge-base-url", default=None, help="the judge's OpenAI-compatible endpoint")
    j.add_argument("--judge-backend", choices=["auto", "hf", "vllm", "openai"], default=None)
    j.add_argument("--judge-max-new-tokens", type=int, default=d.judge_max_new_tokens,
                   help=f"(default: {d.judge_max_new_tokens})")
    j.add_argument("--judge-retries", type=int, default=d.judge_retries,
                   help=f"re-asks after a table that does not parse (default: {d.judge_retries})")
    j.add_argument("--judge-format", default=d.judge_format, choices=["table", "json"],
                   help="table: the reference's rubric table (default) | json: the points as JSON, which an "
                        "endpoint that constrains decoding enforces, so a weak judge's replies still parse")
    j.add_argument("--cache", default=None, help="the reply cache, an SQLite file (default: $SKILLGAP_CACHE/teacher.db)")
    _output_args(p, "the results JSON; the HTML page goes beside it (.html)", required=True)

    p = sub.add_parser("localize", help="where a fine-tuned model keeps a skill: grafting masks (Panigrahi et al. 2023)",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)  # --model: the pre-trained base the masks graft onto
    from skillgap.localize import GraftConfig
    from skillgap.recipes.localize import LocalizeConfig

    lc, gc = LocalizeConfig(("",)), GraftConfig()
    g = p.add_argument_group("localize", "masks over the decoder blocks, found on each skill's single-skill items")
    g.add_argument("--finetuned", required=True,
                   help="the fine-tuned model: a folder (a full fine-tune of --model), a LoRA adapter folder of "
                        "--model (merged, so its delta is what is localized), or a skill library (`skillgap "
                        "library`): each skill localized in its own adapter")
    g.add_argument("--skills", required=True, metavar="A,B", help="the skills to localize, one mask each")
    g.add_argument("--sparsity", default=",".join(f"{x:g}" for x in lc.sparsities),
                   help="base-patch sizes as shares of the graftable parameters (default: %(default)s)")
    g.add_argument("--train-limit", type=int, default=lc.train_limit,
                   help=f"train items per skill the mask is found on (default: {lc.train_limit})")
    g.add_argument("--val-limit", type=int, default=lc.val_limit,
                   help=f"validation items per skill added to the selection score (default: {lc.val_limit})")
    g.add_argument("--test-limit", type=int, default=lc.test_limit,
                   help=f"held-out test items per skill the recovery is measured on (default: {lc.test_limit})")
    g.add_argument("--steps", type=int, default=gc.steps, help=f"mask updates (default: {gc.steps})")
    g.add_argument("--graft-lr", type=float, default=gc.lr, help=f"score step size (default: {gc.lr:g}, the paper's)")
    g.add_argument("--sigmoid-bias", type=float, default=gc.sigmoid_bias, help=f"(default: {gc.sigmoid_bias:g})")
    g.add_argument("--graft-batch-size", type=int, default=gc.batch_size, help=f"(default: {gc.batch_size})")
    g.add_argument("--keep-models", action="store_true", help="keep each grafted model folder after profiling it")
    g.add_argument("--suite", default="arith", help="the suite whose items carry the skills (default: arith)")
    g.add_argument("--data", default=None, help="instead of a suite: a labelled train file (e.g. SST-2's, "
                                                "--format classification; its skill is the task: sst2)")
    g.add_argument("--format", default="auto", help="for --data, --validation-data, --test-data (as profile's)")
    g.add_argument("--field", action="append", default=None, metavar="TARGET=COLUMN", help="for --format table")
    g.add_argument("--validation-data", default=None,
                   help="with --data: held-out items that select the mask (default: train items the mask never saw)")
    g.add_argument("--test-data", default=None, help="with --data: held-out items the recovery is measured on")
    g.add_argument("--seed", type=int, default=0, help="items, score initialisation, random baseline (default: 0)")
    _eval_args(p)
    _output_args(p, "output directory (localize.json, localize.md, overlap-*.png, masks/)", required=True, folder=True)

    p = sub.add_parser("library", help="one LoRA per skill into a folder with an index (compose and remove them "
                                       "with skillgap compose)", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    _data_args(p, limit=None, data_help="a labelled JSONL of training items instead of a suite", by_skill=False)
    g = p.add_argument_group("library")
    g.add_argument("--skills", required=True, metavar="A,B", help="one adapter for each, on items of that skill alone")
    g.add_argument("--budget", type=int, default=256, help="training items per skill adapter (default: 256)")
    g.add_argument("--test-limit", type=int, default=50,
                   help="held-out items of its skill each adapter is measured on, into the index (default: 50; 0: none)")
    g.add_argument("--test-data", default=None, help="with --data: the file those held-out items come from (default: "
                                                     "--data itself, each skill's test items left out of its training)")
    _train_args(p)
    _eval_args(p)
    _output_args(p, "the library folder (index.json, one adapter folder per skill)", required=True, folder=True)

    p = sub.add_parser("compose", help="merge or route a library's skill adapters into one adapter folder (PEFT)",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    _output_args(p, "the composed adapter folder: `skillgap profile --adapter` takes it", required=True, folder=True)

    p = sub.add_parser("label", help="label a dataset with skills from an inventory (embed or teacher)",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_args(p, limit=None, limit_help="items to label", data_help="the dataset to label (JSONL, CSV, Parquet, "
                                                                     "a saved dataset; GSM8K and MATH formats)",
               by_skill=False)
    from skillgap.label import LabelConfig

    d = LabelConfig()
    g = p.add_argument_group("label")
    g.add_argument("--skills", required=True, help="the inventory: YAML, JSON or CSV of skills, or a labelled JSONL "
                                                   "(its skills, and its items as neighbours for --labeler embed)")
    g.add_argument("--labeler", default=d.labeler, help="embed (offline) | teacher (default: embed)")
    g.add_argument("--examples", default=None, help="embed: a labelled JSONL whose items vote as neighbours "
                                                    "(default: --skills when it is one)")
    g.add_argument("--max-skills", type=int, default=d.max_skills,
                   help=f"skills per item at most (default: {d.max_skills})")
    g.add_argument("--min-score", type=float, default=d.min_score,
                   help=f"embed: a further skill needs this fraction of the best score (default: {d.min_score})")
    g.add_argument("--neighbours", type=int, default=d.neighbours,
                   help=f"embed: labelled neighbours that vote (default: {d.neighbours})")
    g.add_argument("--neighbour-weight", type=float, default=d.weight,
                   help="embed: weight of the neighbour votes against the description similarity, 0-1 "
                        "(default: fitted on the labelled examples, each left out of its own vote)")
    _teacher_args(p)
    _output_args(p, "the labelled items (JSONL); the inventory is written beside it", required=True)

    p = sub.add_parser("discover", help="name the skills a dataset needs: teacher names, clustered, named again",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_args(p, limit=None, limit_help="items to name skills for", data_help="the dataset (any --format)",
               by_skill=False)
    g = p.add_argument_group("discover")
    g.add_argument("--clusters", type=int, default=None,
                   help="coarse skills to form (default: the square root of the number of distinct names)")
    g.add_argument("--distance", type=float, default=None,
                   help="instead of --clusters: merge names closer than this cosine distance")
    g.add_argument("--per-item", type=int, default=3, help="fine-grained names the teacher gives per item (default: 3)")
    _teacher_args(p)
    _output_args(p, "the inventory (YAML); the items labelled with it go beside it (.items.jsonl)", required=True)

    p = sub.add_parser("diagnose", help="a teacher names the missing skills behind each wrong answer of a run",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a profile run id (or unique prefix), from `skillgap profile` or `skillgap runs`")
    p.add_argument("--skills", default=None, help="the inventory to choose from (default: the suite's, else the "
                                                  "<data>.skills.yaml beside the run's data file, else the skills "
                                                  "its items carry)")
    p.add_argument("--diagnose-with-reference", action="store_true",
                   help="also show the teacher the gold answer (default: the question and the model's solution "
                        "only, as STAT and AdaptMI diagnose)")
    _teacher_args(p)
    _output_args(p, "the profile JSON with the teacher's missing-skill profile (for `skillgap train --profile`)",
                 required=True)

    p = sub.add_parser("compare", help="two profiles side by side, with the significant differences")
    p.add_argument("a", help="run id (or unique prefix), or a profile/report JSON file: the baseline")
    p.add_argument("b", help="the same, for the run to compare with it")
    _verify_args(p)
    p.add_argument_group("verify").add_argument(
        "--unpaired", action="store_true", help="compare profiles of different items with the unpaired two-proportion "
                                                "test (default: paired, and an error unless both cover the same items)")
    _add_common(p)

    p = sub.add_parser("runs", help="list runs in the run store")
    _add_common(p)
    p = sub.add_parser("show", help="print a run's profile table")
    p.add_argument("run", help="run id or a unique prefix of it")
    p.add_argument("--items", action="store_true", help="also list every item with its output and grade")
    _add_common(p)
    return parser


def _data_config(a: argparse.Namespace) -> Any:
    from skillgap.data import DataConfig
    from skillgap.formats import parse_fields

    def names(flag: str | None) -> tuple[str, ...]:
        return tuple(s.strip() for s in (flag or "").split(",") if s.strip())

    try:
        ks = tuple(int(k) for k in names(getattr(a, "k_values", None)))
    except ValueError:
        raise SkillgapError(f"--k {a.k_values}: give numbers of skills separated by commas, e.g. 1,2.") from None
    pairs = []
    for spec in names(getattr(a, "hold_out_pairs", None)):
        pair = tuple(x.strip() for x in spec.split("+"))
        if len(pair) != 2 or not all(pair):
            raise SkillgapError(f"--hold-out-pairs {spec!r}: a pair is two skills joined by '+', e.g. "
                                "sub_borrow+percent.")
        pairs.append(pair)
    return DataConfig(suite=None if a.data else (a.suite or "arith"), data=a.data, limit=a.limit, seed=a.seed,
                      format=a.format, fields=tuple(parse_fields(a.field).items()), sample=a.sample,
                      skills=names(getattr(a, "item_skills", None)), exclude_skills=names(getattr(a, "exclude_skills", None)),
                      k_values=ks, hold_out_pairs=tuple(pairs))


def _model_config(a: argparse.Namespace, suite: str = "arith") -> Any:
    """The --model group as a ModelConfig (a from-scratch model is built for `suite` first)."""
    from skillgap.models import ModelConfig
    from skillgap.models.scratch import is_scratch, scratch_model

    name = a.model
    if is_scratch(a.model):
        from skillgap.train import main_process_first

        with main_process_first(a.device):  # under accelerate launch, one process builds the cached model
            name = str(scratch_model(a.model, suite))
    return ModelConfig(model=name, backend=a.backend, device=a.device, dtype=a.dtype, base_url=a.base_url,
                       concurrency=a.concurrency, adapter=a.adapter, adapter_mode=a.adapter_mode,
                       max_model_len=a.max_model_len, tensor_parallel_size=a.tensor_parallel_size)


def _configs(a: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags as the recipes' config dataclasses, one per concern."""
    from skillgap.models import ModelConfig
    from skillgap.models.scratch import is_scratch
    from skillgap.recipes.profile import EvalConfig

    if a.suite and a.data:
        raise SkillgapError("Give --suite or --data, not both.")
    if is_scratch(a.model) and a.data:  # a from-scratch model takes its vocabulary from the suite
        raise SkillgapError(f"--model {a.model} builds its vocabulary from a suite; give --suite, not --data.")
    out: dict[str, Any] = {"model": _model_config(a, a.suite or "arith"), "data": _data_config(a)}
    if hasattr(a, "batch_size"):
        judge = ModelConfig(model=a.judge, base_url=a.judge_base_url) if a.judge else None
        ray = {f: getattr(a, f) for f in ("ray_replicas", "ray_gpus_per_replica", "ray_cpus_per_replica")
               if getattr(a, f) is not None}
        if ray and not a.ray:
            raise SkillgapError(f"--{next(iter(ray)).replace('_', '-')} without --ray: add --ray to generate on Ray.")
        out["ev"] = EvalConfig(batch_size=a.batch_size, max_new_tokens=a.max_new_tokens, grader=a.grader, judge=judge,
                               ray=a.ray, **ray)
    from skillgap.formats import parse_fields

    if hasattr(a, "strategy"):
        from skillgap.recipes.train import TargetConfig

        out["target"] = TargetConfig(strategy=a.strategy, budget=a.budget, diagnose_limit=a.diagnose_limit,
                                     pool_size=a.pool_size, train_data=a.train_data, train_format=a.train_format,
                                     replay=a.replay, skillmix_k=a.skillmix_k, query_types=a.query_types,
                                     train_fields=tuple(parse_fields(a.train_field).items()))
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
                                   round_steps=a.round_steps, val_per_skill=a.val_per_skill, train_data=a.train_data,
                                   train_format=a.train_format, train_fields=tuple(parse_fields(a.train_field).items()),
                                   replay=a.replay)
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

    t = Table(title=f"run {p['run_id']}", caption=f"{p['model']} on {p['data']}; accuracy counts every item, an "
                                                 "unparsed output (no gradable answer, or cut off at "
                                                 "--max-new-tokens) as wrong", title_justify="left")
    for col in ("skill", "n", "acc %", "95% CI", "alone %", "missing", "unparsed (rate)"):
        t.add_column(col, justify="left" if col == "skill" else "right", no_wrap=True)
    for s in sorted(p["skills"], key=lambda s: s["accuracy"]):
        alone = s.get("alone", {})
        t.add_row(s["id"], str(s["n"]), pct(s["accuracy"]), f"{pct(s['ci_low'])}-{pct(s['ci_high']).strip()}",
                  f"{pct(alone['accuracy'])} ({alone['n']})" if alone.get("n") else "-",
                  str(p["missing"].get(s["id"], 0)), _unparsed(s))
    for sid in [m for m in p["missing"] if m not in {s["id"] for s in p["skills"]}]:  # named missing, on no item
        t.add_row(sid, "0", "-", "-", "-", str(p["missing"][sid]), "-")
    o = p["overall"]
    t.add_section()
    t.add_row("overall", str(o["n"]), pct(o["accuracy"]),
              f"{pct(o['ci_low'])}-{pct(o['ci_high']).strip()}", "", str(sum(p["missing"].values())),
              _unparsed(o))
    k = Table(title="accuracy by number of composed skills (k)", title_justify="left")
    for col in ("k", "n", "acc %", "95% CI", "unparsed (rate)"):
        k.add_column(col, justify="right")
    for r in p["by_k"]:
        k.add_row(str(r["k"]), str(r["n"]), pct(r["accuracy"]), f"{pct(r['ci_low'])}-{pct(r['ci_high']).strip()}",
                  _unparsed(r))
    console = _console()
    console.print(t)
    console.print(k)
    if p.get("rules"):  # which rule graded how many items (the auto grader reads each reference by its kind)
        console.print("graded by: " + ", ".join(f"{rule} {n}" for rule, n in p["rules"].items()))


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _unparsed(score: dict[str, Any]) -> str:
    """Format failures beside the accuracy they count against: '3 (5%)', '3 (5%), 2 cut off'."""
    cut = f", {score['truncated']} cut off" if score.get("truncated") else ""
    return f"{score['unparsed']} ({100 * score['unparsed'] / score['n']:.0f}%){cut}" if score["n"] else "0"


def _console() -> Any:
    """A console at least 120 columns wide, so tables stay readable when piped to a file."""
    from rich.console import Console

    return Console(width=max(120, Console().width))


def cmd_run(a: argparse.Namespace) -> int:
    from skillgap.recipes.run import run

    c = _configs(a)
    report = run(c["model"], c["data"], c["target"], c["train"], c["ev"], a.output_path, runs_dir=a.runs_dir,
                 verify=_verify_config(a), teacher=_teacher(a), mixture=c.get("mixture"))
    print_comparison(report["before"], report["after"], report["deltas"] | {
        "improved": report["improved"], "regressions": report["regressions"]})
    print(f"wrote {a.output_path.rstrip('/')}/report.html and report.json")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from skillgap.recipes.train import train_recipe
    from skillgap.train import process_state

    c = _configs(a)
    if a.mixture:
        from skillgap.recipes.online import online_recipe

        if process_state(a.device).num_processes > 1:
            raise SkillgapError("An online mixture (--mixture) trains in one process: run it without accelerate launch.")
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
                          runs_dir=a.runs_dir, profile_path=a.profile, teacher=_teacher(a))
    last = result.log[-1]["loss"] if result.log else float("nan")
    if process_state(a.device).is_main_process:  # under accelerate launch, one summary line
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

    cfg = _verify_config(a)
    before, after = _load_profile(a.a, a.runs_dir), _load_profile(a.b, a.runs_dir)
    print_comparison(before, after, compare(before, after, cfg))
    return 0


def print_comparison(before: dict[str, Any], after: dict[str, Any], verdict: dict[str, Any]) -> None:
    from rich.table import Table

    def pct(x: float) -> str:
        return f"{100 * x:5.1f}"

    paired = verdict["overall"]["test"] == "mcnemar-exact"

    def row(d: dict[str, Any]) -> list[str]:
        style = {"improved": "green", "regression": "bold red"}.get(d["flag"], "")
        flag = f"[{style}]{d['flag']}[/{style}]" if style else ""
        cells = [f"{pct(d['before'])} ({d['n_before']})", f"{pct(d['after'])} ({d['n_after']})",
                 f"{d['unparsed_before']}/{d['unparsed_after']}",
                 f"{100 * d['delta']:+.1f}", f"{100 * d['delta_ci_low']:+.1f}, {100 * d['delta_ci_high']:+.1f}"]
        if paired:
            cells.append(f"+{d['gained']}/-{d['lost']}")
        return cells + [_p(d["p_value"]), _p(d["p_adjusted"]), flag]

    cols = ["before % (n)", "after % (n)", "unparsed", "delta pp", "95% CI", *(["flips"] if paired else []),
            "p", "p adj", ""]
    test = "exact McNemar on the flipped items (paired)" if paired else "two-proportion z-test (unpaired)"
    correction = {"holm": "Holm-corrected", "bh": "Benjamini-Hochberg", "none": "uncorrected"}[verdict["correction"]]
    t = Table(title=f"{before.get('run_id', 'A')} -> {after.get('run_id', 'B')}", title_justify="left",
              caption=f"{test}; flags: adjusted p < {verdict['alpha']} ({correction} over skills, and over k); "
                      "accuracy counts every item, an unparsed output (before/after) as wrong", caption_justify="left")
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
    from skillgap.verify import verdict_line

    console.print(verdict_line(verdict), markup=False, highlight=False, soft_wrap=True)


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
        acc = json.loads(r["profile"]).get("overall", {}).get("accuracy") if r["profile"] else None
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
        from skillgap.label import item_text  # the question, not the last turn (a messages item's solution)

        for r in records:
            print(f"\n[{r.item.id}] skills={','.join(r.item.skills)} answer={r.item.answer} "
                  f"extracted={r.grade.answer} status={r.grade.status} score={r.grade.score}\n"
                  f"  prompt: {item_text(r.item)}\n  output: {r.output}")
    return 0


def cmd_skillmix(a: argparse.Namespace) -> int:
    from rich.table import Table

    from skillgap.models import ModelConfig
    from skillgap.recipes.skillmix import SkillMixConfig, skillmix
    from skillgap.teacher import Cache

    try:
        ks = tuple(int(k) for k in a.k.split(","))
    except ValueError:
        raise SkillgapError(f"--k {a.k}: give numbers of skills separated by commas, e.g. 1,2,3.") from None
    cfg = SkillMixConfig(a.skills, a.topics, k=ks, n=a.n, rounds=a.rounds, grading_runs=a.grading_runs,
                         filter_names=a.filter_names, temperature=a.temperature, max_new_tokens=a.max_new_tokens,
                         judge_max_new_tokens=a.judge_max_new_tokens, judge_retries=a.judge_retries,
                         judge_format=a.judge_format, seed=a.seed)
    student = _model_config(a)
    judge = ModelConfig(model=a.judge, backend=a.judge_backend, base_url=a.judge_base_url)
    res = skillmix(student, judge, cfg, a.output_path, a.runs_dir, cache=Cache(a.cache) if a.cache else None,
                   console=_console())
    t = Table(title=f"Skill-Mix {res['run_id']}: {res['student']} graded by {res['judge']}", title_justify="left",
              caption="% of graded texts, 95% CI; a judge reply that does not parse is a judge error, not a 0")
    for col in ("k", "draws", "graded", "judge errors", "full marks", "all skills", "skill fraction"):
        t.add_column(col, justify="right")
    for r in res["by_k"]:
        t.add_row(str(r["k"]), str(r["n"]), str(r["graded"]), str(r["judge_errors"]),
                  *(_mean_ci(r[m]) for m in ("full_marks", "all_skills", "skill_fraction")))
    _console().print(t)
    print(f"wrote {a.output_path} and {os.path.splitext(a.output_path)[0]}.html")
    return 0


def _mean_ci(v: list[float | None]) -> str:
    """'42.0 [31-53]' in percent; '-' where nothing was graded."""
    if v[0] is None:
        return "-"
    return f"{100 * v[0]:.1f}" + (f" [{100 * v[1]:.0f}-{100 * v[2]:.0f}]" if v[1] is not None else "")


def cmd_localize(a: argparse.Namespace) -> int:
    from dataclasses import replace as _replace

    from skillgap.data import DataConfig
    from skillgap.localize import GraftConfig
    from skillgap.recipes.localize import LocalizeConfig, localize_recipe
    from skillgap.recipes.profile import EvalConfig

    try:
        sparsities = tuple(float(x) for x in a.sparsity.split(","))
    except ValueError:
        raise SkillgapError(f"--sparsity {a.sparsity}: give shares separated by commas, e.g. 1e-5,1e-4.") from None
    from skillgap.formats import parse_fields

    base = _model_config(a, a.suite)
    ft = Path(a.finetuned)
    skills = tuple(x for x in a.skills.split(",") if x)
    if (ft / "index.json").is_file():  # a skill library: one adapter, one delta, per skill
        from skillgap.library import Library

        lib = Library.load(ft)
        finetuned: Any = {x: _replace(base, adapter=str(lib.adapter(x))) for x in skills}
    elif (ft / "adapter_config.json").is_file():
        finetuned = _replace(base, adapter=str(ft))
    else:
        finetuned = _replace(base, model=str(ft), adapter=None)
    for flag, value in (("--validation-data", a.validation_data), ("--test-data", a.test_data)):
        if value and not a.data:
            raise SkillgapError(f"{flag} goes with --data (the train file); a suite has its own splits.")
    lc = LocalizeConfig(skills, sparsities, a.train_limit, a.val_limit, a.test_limit, keep_models=a.keep_models,
                        validation_data=a.validation_data, test_data=a.test_data)
    gc = GraftConfig(steps=a.steps, lr=a.graft_lr, sigmoid_bias=a.sigmoid_bias, batch_size=a.graft_batch_size,
                     seed=a.seed)
    ev = EvalConfig(batch_size=a.batch_size, max_new_tokens=a.max_new_tokens, grader=a.grader)
    data = DataConfig(data=a.data, format=a.format, fields=tuple(parse_fields(a.field).items()), seed=a.seed) \
        if a.data else DataConfig(suite=a.suite, seed=a.seed)
    res = localize_recipe(base, finetuned, data, lc, gc, ev, a.output_path,
                          a.runs_dir, console=_console())
    print(Path(a.output_path, "localize.md").read_text())
    print(f"wrote {a.output_path.rstrip('/')}/localize.json, localize.md, overlap-*.png and "
          f"{len(res['skills']) * len(sparsities)} masks")
    return 0


def cmd_library(a: argparse.Namespace) -> int:
    from dataclasses import replace as _replace

    from rich.table import Table

    from skillgap.data import load_items, source
    from skillgap.library import build_library, test_set, train_items
    from skillgap.recipes.profile import profile
    from skillgap.verify import assert_disjoint

    if a.budget < 1 or a.test_limit < 0:
        raise SkillgapError("--budget must be at least 1 and --test-limit at least 0.")
    if a.method == "full":
        raise SkillgapError("--method full: a library holds one LoRA adapter per skill; leave --method out.")
    if a.test_data and not a.data:
        raise SkillgapError("--test-data goes with --data (the training file); a suite has its own test split.")
    c = _configs(argparse.Namespace(**vars(a) | {"method": "lora"}))  # LoRA's learning rate, for scratch models too
    skills = [x.strip() for x in a.skills.split(",") if x.strip()]
    c["data"].check()
    if c["data"].suite:
        from skillgap.data import suite_of
        from skillgap.errors import unknown_name

        ids = list(suite_of(c["data"]).skills.ids)
        for x in skills:
            if x not in ids:
                raise unknown_name("skill", x, ids)
    # Each adapter's accuracy in the index is held-out accuracy: its test items are drawn first, its training items
    # from the rest, and no test item of any skill is a training item of any, by id or prompt text, before training.
    # Every reference is checked against the grader first, before any model loads.
    tests = {x: test_set(c["data"], x, a.test_limit, a.test_data) for x in skills} if a.test_limit else {}
    held = {x: load_items(t, c["ev"].grader, check=True)[0] for x, t in tests.items()}
    items = {x: train_items(c["data"], x, a.budget, None if a.test_data else held.get(x)) for x in skills}
    tested = f"--test-data {a.test_data}" if a.test_data else f"{source(c['data'])}, held out"
    assert_disjoint([it for v in items.values() for it in v], [it for v in held.values() for it in v],
                    source(c["data"]), tested)
    lib = build_library(c["model"], c["data"], skills, a.budget, c["train"], a.output_path, console=_console(),
                        items=items)
    for x, test in tests.items():
        prof = profile(_replace(c["model"], adapter=str(lib.adapter(x))), test, c["ev"], a.runs_dir,
                       lib.root / x / "test-profile.json", console=_console()).to_dict()
        lib.entries[x].accuracy = prof["overall"]["accuracy"]
    lib.save()
    t = Table(title=f"skill library {a.output_path} on {lib.base}", title_justify="left")
    for col in ("skill", "adapter", "examples", "steps", "accuracy on its skill"):
        t.add_column(col)
    for x, e in lib.entries.items():
        t.add_row(x, e.adapter, str(e.examples), str(e.steps), "-" if e.accuracy is None else f"{e.accuracy:.1%}")
    _console().print(t)
    print(f"wrote {lib.index_path}")
    return 0


def cmd_compose(a: argparse.Namespace) -> int:
    from skillgap.library import Library, compose

    lib = Library.load(a.library)
    skills = [x.strip() for x in a.skills.split(",") if x.strip()]
    try:
        weights = [float(w) for w in a.weights.split(",")] if a.weights else None
    except ValueError:
        raise SkillgapError(f"--weights {a.weights}: give one number per skill, comma-separated.") from None
    out = compose(lib, skills, a.output_path, a.combination, weights, a.density, a.top_k, a.expert)
    backend = " --backend hf" if a.combination == "arrow" else ""
    print(f"wrote {out}\nmeasure it: skillgap profile --model {lib.base}{backend} --adapter {out} --output-path P")
    return 0


def cmd_label(a: argparse.Namespace) -> int:
    from skillgap.label import LabelConfig
    from skillgap.recipes.label import label_recipe

    cfg = LabelConfig(labeler=a.labeler, max_skills=a.max_skills, min_score=a.min_score, neighbours=a.neighbours,
                      weight=a.neighbour_weight)
    teacher = _teacher(a) if a.labeler == "teacher" else None
    label_recipe(_data_config(a), a.skills, cfg, a.output_path, a.examples, teacher, _console())
    print(f"wrote {a.output_path}")
    return 0


def cmd_discover(a: argparse.Namespace) -> int:
    from skillgap.recipes.label import discover_recipe

    found = discover_recipe(_data_config(a), _teacher(a), a.output_path, a.clusters, a.distance, a.per_item,
                            _console())
    from rich.table import Table

    t = Table(title="discovered skills", title_justify="left")
    for col in ("id", "name", "members"):
        t.add_column(col)
    for s in found.inventory:
        t.add_row(s.id, s.name, ", ".join(found.members[s.id][:6]))
    _console().print(t)
    print(f"wrote {a.output_path}")
    return 0


def cmd_diagnose(a: argparse.Namespace) -> int:
    from skillgap.recipes.diagnose import diagnose_recipe

    prof = diagnose_recipe(a.run, _teacher(a), a.output_path, a.runs_dir, a.skills, _console(),
                           with_reference=a.diagnose_with_reference)
    print_profile(prof)
    print(f"wrote {a.output_path}")
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
        commands = {"profile": cmd_profile, "run": cmd_run, "train": cmd_train, "graph": cmd_graph, "label": cmd_label,
                    "discover": cmd_discover, "diagnose": cmd_diagnose, "skillmix": cmd_skillmix, "localize": cmd_localize,
                    "library": cmd_library, "compose": cmd_compose,
                    "compare": cmd_compare, "runs": cmd_runs, "show": cmd_show}
        _check_output_path(args)
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
