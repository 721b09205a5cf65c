"""No item is both trained and tested, on any path: train and test items are compared by id and by normalised prompt
text, before any model loads, and training items are training items because of where they come from."""

import json

import pytest

from conftest import run_cli
from skillgap.errors import DataError
from skillgap.formats import read_items
from skillgap.items import Item
from skillgap.target import Request, build_mixture
from skillgap.verify import assert_disjoint


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(prefix, questions, skill="x"):
    return [{"id": f"{prefix}{i}", "prompt": q, "answer": str(i), "skills": [skill]} for i, q in enumerate(questions)]


QUESTIONS = [f"What is {a} + {a + 1}?" for a in range(12)]


def test_the_same_question_under_another_id_spacing_case_or_system_prompt_is_a_training_item():
    train = [Item("t0", "1", ("x",), messages=({"role": "system", "content": "Solve it."},
                                               {"role": "user", "content": "What is 2 + 3?"},
                                               {"role": "assistant", "content": "5"})),
             Item("t1", "1", ("x",), prompt="What is 7 + 1?")]
    test = [Item("q0", "5", ("x",), prompt="what  is 2 +\n3?"), Item("q1", "8", ("x",), prompt="WHAT IS 7 + 1? "),
            Item("q2", "9", ("x",), prompt="What is 4 + 5?")]
    with pytest.raises(DataError) as e:
        assert_disjoint(train, test, "--train-data train.jsonl")
    message = str(e.value)
    assert "\n" not in message and "--train-data train.jsonl" in message
    assert "'q0'" in message and "as 't0'" in message and "2 of 3 evaluation items" in message and "'q1'" in message
    assert_disjoint(train, test[2:], "--train-data train.jsonl")  # another question: no refusal


def test_a_training_file_without_split_fields_is_a_training_pool(tmp_path):
    """Items read without a `split` field read as "test"; that label never decides what is a training item (the
    issue's "strategy 'stat-sel' put 256 test items in the training set", after minutes of diagnosis)."""
    pool, _ = read_items(_write(tmp_path / "train.jsonl", _rows("p", QUESTIONS)), "items", {})
    assert {it.split for it in pool} == {"test"}  # the default label of an item read without one
    mixture = build_mixture("stat-sel", Request({"x": 3}, pool, budget=8, seed=0))
    assert len(mixture.items) == 8 and {it.id for it in mixture.items} <= {it.id for it in pool}


RUN = ["--model", "smollm2-135m", "--output-path", "out", "--runs-dir", "runs"]


def _overlapping_files(tmp_path):
    """A test file, and a training file that holds one of its questions under another id, spacing and case."""
    _write(tmp_path / "test.jsonl", _rows("q", QUESTIONS[:4]))
    _write(tmp_path / "train.jsonl", _rows("p", QUESTIONS[4:]) + _rows("dup", ["what is  2 + 3?"]))


@pytest.mark.parametrize("args", [
    ["run", "--data", "test.jsonl", "--train-data", "train.jsonl", "--budget", "4"],
    ["run", "--data", "test.jsonl", "--train-data", "train.jsonl", "--mixture", "stratified", "--budget", "4",
     "--val-per-skill", "2"],
    ["train", "--data", "test.jsonl", "--train-data", "train.jsonl", "--mixture", "stratified", "--steps", "2",
     "--val-per-skill", "2"],
], ids=["run", "run-mixture", "train-mixture"])
@pytest.mark.timeout(120)  # no model work: the check comes before the model loads
def test_training_and_measuring_commands_refuse_overlapping_files_before_any_model_work(tmp_path, cli, args):
    _overlapping_files(tmp_path)
    code, _, err = cli(*args, *RUN)
    assert code == 2, err
    error = err.strip().splitlines()[-1]
    assert error.startswith("skillgap: error: --data test.jsonl: evaluation item 'q2' is also in the training set "
                            "(--train-data train.jsonl as 'dup0', same prompt text)"), error
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()  # refused before anything started


def test_localize_refuses_test_items_that_its_train_or_validation_files_hold(tmp_path, cli):
    """Checked before the model is even looked up: the base model here does not exist."""
    _write(tmp_path / "train.jsonl", _rows("p", QUESTIONS[4:]))
    _write(tmp_path / "val.jsonl", _rows("v", ["What is 2 + 3? "]))
    _write(tmp_path / "test.jsonl", _rows("q", QUESTIONS[:4]))
    _write(tmp_path / "leaky-test.jsonl", _rows("p", QUESTIONS[10:]))  # the train file's ids and questions
    args = ["localize", "--model", "no/such/model", "--finetuned", "ft", "--skills", "x", "--data", "train.jsonl",
            "--train-limit", "4", "--output-path", "loc"]
    for extra, message in [
        (["--test-data", "leaky-test.jsonl"], "--test-data leaky-test.jsonl: evaluation item 'p0' is also in the "
                                              "training set (--data train.jsonl, same id); 2 of 2"),
        (["--validation-data", "val.jsonl", "--test-data", "test.jsonl"],
         "--test-data test.jsonl: evaluation item 'q2' is also in the training set (--data train.jsonl and "
         "--validation-data val.jsonl as 'v0', same prompt text)")]:
        code, _, err = cli(*args, *extra)
        assert code == 2 and message in err, err
        assert not (tmp_path / "loc").exists()


def test_library_refuses_a_test_file_that_holds_training_items(tmp_path, cli):
    _write(tmp_path / "lib.jsonl", _rows("p", QUESTIONS))
    _write(tmp_path / "test.jsonl", _rows("q", ["WHAT IS 5 + 6?"]))
    code, _, err = cli("library", "--model", "no/such/model", "--data", "lib.jsonl", "--test-data", "test.jsonl",
                       "--skills", "x", "--output-path", "lib")
    assert code == 2, err
    assert "--test-data test.jsonl: evaluation item 'q0' is also in the training set (--data lib.jsonl as 'p5'" in err
    assert not (tmp_path / "lib").exists()


@pytest.mark.slow
def test_library_from_a_file_measures_each_adapter_on_items_it_never_trained_on(tmp_path, tiny_model_dir):
    """A file has no split to trust: each skill's test items are drawn first and its training items from the rest,
    so the index's accuracy is held-out accuracy (it was training accuracy: 50 of 50 test items were trained on)."""
    rows = _rows("a", QUESTIONS, "add") + _rows("m", [q.replace("+", "times") for q in QUESTIONS], "mul")
    _write(tmp_path / "lib.jsonl", rows)
    run_cli("library", "--model", str(tiny_model_dir), "--backend", "hf", "--data", "lib.jsonl", "--skills", "add,mul",
            "--budget", "6", "--test-limit", "4", "--train-batch-size", "3", "--lora-r", "2", "--max-new-tokens", "4",
            "--output-path", "lib", cwd=tmp_path)
    index = json.loads((tmp_path / "lib" / "index.json").read_text())
    for skill in ("add", "mul"):
        trained = [json.loads(line) for line in (tmp_path / "lib" / skill / "train.jsonl").read_text().splitlines()]
        measured = json.loads((tmp_path / "lib" / skill / "test-profile.json").read_text())["records"]
        assert len(trained) == index["skills"][skill]["examples"] == 6 and len(measured) == 4
        assert not {r["id"] for r in trained} & {r["id"] for r in measured}
        assert {r["skills"][0] for r in trained} == {r["skills"][0] for r in measured} == {skill}


def test_a_training_file_without_split_fields_is_read_as_training_items(tmp_path) -> None:
    """Items of --train-data are training items because of where they come from: the pool (and the train.jsonl
    written from it) says split 'train', not the 'test' a line without a split field defaults to."""
    from skillgap.data import DataConfig
    from skillgap.recipes.train import TargetConfig, load_pool

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"id": f"t{i}", "prompt": f"What is {i}+1?", "answer": str(i + 1),
                                         "skills": ["add"]}) + "\n" for i in range(3)))
    pool = load_pool(DataConfig(data=str(tmp_path / "test.jsonl")), TargetConfig(train_data=str(train)))[0]
    assert [it.split for it in pool] == ["train"] * 3
