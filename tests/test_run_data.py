"""A run's data is read once: the test file and the pool file are parsed, validated and checked for overlap in one
place before any model work, then handed to diagnosis, targeting, training and measurement (the pool file was parsed
four times on the way through `skillgap run`, the test file three times)."""

from collections import Counter
from pathlib import Path

import pytest

import skillgap.formats
from skillgap.data import DataConfig
from skillgap.items import write_jsonl
from skillgap.models import ModelConfig
from skillgap.models.scratch import scratch_model
from skillgap.recipes.profile import EvalConfig
from skillgap.recipes.run import run
from skillgap.recipes.train import TargetConfig, train_recipe
from skillgap.suites import load_suite
from skillgap.train import TrainConfig


@pytest.fixture
def parses(monkeypatch) -> Counter:
    """How often each file is parsed: every reader of a dataset file goes through `formats.records`."""
    counts: Counter = Counter()
    real = skillgap.formats.records

    def counted(path: Path):
        counts[Path(path).name] += 1
        return real(path)

    monkeypatch.setattr(skillgap.formats, "records", counted)
    return counts


def _files(tmp_path: Path) -> tuple[Path, Path]:
    arith = load_suite("arith")  # the train and test splits share no question
    write_jsonl(arith.generate("test", 6, seed=0), tmp_path / "test.jsonl")
    write_jsonl(arith.generate("train", 40, seed=0), tmp_path / "pool.jsonl")
    return tmp_path / "test.jsonl", tmp_path / "pool.jsonl"


@pytest.fixture(scope="module")
def scratch() -> ModelConfig:
    """A from-scratch model with arith's words: it answers, wrongly, so its diagnosis names skills to target."""
    return ModelConfig(str(scratch_model("scratch-tiny", "arith")))


TINY_TRAIN = TrainConfig(max_steps=2, batch_size=4, eval_every=0, lora_r=2)
EV = EvalConfig(max_new_tokens=4, batch_size=8, grader="exact")


def test_run_reads_the_test_file_and_the_pool_once(tmp_path, parses, scratch):
    test, pool = _files(tmp_path)
    report = run(scratch, DataConfig(data=str(test), limit=None),
                 TargetConfig(budget=8, diagnose_limit=6, train_data=str(pool), val_per_skill=2), TINY_TRAIN, EV,
                 tmp_path / "out", runs_dir=tmp_path / "runs")
    assert report["diagnosis"]["overall"]["n"] == 6 and report["mixture"]["n_examples"] == 8  # every stage ran
    assert report["before"]["overall"]["n"] == report["after"]["overall"]["n"] == 6
    assert parses == {"pool.jsonl": 1, "test.jsonl": 1}


def test_train_reads_the_pool_once(tmp_path, parses, scratch):
    _, pool = _files(tmp_path)
    result = train_recipe(scratch, DataConfig(suite="arith", limit=20),
                          TargetConfig(budget=8, diagnose_limit=6, train_data=str(pool), val_per_skill=2), TINY_TRAIN,
                          EV, tmp_path / "out", runs_dir=tmp_path / "runs")
    assert result.steps == 2 and (tmp_path / "out" / "diagnosis.json").is_file()  # diagnosed, selected, trained
    assert parses == {"pool.jsonl": 1}
