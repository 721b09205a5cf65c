"""Bad options fail before any model loads or any item is generated, with an error that names the problem."""

import json

import pytest

from conftest import one_line_error
from skillgap.data import DataConfig
from skillgap.errors import SkillgapError
from skillgap.models import ModelConfig
from skillgap.recipes.profile import EvalConfig
from skillgap.recipes.train import TargetConfig
from skillgap.train import TrainConfig

RUN = ["run", "--model", "smollm2-135m", "--suite", "arith", "--output-path", "out", "--runs-dir", "runs"]


@pytest.fixture
def untouchable(monkeypatch):
    """Any model load or item generation is a test failure: the checks must come first."""
    import skillgap.models
    import skillgap.recipes.train
    from skillgap.suites.arith import ArithSuite

    def touched(*a, **k):
        raise AssertionError("a model was loaded or items were generated before the options were checked")

    monkeypatch.setattr(skillgap.models.ModelPool, "get", touched)  # every profile loads its model through a pool
    monkeypatch.setattr(skillgap.models, "load_model", touched)
    monkeypatch.setattr(skillgap.recipes.train, "train", touched)
    monkeypatch.setattr(ArithSuite, "synthesize", touched)
    monkeypatch.setattr(ArithSuite, "generate", touched)


@pytest.mark.parametrize("target, message", [
    (TargetConfig(strategy="stat-zel"), "Did you mean 'stat-sel'"),
    (TargetConfig(budget=0), "--budget must be at least 1"),
    (TargetConfig(diagnose_limit=0), "--diagnose-limit"),
    (TargetConfig(train_data="nowhere.jsonl"), "nowhere.jsonl: no such file"),
    (TargetConfig(diagnosis="jiont"), "Unknown diagnosis 'jiont'. Did you mean 'joint'"),
    (TargetConfig(diagnosis="teacher"), "--diagnosis teacher has a teacher name the missing skills"),
])
def test_run_checks_every_option_before_any_work(tmp_path, untouchable, target, message):
    from skillgap.recipes.run import run

    with pytest.raises(SkillgapError, match=message):
        run(ModelConfig("smollm2-135m"), DataConfig(limit=10), target, TrainConfig(), EvalConfig(), tmp_path / "out",
            runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()  # nothing started, nothing to undo


def test_bad_options_from_the_command_line(tmp_path, cli):
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "prompt": "1+1?", "answer": "2", "skills": ["x"]}\n'
                                        '{"id": "b", "prompt": "2+2?", "skills": ["x"]}\n')
    (tmp_path / "t.jsonl").write_text('{"id": "t", "prompt": "3+3?", "answer": "6", "skills": ["x"]}\n')
    (tmp_path / "p.json").write_text(json.dumps({"missing": ["x"]}))
    (tmp_path / "m.json").write_text(json.dumps({"missing": {"x": 1}}))
    (tmp_path / "graded.jsonl").write_text('{"id": 1, "skills": ["x"], "correct": true}\n\n'
                                           '{"id": 2, "skills": ["x"], "correct": "yes"}\n')
    from skillgap.items import write_jsonl
    from skillgap.suites import load_suite

    arith = load_suite("arith")  # a pool that holds one of the suite's test items
    write_jsonl(arith.generate("train", 5, seed=0) + arith.generate("test", 1, seed=0), tmp_path / "leak.jsonl")
    cases = [
        (RUN + ["--strategy", "stat-zel"], "Unknown strategy 'stat-zel'. Did you mean 'stat-sel'"),
        (RUN + ["--budget", "0"], "--budget must be at least 1"),
        (RUN + ["--grader", "regex:("], "Bad grader regex"),
        (RUN + ["--grader", "numerik"], "Did you mean 'numeric'"),
        (RUN + ["--grader", "judge"], "--grader judge needs a judge model"),
        (RUN + ["--correction", "hlom"], "Did you mean 'holm'"),
        (RUN + ["--train-data", "bad.jsonl"], "bad.jsonl:2: field 'answer'"),
        (RUN + ["--suite", "arth"], "Did you mean 'arith'"),
        (RUN + ["--adapter", "nowhere"], "--adapter nowhere: not a PEFT adapter folder"),
        (RUN + ["--model", "no/such/model"], "No model at 'no/such/model'"),
        (RUN + ["--teacher-base-url", "http://localhost:1/v1"], "--teacher-base-url without --teacher"),
        (RUN + ["--teacher", "smollm2-135m", "--teacher-retries", "-1"], "--teacher-retries must be at least 0"),
        (RUN + ["--learning-rate", "-1"], "--learning-rate must be positive"),
        (["run", "--data", "t.jsonl", "--train-data", "t.jsonl", "--strategy", "stat-syn", "--output-path", "out",
          "--runs-dir", "runs"], "stat-syn on --train-data (no generator) needs a teacher"),
        (["run", "--data", "t.jsonl", "--train-data", "t.jsonl", "--output-path", "out", "--runs-dir", "runs"],
         "evaluation item 't' is also in the training set"),
        (["train", "--data", "t.jsonl", "--train-data", "t.jsonl", "--mixture", "skill-it", "--steps", "4",
          "--output-path", "o2"], "evaluation item 't' is also in the training set"),
        (["train", "--suite", "arith", "--train-data", "leak.jsonl", "--output-path", "out", "--runs-dir", "runs"],
         "evaluation item 'arith-test-s0-00000' is also in the training set"),
        (RUN + ["--train-data", "leak.jsonl"], "evaluation item 'arith-test-s0-00000' is also in the training set"),
        (["train", "--suite", "arith", "--profile", "p.json", "--output-path", "out", "--runs-dir", "runs"],
         "p.json: field 'missing'"),
        (["train", "--suite", "arith", "--profile", "none.json", "--output-path", "out", "--runs-dir", "runs"],
         "none.json: no such file"),
        (["train", "--suite", "arith", "--mixture", "skil-it", "--steps", "4", "--output-path", "out"],
         "Did you mean 'skill-it'"),
        (["train", "--suite", "arith", "--mixture", "skill-it", "--steps", "4", "--train-data", "bad.jsonl",
          "--output-path", "out"], "bad.jsonl:2: field 'answer'"),
        (["profile", "--suite", "arith", "--limit", "0", "--runs-dir", "runs"], "--limit must be at least 1"),
        (RUN + ["--exclude-skills", "sub_borrow,percnt"], "Unknown skill of suite 'arith' 'percnt'. Did you mean 'percent'"),
        (["profile", "--suite", "arith", "--skills", "round", "--exclude-skills", "round", "--runs-dir", "runs"],
         "--skills and --exclude-skills both name round"),
        (RUN + ["--train-data", "t.jsonl", "--train-format", "gsm9k"], "Did you mean 'gsm8k'"),
        (RUN + ["--train-data", "t.jsonl", "--train-field", "answer=gold"], "t.jsonl:1: field 'gold'"),
        (RUN + ["--diagnosis", "teacher"], "--diagnosis teacher has a teacher name the missing skills"),
        (["train", "--suite", "arith", "--profile", "m.json", "--output-path", "out", "--runs-dir", "runs"],
         "m.json: field 'records': --diagnosis joint fits every graded item"),
        (["attribute", "graded.jsonl"], "graded.jsonl:3: field 'correct': expected true, false or null"),
        (["attribute", "nothing-here"], "No run 'nothing-here': no such file, and no run store"),
    ]
    for args, message in cases:
        assert message in one_line_error(*cli(*args)), args
        assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists(), args


def _one_line_errors(cases, tmp_path, cli):
    """Each command exits 2 with its message on one line, and starts nothing."""
    for args, message in cases:
        assert message in one_line_error(*cli(*args)), args
        assert not (tmp_path / "runs").exists(), args


def test_a_data_file_not_in_utf8_is_a_one_line_error_naming_line_and_byte(tmp_path, untouchable, cli):
    from skillgap.errors import DataError
    from skillgap.items import read_jsonl
    from skillgap.skills import load_inventory

    first = '{"id": "a", "prompt": "1+1?", "answer": "2", "skills": ["x"]}\n'
    second = '{"id": "b", "prompt": "caf\u00e9?", "answer": "2", "skills": ["x"]}\n'
    (tmp_path / "latin1.jsonl").write_bytes((first + second).encode("latin-1"))
    (tmp_path / "latin1.csv").write_bytes("question,answer\n1+1?,2\ncaf\u00e9?,3\n".encode("latin-1"))
    (tmp_path / "skills.yaml").write_bytes("- id: caf\u00e9\n".encode("latin-1"))
    offset = len(first) + second.index("\u00e9")  # bytes: the first line and the second's ASCII before the é
    where = f"latin1.jsonl:2: not UTF-8 text (byte 0xe9 at byte offset {offset})"
    with pytest.raises(DataError, match=r"latin1.jsonl:2: not UTF-8 text \(byte 0xe9 at byte offset \d+\); .*UTF-8"):
        read_jsonl(tmp_path / "latin1.jsonl")
    with pytest.raises(DataError, match=r"skills.yaml:1: not UTF-8 text \(byte 0xe9 at byte offset 9\)"):
        load_inventory(tmp_path / "skills.yaml")
    _one_line_errors([(["profile", "--data", "latin1.jsonl"], where),
                      (["profile", "--data", "latin1.csv", "--field", "prompt=question"], "latin1.csv:3: not UTF-8 text"),
                      (RUN + ["--train-data", "latin1.jsonl"], where)], tmp_path, cli)


def test_an_output_path_of_the_wrong_kind_is_a_one_line_error_before_any_work(tmp_path, untouchable, cli):
    (tmp_path / "afile").write_text("a file, not a folder")
    (tmp_path / "afolder").mkdir()
    _one_line_errors([
        (RUN[:-4] + ["--output-path", "afile", "--runs-dir", "runs"], "--output-path afile is a file; `skillgap run` "
                                                                        "writes a folder there"),
        (["train", "--suite", "arith", "--output-path", "afile"], "--output-path afile is a file"),
        (["library", "--suite", "arith", "--skills", "round", "--output-path", "afile"], "--output-path afile is a file"),
        (["profile", "--suite", "arith", "--output-path", "afile/p.json"], "afile is a file, not a folder"),
        (["profile", "--suite", "arith", "--output-path", "afolder"], "--output-path afolder is a folder"),
    ], tmp_path, cli)
    assert (tmp_path / "afile").read_text() == "a file, not a folder" and not any((tmp_path / "afolder").iterdir())
