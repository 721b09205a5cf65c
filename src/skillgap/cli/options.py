"""Command-line flags generated from the config dataclasses, so each option is declared once: as a field.

A field with `metadata={"help": ...}` becomes a flag; its type comes from the annotation, its default from the
dataclass. Optional keys: "flag" (the flag's name(s) when not the field's), "prefixed" (its name under a prefix:
"" makes `ModelConfig.model` plain `--teacher`), "choices", "metavar", "example" (for comma lists). Parsed values
land in the namespace under "<prefix or class>.<field>", and `from_args` turns them back into the config.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import types
import typing
from dataclasses import replace
from typing import Any

from skillgap.data import DataConfig
from skillgap.errors import SkillgapError
from skillgap.formats import parse_fields
from skillgap.models import ModelConfig
from skillgap.models.scratch import is_scratch, scratch_model
from skillgap.recipes.profile import EvalConfig
from skillgap.teacher import Cache, Teacher
from skillgap.train import TrainConfig, main_process_first

Group = argparse.ArgumentParser | argparse._ArgumentGroup


def _flags(f: dataclasses.Field, prefix: str) -> list[str]:
    names = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
    names = [names] if isinstance(names, str) else list(names)
    if prefix:
        names = ["--" + "-".join(x for x in (prefix, f.metadata.get("prefixed", n[2:])) if x) for n in names]
    return names


def _base(tp: Any) -> Any:
    """`int | None` -> int; anything else as it is."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) \
        else str(value)


def add_config_args(parser: Group, cls: type, prefix: str = "", only: tuple[str, ...] | None = None,
                    defaults: dict[str, Any] | None = None, helps: dict[str, str] | None = None,
                    required: tuple[str, ...] = (), unset: tuple[str, ...] = ()) -> None:
    """One flag per documented field of `cls` (or of `only`); `defaults`/`helps` adapt a field to one command, and
    an `unset` flag parses to None when not given (so "--ray-replicas without --ray" can be told), its help still
    showing the config's default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata or (only is not None and f.name not in only):
            continue
        tp = _base(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        default = (defaults or {}).get(f.name, default)  # the command's own, where it has one
        help = (helps or {}).get(f.name, f.metadata["help"])
        if default is not None and default is not False and default != () and "default" not in help:
            help = f"{help} (default: {_shown(default)})".strip()
        flags = _flags(f, prefix)
        kw: dict[str, Any] = {"dest": f"{prefix or cls.__name__}.{f.name}", "help": help,
                              "required": f.name in required or f.default is dataclasses.MISSING}
        if tp is bool:
            kw |= {"action": "store_true"}
        elif _pairs(f, tp):
            kw |= {"action": "append", "metavar": f.metadata.get("metavar", "TARGET=COLUMN")}  # --field, repeatable
        else:
            choices = f.metadata.get("choices")
            kw |= {"default": None if f.name in unset else default, "choices": choices,
                   "type": str if typing.get_origin(tp) is tuple else tp,  # a comma list: read by from_args
                   "metavar": f.metadata.get("metavar", None if choices else flags[0][2:].replace("-", "_").upper())}
        parser.add_argument(*flags, **kw)


def _pairs(f: dataclasses.Field, tp: Any) -> bool:
    """(target, column) pairs, given one `--field TARGET=COLUMN` at a time."""
    return typing.get_origin(tp) is tuple and typing.get_origin(typing.get_args(tp)[0]) is tuple \
        and "parse" not in f.metadata


def comma_list(flag: str, raw: str, kind: type, what: str, example: str) -> tuple[Any, ...]:
    """'a, b,,c' -> ('a', 'b', 'c'), each read as `kind`; a one-line error that names the flag otherwise."""
    try:
        return tuple(kind(x.strip()) for x in raw.split(",") if x.strip())
    except ValueError:
        raise SkillgapError(f"{flag} {raw}: give {what} separated by commas, e.g. {example}.") from None


def _value(f: dataclasses.Field, tp: Any, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, (str, list)) or typing.get_origin(tp) is not tuple:
        return raw
    inner = typing.get_args(tp)[0]
    if "parse" in f.metadata:
        return f.metadata["parse"](raw)
    if _pairs(f, tp):
        return tuple(parse_fields(raw).items())
    what = f.metadata.get("items", "numbers" if inner in (int, float) else "names")
    return comma_list(_flags(f, prefix)[0], raw, inner, what, f.metadata.get("example", "a,b"))


def from_args(args: argparse.Namespace, cls: type, prefix: str = "", **given: Any) -> Any:
    """The config `cls` from the flags this command declared for it; `given` sets the fields that are not flags.

    A flag left at None for a field that cannot be None (a default the command shows but does not pass) keeps the
    dataclass's default."""
    hints, values = typing.get_type_hints(cls), vars(args)
    kwargs = dict(given)
    for f in dataclasses.fields(cls):
        dest = f"{prefix or cls.__name__}.{f.name}"
        if dest not in values or f.name in given:
            continue
        raw = values[dest]
        if raw is None and _base(hints[f.name]) is hints[f.name]:
            continue
        kwargs[f.name] = _value(f, _base(hints[f.name]), raw, prefix)
    return cls(**kwargs)


# ---------------------------------------------------------------- the groups several commands share

MODEL_FLAGS = ("model", "backend", "adapter", "adapter_mode", "max_model_len", "tensor_parallel_size", "device",
               "dtype", "base_url", "concurrency")
ITEM_FILTERS = ("skills", "exclude_skills", "k_values", "hold_out_pairs")
RAY_FLAGS = ("ray_replicas", "ray_gpus_per_replica", "ray_cpus_per_replica")


def model_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p.add_argument_group("model"), ModelConfig, only=MODEL_FLAGS)


def model_config(a: argparse.Namespace, suite: str = "arith") -> ModelConfig:
    """The --model group as a ModelConfig (a from-scratch model is built for `suite` first)."""
    cfg = from_args(a, ModelConfig)
    if not is_scratch(cfg.model):
        return cfg
    with main_process_first(cfg.device):  # under accelerate launch, one process builds the cached model
        return replace(cfg, model=str(scratch_model(cfg.model, suite)))


def data_args(p: argparse.ArgumentParser, limit: int | None, limit_help: str = "number of items",
              data_help: str | None = None, by_skill: bool = True) -> None:
    only = tuple(f.name for f in dataclasses.fields(DataConfig) if by_skill or f.name not in ITEM_FILTERS)
    helps = {"limit": f"{limit_help} (default: {limit or 'all'}); from a file, a seeded sample balanced over skills "
                      "(see --sample)"} | ({"data": data_help} if data_help else {})
    add_config_args(p.add_argument_group("data"), DataConfig, only=only, defaults={"suite": None, "limit": limit},
                    helps=helps)


def data_config(a: argparse.Namespace) -> DataConfig:
    d = from_args(a, DataConfig)
    return replace(d, suite=None if d.data else (d.suite or "arith"))


def model_and_data(a: argparse.Namespace) -> tuple[ModelConfig, DataConfig]:
    """--model and the data group together: a from-scratch model takes its vocabulary from the suite."""
    model, suite, data = (vars(a)[k] for k in ("ModelConfig.model", "DataConfig.suite", "DataConfig.data"))
    if suite and data:
        raise SkillgapError("Give --suite or --data, not both.")
    if is_scratch(model) and data:
        raise SkillgapError(f"--model {model} builds its vocabulary from a suite; give --suite, not --data.")
    return model_config(a, suite or "arith"), data_config(a)


def eval_args(p: argparse.ArgumentParser) -> None:
    e = p.add_argument_group("eval")
    add_config_args(e, EvalConfig, unset=RAY_FLAGS)
    add_config_args(e, ModelConfig, prefix="judge", only=("model", "base_url"), defaults={"model": None},
                    helps={"model": "the judge model for --grader judge (alias, folder, or served name)",
                           "base_url": "the judge's OpenAI-compatible endpoint"})


def eval_config(a: argparse.Namespace) -> EvalConfig:
    values = vars(a)
    ray = [f for f in RAY_FLAGS if values[f"EvalConfig.{f}"] is not None]
    if ray and not values["EvalConfig.ray"]:
        raise SkillgapError(f"--{ray[0].replace('_', '-')} without --ray: add --ray to generate on Ray.")
    judge = from_args(a, ModelConfig, "judge") if values["judge.model"] else None
    return from_args(a, EvalConfig, judge=judge)


def training_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p.add_argument_group("train"), TrainConfig)


def training_config(a: argparse.Namespace, data: DataConfig) -> TrainConfig:
    return from_args(a, TrainConfig, seed=data.seed)  # --seed seeds the data and the training


TEACHER = {k: v.default for k, v in inspect.signature(Teacher).parameters.items()}


def teacher_args(p: argparse.ArgumentParser, synthesizes: bool = False) -> None:
    """The teacher's options; for `train` and `run` (synthesizes) it is optional and only writes STAT-Syn items."""
    role = "for --strategy stat-syn: the model that writes new questions and samples solutions (STAT-Syn)" \
        if synthesizes else "the model that names, labels or diagnoses skills"
    t = p.add_argument_group("teacher", f"{role}; every call is cached on disk ($SKILLGAP_CACHE/teacher.db), so a "
                                        "re-run costs nothing")
    default = "none: the suite's generator writes the items, exactly; needed with --train-data" if synthesizes \
        else "smollm2-135m, which runs but names skills poorly"
    add_config_args(t, ModelConfig, prefix="teacher", only=("model", "backend", "base_url", "concurrency", "timeout"),
                    defaults={"model": None if synthesizes else "smollm2-135m"}, helps={
                        "model": "alias, model folder, .gguf, or the served model name with --teacher-base-url "
                                 f"(default: {default})",
                        "backend": "default: openai when --teacher-base-url is given, else vllm where installed, "
                                   "else hf",
                        "base_url": "an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"})
    t.add_argument("--teacher-retries", type=int, default=TEACHER["retries"],
                   help=f"re-asks after a malformed reply, with the reason fed back (default: {TEACHER['retries']})")
    t.add_argument("--teacher-max-new-tokens", type=int, default=TEACHER["max_new_tokens"],
                   help=f"(default: {TEACHER['max_new_tokens']})")
    t.add_argument("--teacher-cache", default=None, help="the reply cache, an SQLite file "
                                                         "(default: $SKILLGAP_CACHE/teacher.db)")


def teacher(a: argparse.Namespace) -> Teacher | None:
    values = vars(a)
    if values["teacher.model"] is None:
        for flag in ("backend", "base_url"):
            if values[f"teacher.{flag}"] is not None:
                raise SkillgapError(f"--teacher-{flag.replace('_', '-')} without --teacher: name the teacher model too.")
        return None
    cfg = from_args(a, ModelConfig, "teacher")
    cfg.check()
    cache = Cache(a.teacher_cache) if a.teacher_cache else None
    return Teacher(cfg, cache, max_new_tokens=a.teacher_max_new_tokens, retries=a.teacher_retries)


def runs_dir_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--runs-dir", default=os.environ.get("SKILLGAP_RUNS", "runs"),
                   help="where the run store (skillgap.db) lives (default: ./runs or $SKILLGAP_RUNS)")


def output_args(p: argparse.ArgumentParser, help: str, required: bool, folder: bool = False) -> None:
    o = p.add_argument_group("output")
    o.add_argument("--output-path", default=None, required=required, help=help)
    p.set_defaults(output_is_folder=folder)
    runs_dir_arg(o)
