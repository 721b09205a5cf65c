"""The loop as Python verbs, each taking and returning the dataclasses:

    with Model("smollm2-135m") as model:                     # loaded once, as vLLM's LLM
        before = measure(model, test)                        # a Profile, skill by skill
        gaps = find_gaps(model, pool_sample)                 # the missing skills, every skill fitted jointly
        mixture = build_mixture("stat-sel", Request(gaps, pool, budget=512))
        result = finetune(model, mixture.items, TrainConfig(), "out/")
        after = measure(model.finetuned(result), test)       # the same items, with the new weights
    comparison = compare(before, after)                      # paired: the items that flipped

Each verb calls the recipe or component the command line calls, so Python and `skillgap run` measure, store and
train alike. The verbs are not named after the modules they use (`profile`, `diagnose`, `target`, `train`,
`verify`), so that `from skillgap import ...` never hands back a module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skillgap.attribution import Targets, targets
from skillgap.data import DataConfig
from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.models import ModelConfig, ModelPool
from skillgap.profile import Profile
from skillgap.recipes.profile import EvalConfig, profile
from skillgap.train import TrainConfig, TrainResult, train


class Model:
    """A model and the backends that serve it, loaded on first use and kept across calls: `measure` loads it once
    however often it is called, and a `finetuned` handle shares them (a vLLM engine serves its LoRA adapter).

    `runs_dir` holds the measurements (resumable, as the command line's `--runs-dir`); `lora_rank` is the rank of the
    adapters a vLLM engine will serve after `finetune` (0: a fine-tuned model gets an engine of its own)."""

    def __init__(self, config: ModelConfig | str, runs_dir: str | Path = "runs", lora_rank: int = 0,
                 pool: ModelPool | None = None):
        self.config = ModelConfig(config) if isinstance(config, str) else config
        self.config.check()  # a missing model or adapter fails here, not at the first measurement
        self.runs_dir = runs_dir
        self.pool = pool or ModelPool(lora_rank)

    def finetuned(self, result: TrainResult) -> Model:
        """This model with the weights `finetune` wrote: its adapter, or the fully fine-tuned folder."""
        return Model(result.as_model(self.config), self.runs_dir, pool=self.pool)

    def close(self) -> None:
        """Free every loaded model (and the vLLM engine's memory)."""
        self.pool.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def measure(model: Model, data: DataConfig, ev: EvalConfig = EvalConfig(),
            output_path: str | Path | None = None) -> Profile:
    """`model` skill by skill on `data` (`skillgap profile`): accuracy with intervals, by k, and the missing skills."""
    return profile(model.config, data, ev, model.runs_dir, output_path, models=model.pool)


def find_gaps(model: Model | Profile, data: DataConfig | None = None, ev: EvalConfig = EvalConfig(),
              diagnosis: str = "joint") -> Targets:
    """The skills targeting aims at, as `skillgap run --diagnosis` names them (`Targets`: skill -> weight, the
    mastered skills, and why the evidence is too thin, if it is): of a profile, or of `model` measured on `data`, a
    sample of the training pool as `skillgap run` diagnoses, so test items stay unseen."""
    if not isinstance(model, Profile):
        if data is None:
            raise ConfigError("find_gaps(model, data) measures the model on `data`: give the items to diagnose on "
                              "(a sample of the training pool).")
        model = measure(model, data, ev)
    return targets(model.to_dict(), diagnosis)


def finetune(model: Model, items: list[Item], cfg: TrainConfig, output_path: str | Path) -> TrainResult:
    """Fine-tune `model` on `items`, in order, and save the weights under `output_path` (`skillgap train`). A loaded
    model that will not serve the new adapter gives its memory to the trainer first, as `skillgap run` does."""
    if not model.pool.serves_adapters(model.config):
        model.close()
    return train(model.config, items, cfg, output_path)
