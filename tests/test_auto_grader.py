"""The `auto` grader: a file whose answers are numbers, True/False, yes/no, clock times and text is graded item by
item by its reference, each item records the rule that graded it, and a reference the chosen grader cannot grade
stops the command at its file, line and field before any model loads.

The real data is BIG-Bench Hard (../shared/data/bbh: 6,511 answers: numbers, True/False, Yes/No, valid/invalid,
options, words), read with `--field` as a user reads any table; the replies are written here by hand.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import run_cli, shared_data
from skillgap.errors import ConfigError, DataError
from skillgap.formats import read_items
from skillgap.grade import auto, exact, math, numeric

BBH_FIELDS = {"prompt": "input", "answer": "target", "skills": "task"}


@pytest.mark.parametrize("reply, reference, rule, correct", [
    # numbers: numeric equality of the final value, units dropped
    ("x = 3", "3", "numeric", True),
    ("The biggest value is 0.3.", "0.3", "numeric", True),
    ("The biggest value is 0.3.", "3", "numeric", False),
    ("It is 12 cm long.", "12 cm", "numeric", True),
    ("So 47 + 38 = 85.", "85", "numeric", True),
    # clock times: '15:45' is '3:45 PM', AM is not PM
    ("It will be 3:45 PM.", "3:45 PM", "time", True),
    ("The answer is 15:45", "3:45 PM", "time", True),
    ("The time is 3:45 AM.", "3:45 PM", "time", False),
    ("The answer is 15:45", "3:45 AM", "time", False),  # a 24-hour time is not ambiguous
    ("It is 3:45.", "3:45 PM", "time", True),  # '3:45' may be either half of the day
    ("So the answer is 9:05 a.m.", "9:05 AM", "time", True),
    ("12:38", "12:38", "time", True),
    ("It is 12:37.", "12:38", "time", False),
    # True/False and yes/no, in any case, either word for either
    ("The answer is True.", "True", "boolean", True),
    ("the answer is true", "True", "boolean", True),
    ("Yes, 5 is greater than 3.", "True", "boolean", True),
    ("No, 7 is not less than 3.", "False", "boolean", True),
    ("No, 7 is not less than 3.", "True", "boolean", False),
    ("So the answer is no.", "No", "boolean", True),
    ("Therefore the statement is true.", "False", "boolean", False),
    # anything else: the final answer, MATH-normalised and case-folded
    ("So the answer is (A).", "(A)", "math", True),
    ("So the answer is (B).", "(A)", "math", False),
    ("The answer is (b).", "b", "math", True),
    ("The argument is Valid.", "valid", "math", True),
    ("The answer is $\\frac{\\pi}{2}$.", "\\frac{\\pi}{2}", "math", True),
    ("The answer is $\\frac{1}{2}$", "\\frac12", "numeric", True),
    # no final answer stated: only then the whole reply, exactly
    ("Paris", "paris", "exact", True),
    ("I think Paris", "paris", "exact", False),
])
def test_auto_grades_each_item_by_its_reference(reply, reference, rule, correct):
    g = auto(reply, reference)
    assert (g.rule, g.correct, g.status) == (rule, correct, "ok")


def test_auto_says_when_a_reply_has_no_answer_of_the_kind():
    for reply, reference, rule in (("I do not know.", "True", "boolean"), ("I do not know.", "3:45 PM", "time"),
                                   ("I do not know.", "85", "numeric"), ("", "Paris", "exact")):
        g = auto(reply, reference)
        assert (g.score, g.status, g.rule) == (None, "parse_error", rule)


def test_math_reads_a_final_assertion_that_numeric_reads():
    """`math` gave no answer for these (issue 37); the extractor it shares with `auto` now reads them."""
    for reply, reference in (("x = 3", "3"), ("The biggest value is 0.3.", "0.3"), ("k=5", "5")):
        assert math(reply, reference).correct and numeric(reply, reference).correct
    assert not math("x = 4", "3").correct
    assert math("no answer here", "2").status == "parse_error"


def test_numeric_refuses_a_clock_time_it_would_read_as_minutes():
    with pytest.raises(ConfigError, match="'3:45 PM' is not a number.*--grader auto"):
        numeric("It is 3:45 PM.", "3:45 PM")


def _reply(target: str, row: int) -> str:
    """A reply a model might write, stating `target` in one of a few ways (the BBH prompts' 'So the answer is')."""
    if target in ("True", "False", "Yes", "No", "yes", "no"):
        forms = [f"So the answer is {target}.", f"{target.capitalize()}, as worked out above.",
                 f"Step by step, the statement comes out {target.lower()}."]
    elif target.lstrip("-").isdigit():
        forms = [f"So the answer is {target}.", f"x = {target}", f"The result is {target}."]
    else:
        forms = [f"So the answer is {target}.", f"Let's think step by step.\nThe answer is {target}"]
    return forms[row % len(forms)]


def _other(targets: list[str], target: str) -> str:
    """Another answer of the same task: what a wrong reply says."""
    return next(t for t in targets if t.casefold() != target.casefold())


def test_bbh_mixed_answers_are_graded_by_auto_with_the_rule_counted():
    path = shared_data() / "bbh" / "bbh.jsonl"
    items, grader = read_items(path, fields=BBH_FIELDS, check=True)
    assert grader == "auto" and len(items) == 6511  # a file's default: numeric would refuse 'False' on line 1
    replies = [_reply(it.answer, i) for i, it in enumerate(items)]
    grades = [auto(r, it.answer) for r, it in zip(replies, items)]
    assert [it.id for it, g in zip(items, grades) if not g.correct] == []
    rules: dict[str, int] = {}
    for g in grades:
        rules[g.rule] = rules.get(g.rule, 0) + 1
    # 500 numbers (multistep_arithmetic_two, object_counting); 1,187 True/False and Yes/No (five tasks); the rest
    # options, valid/invalid, bracket sequences and sorted words
    assert rules == {"numeric": 500, "boolean": 1187, "math": 4824}
    # and it can say no: each reply against another answer of its task is wrong
    by_task: dict[str, list[str]] = {}
    for it in items:
        by_task.setdefault(it.skills[0], []).append(it.answer)
    wrong = [auto(r, _other(by_task[it.skills[0]], it.answer)) for r, it in zip(replies, items)]
    assert sum(g.correct for g in wrong) == 0
    # `exact`, which the old error message recommended, compares the whole reply: it misses most right answers
    assert sum(exact(r, it.answer).correct for r, it in zip(replies, items)) < len(items) / 3


def test_a_reference_numeric_cannot_grade_fails_at_its_line_naming_auto():
    path = shared_data() / "bbh" / "bbh.jsonl"
    first = json.loads(path.read_text().splitlines()[0])["target"]
    with pytest.raises(DataError) as e:
        read_items(path, fields=BBH_FIELDS, grader="numeric", check=True)
    msg = str(e.value)
    assert msg.startswith(f"{path}:1: field 'target': reference answer {first!r} is not a number")
    assert "--grader auto" in msg and "exact" not in msg and "\n" not in msg
    read_items(path, fields=BBH_FIELDS, grader="numeric")  # a file read for training is not graded: not checked


def test_each_item_keeps_its_rule_in_the_store_and_the_profile_counts_them(tmp_path, capsys):
    from skillgap.cli import print_profile
    from skillgap.items import Item
    from skillgap.profile import Record, build_profile
    from skillgap.store import RunStore

    cases = [("The answer is True.", "True"), ("x = 3", "3"), ("It is 3:45 PM.", "3:45 PM"), ("So (A).", "(A)"),
             ("The result is 4.", "5")]
    records = [Record(Item(id=f"q{i}", prompt="?", answer=ref, skills=("s",)), out, auto(out, ref))
               for i, (out, ref) in enumerate(cases)]
    store = RunStore(tmp_path)
    store.open_run("r", "profile", "m", "d", 0, len(records), {})
    store.add("r", 1, enumerate(records))
    kept = store.records("r")
    store.close()
    assert [r.grade.rule for r in kept] == ["boolean", "numeric", "time", "exact", "numeric"]
    prof = build_profile(kept).to_dict()
    assert prof["rules"] == {"numeric": 2, "boolean": 1, "time": 1, "exact": 1}
    print_profile(prof)
    assert "graded by: numeric 2, boolean 1, time 1, exact 1" in capsys.readouterr().out


def _decoy_model(tmp_path: Path) -> Path:
    """A model folder that passes every check and cannot load: reaching the model is a different error."""
    decoy = tmp_path / "decoy-model"
    decoy.mkdir()
    (decoy / "config.json").write_text("{}")
    return decoy


def test_cli_checks_every_reference_before_the_model_loads(tmp_path, cli):
    path = shared_data() / "bbh" / "bbh.jsonl"
    decoy = _decoy_model(tmp_path)
    args = ["--model", str(decoy), "--backend", "hf", "--data", str(path), "--field", "prompt=input",
            "--field", "answer=target", "--field", "skills=task", "--limit", "4", "--runs-dir", str(tmp_path / "runs")]
    start = time.perf_counter()
    code, _, err = cli("profile", *args, "--grader", "numeric")
    refused = err.strip().splitlines()[-1]  # one line, no traceback
    assert code != 0 and "Traceback" not in err, err
    assert f"{path}:1: field 'target': reference answer 'False' is not a number" in refused
    assert "--grader auto" in refused and "exact" not in refused
    # run checks the test file before the diagnosis loads a model, whatever the training file
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"id": f"t{i}", "prompt": f"What is {i} + 1?", "answer": str(i + 1),
                                         "skills": ["add"]}) + "\n" for i in range(8)))
    code, _, err = cli("run", *args, "--grader", "numeric", "--train-data", str(train), "--budget", "4",
                       "--output-path", str(tmp_path / "out"))
    assert code != 0 and f"{path}:1: field 'target': reference answer 'False'" in err, err
    assert not (tmp_path / "out" / "diagnosis.json").exists()
    assert time.perf_counter() - start < 120  # no model was loaded
    assert not (tmp_path / "runs").exists()  # refused before a run was even opened
    # the default (auto) accepts every reference: the same command opens its run and gets as far as the model
    p = run_cli("profile", *args, cwd=tmp_path, check=False)  # a real process: the decoy fails with a traceback
    assert p.returncode != 0 and "reference answer" not in p.stderr, p.stderr
    from skillgap.store import RunStore

    store = RunStore(tmp_path / "runs")
    (opened,) = store.runs()
    store.close()
    assert opened["status"] == "running" and opened["n_items"] == 4 and json.loads(opened["config"])["identity"][
        "grader"] == "auto"


def test_judge_and_plugins_are_never_refused():
    from skillgap.grade import reference_problem

    assert reference_problem("judge", "") is None and reference_problem("skillgap.grade:exact", "") is None
    assert reference_problem("auto", " ") == "is empty, so no reply can match it"
