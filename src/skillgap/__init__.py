"""skillgap: find the skills a language model is missing, train exactly those, and prove the gain.

The loop, one module per stage:
    skills.py (discover.py, label.py) -> items.py / suites/ / formats.py -> models/ -> grade.py
    -> profile.py (diagnose.py) -> target/ -> train.py -> verify.py -> report.py
with teacher.py asking a model for structured answers (cached), store.py keeping every run
resumable, and recipes/ wiring the stages together.

Importing the package is cheap: torch, transformers and backends load only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from skillgap.errors import unknown_name

__version__ = "0.1.0"

_LAZY = {
    "Skill": "skillgap.skills", "SkillSet": "skillgap.skills",
    "Item": "skillgap.items", "read_jsonl": "skillgap.items", "write_jsonl": "skillgap.items",
    "Grade": "skillgap.grade", "get_grader": "skillgap.grade",
    "Profile": "skillgap.profile", "Record": "skillgap.items", "build_profile": "skillgap.profile",
    "wilson": "skillgap.profile", "attribute": "skillgap.profile",
    "ModelConfig": "skillgap.models", "load_model": "skillgap.models",
    "DataConfig": "skillgap.data", "load_items": "skillgap.data",
    "load_suite": "skillgap.suites", "RunStore": "skillgap.store",
    "EvalConfig": "skillgap.recipes.profile",
    "Mixture": "skillgap.target", "Request": "skillgap.target", "build_mixture": "skillgap.target",
    "TrainConfig": "skillgap.train", "train": "skillgap.train",
    "compare": "skillgap.verify", "write_report": "skillgap.report",
    "TargetConfig": "skillgap.recipes.train", "run": "skillgap.recipes.run",
    "load_inventory": "skillgap.skills", "read_items": "skillgap.formats",
    "Teacher": "skillgap.teacher", "LabelConfig": "skillgap.label", "label_items": "skillgap.label",
    "missing_skill_profile": "skillgap.diagnose", "JudgeGrader": "skillgap.judge",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)

    raise AttributeError(str(unknown_name("name in skillgap", name, __all__)))
