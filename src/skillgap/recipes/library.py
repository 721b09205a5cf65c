"""Recipe: a skill library (`skillgap library`), one LoRA adapter per skill, each measured on its own skill.

    for each skill:  test items drawn first, training items from the rest     # no test item is trained on
    build_library(model, those items, one adapter each)                       # skillgap.library
    for each skill:  profile(model + its adapter, its test items)  -> the index's accuracy
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

from skillgap.data import DataConfig, load_items, source, suite_of
from skillgap.errors import ConfigError, unknown_name
from skillgap.library import Library, build_library, test_set, train_items
from skillgap.models import ModelConfig
from skillgap.recipes.profile import EvalConfig, profile
from skillgap.train import TrainConfig
from skillgap.verify import assert_disjoint


@dataclass(frozen=True)
class LibraryConfig:
    """Which skills get an adapter, on how many items, and how each is measured."""

    skills: tuple[str, ...] = field(metadata={
        "metavar": "A,B", "help": "one adapter for each, on items of that skill alone"})
    budget: int = field(default=256, metadata={"help": "training items per skill adapter"})
    test_limit: int = field(default=50, metadata={
        "help": "held-out items of its skill each adapter is measured on, into the index (default: 50; 0: none)"})
    test_data: str | None = field(default=None, metadata={
        "help": "with --data: the file those held-out items come from (default: --data itself, each skill's test "
                "items left out of its training)"})

    def check(self, data: DataConfig, tc: TrainConfig) -> None:
        if self.budget < 1 or self.test_limit < 0:
            raise ConfigError("--budget must be at least 1 and --test-limit at least 0.")
        if tc.method == "full":
            raise ConfigError("--method full: a library holds one LoRA adapter per skill; leave --method out.")
        if self.test_data and not data.data:
            raise ConfigError("--test-data goes with --data (the training file); a suite has its own test split.")


def library_recipe(model: ModelConfig, data: DataConfig, lc: LibraryConfig, tc: TrainConfig, ev: EvalConfig,
                   output_path: str | Path, runs_dir: str | Path = "runs", console: Console | None = None) -> Library:
    console = console or Console(stderr=True)
    lc.check(data, tc)
    tc = replace(tc, method="lora").resolved(model)  # LoRA's learning rate, for a from-scratch model too
    data.check()
    if data.suite:
        ids = list(suite_of(data).skills.ids)
        for x in lc.skills:
            if x not in ids:
                raise unknown_name("skill", x, ids)
    # Each adapter's accuracy in the index is held-out accuracy: its test items are drawn first, its training items
    # from the rest, and no test item of any skill is a training item of any, by id or prompt text, before training.
    # Every reference is checked against the grader first, before any model loads.
    tests = {x: test_set(data, x, lc.test_limit, lc.test_data) for x in lc.skills} if lc.test_limit else {}
    held = {x: load_items(t, ev.grader, check=True)[0] for x, t in tests.items()}
    items = {x: train_items(data, x, lc.budget, None if lc.test_data else held.get(x)) for x in lc.skills}
    tested = f"--test-data {lc.test_data}" if lc.test_data else f"{source(data)}, held out"
    assert_disjoint([it for v in items.values() for it in v], [it for v in held.values() for it in v],
                    source(data), tested)
    lib = build_library(model, data, list(lc.skills), lc.budget, tc, output_path, console=console, items=items)
    for x, test in tests.items():
        prof = profile(replace(model, adapter=str(lib.adapter(x))), test, ev, runs_dir,
                       lib.root / x / "test-profile.json", console=console).to_dict()
        lib.entries[x].accuracy = prof["overall"]["accuracy"]
    lib.save()
    return lib
