"""skillgap: find the skills a language model is missing, train exactly those, and prove the gain.

The loop in Python (`api.py`): measure -> find_gaps -> build_mixture -> finetune -> measure -> compare,
on one `Model` handle. One module per stage:
    skills.py (discover.py, label.py, embed.py) -> items.py / suites/ / formats.py / data.py -> models/ -> grade.py
    -> profile.py (attribution.py, diagnose.py) -> target/ -> train.py -> verify.py -> report.py
beside them graph.py (which skills help learn which), skillmix.py (the Skill-Mix evaluation), localize.py and
library.py (where a fine-tune keeps a skill; one adapter per skill); teacher.py asks a model for structured answers
(cached) and judge.py grades with one, answers.py extracts final answers, scoring.py scores completions, store.py
keeps every run resumable, io.py writes atomically, and recipes/ wires the stages into the commands (cli/).
The layers and the import rule: docs/architecture.md.

Importing the package is cheap: torch, transformers and backends load only when used. No exported name is a
module's name, so `from skillgap import X` never hands back a module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from skillgap.errors import unknown_name

__version__ = "0.1.0"

_LAZY = {
    "Model": "skillgap.api", "measure": "skillgap.api", "find_gaps": "skillgap.api", "finetune": "skillgap.api",
    "Skill": "skillgap.skills", "SkillSet": "skillgap.skills", "load_inventory": "skillgap.skills",
    "Item": "skillgap.items", "read_jsonl": "skillgap.items", "write_jsonl": "skillgap.items",
    "Grade": "skillgap.grade", "get_grader": "skillgap.grade",
    "Profile": "skillgap.profile", "Record": "skillgap.items", "build_profile": "skillgap.profile",
    "wilson": "skillgap.profile", "first_broken_step": "skillgap.profile",
    "attribute": "skillgap.attribution", "AttributionConfig": "skillgap.attribution", "Targets": "skillgap.attribution",
    "ModelConfig": "skillgap.models", "ModelPool": "skillgap.models", "load_model": "skillgap.models",
    "DataConfig": "skillgap.data", "load_items": "skillgap.data",
    "read_items": "skillgap.formats", "load_suite": "skillgap.suites", "RunStore": "skillgap.store",
    "EvalConfig": "skillgap.recipes.profile",
    "Mixture": "skillgap.target", "Request": "skillgap.target", "build_mixture": "skillgap.target",
    "TrainConfig": "skillgap.train", "TrainResult": "skillgap.train",
    "VerifyConfig": "skillgap.verify", "Comparison": "skillgap.verify", "compare": "skillgap.verify",
    "write_report": "skillgap.report",
    "TargetConfig": "skillgap.recipes.train", "MixConfig": "skillgap.recipes.online", "run": "skillgap.recipes.run",
    "Teacher": "skillgap.teacher", "LabelConfig": "skillgap.label", "label_items": "skillgap.label",
    "missing_skill_profile": "skillgap.diagnose", "JudgeGrader": "skillgap.judge",
}
__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs (tests/test_api.py checks that the two agree)
    from skillgap.api import Model, find_gaps, finetune, measure
    from skillgap.data import DataConfig, load_items
    from skillgap.diagnose import missing_skill_profile
    from skillgap.formats import read_items
    from skillgap.grade import Grade, get_grader
    from skillgap.items import Item, Record, read_jsonl, write_jsonl
    from skillgap.judge import JudgeGrader
    from skillgap.label import LabelConfig, label_items
    from skillgap.models import ModelConfig, ModelPool, load_model
    from skillgap.attribution import AttributionConfig, Targets, attribute
    from skillgap.profile import Profile, build_profile, first_broken_step, wilson
    from skillgap.recipes.online import MixConfig
    from skillgap.recipes.profile import EvalConfig
    from skillgap.recipes.run import run
    from skillgap.recipes.train import TargetConfig
    from skillgap.report import write_report
    from skillgap.skills import Skill, SkillSet, load_inventory
    from skillgap.store import RunStore
    from skillgap.suites import load_suite
    from skillgap.target import Mixture, Request, build_mixture
    from skillgap.teacher import Teacher
    from skillgap.train import TrainConfig, TrainResult
    from skillgap.verify import Comparison, VerifyConfig, compare


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)

    raise AttributeError(str(unknown_name("name in skillgap", name, __all__)))
