"""The Skill-it synthetic suites: every answer re-derived independently, splits disjoint, streams seeded."""

import re

import pytest

from skillgap.grade import get_grader
from skillgap.suites import load_suite


def resolve_lego(prompt: str) -> tuple[int, int]:
    """(depth of the asked variable, its value), by walking the clauses as a person would."""
    clauses, question = re.match(r"Input: (.*) \. Output: (\w) = val$", prompt).groups()
    rules = {}
    for c in clauses.split(" , "):
        var, op, arg = c.split(" ")[0], c.split(" ")[2], c.split(" ")[3]
        rules[var] = (op, arg)
    value, depth = {}, {}
    while len(value) < len(rules):
        for var, (op, arg) in rules.items():
            if arg in "01":
                value[var], depth[var] = int(arg), 0
            elif arg in value and var not in value:
                value[var] = value[arg] if op == "val" else 1 - value[arg]
                depth[var] = depth[arg] + 1
    return depth[question], value[question]


def test_lego_answers_and_skills_follow_the_chain():
    suite = load_suite("lego")
    items = suite.generate("test", 200, seed=3)
    for it in items:
        depth, value = resolve_lego(it.prompt)
        assert it.skills == (f"depth_{depth}",) and it.answer == str(value) == it.completion
    assert {it.skills[0] for it in items} == set(suite.skills.ids)  # stratified over the 5 skills
    assert len({it.prompt for it in items}) == 200


def test_lego_matches_the_worked_example():
    # root f = 1; q = not f -> 0; c = val q -> 0 (depth 2); t = not c -> 1; m = val t -> 1
    assert resolve_lego("Input: q = not f , f = val 1 , c = val q , t = not c , m = val t . Output: c = val") == (2, 0)


def test_addition_answers_are_digits_of_the_sum():
    suite = load_suite("addition")
    for it in suite.generate("train", 300, seed=1):
        a, b, digit = re.match(r"Input: A = ([\d ]+) \+ ([\d ]+) , A (\d) = \? Output:$", it.prompt).groups()
        a, b = int(a.replace(" ", "")), int(b.replace(" ", "")),
        assert it.answer == str((a + b) // 10 ** int(digit) % 10) and it.skills == (f"digit_{digit}",)
    assert suite.skills["digit_2"].prerequisites == ("digit_1",)


@pytest.mark.parametrize("name,cut", [("lego", " . Output:"), ("addition", " , A ")])
def test_splits_never_share_a_problem_and_streams_are_seeded(name, cut):
    suite = load_suite(name)
    problems = {split: {it.prompt.split(cut)[0] for it in suite.generate(split, 600, seed=0)}
                for split in ("train", "validation", "test")}
    assert not problems["train"] & problems["test"] and not problems["validation"] & problems["test"]
    assert not problems["train"] & problems["validation"]
    a = [it.prompt for it in suite.generate("train", 50, seed=0)]
    assert a == [it.prompt for it in suite.generate("train", 50, seed=0)]
    assert a != [it.prompt for it in suite.generate("train", 50, seed=1)]
    skill = suite.skills.ids[1]
    assert all(it.skills == (skill,) and it.split == "train" for it in suite.synthesize(skill, 20, seed=0))


def test_suite_grader_reads_the_first_token():
    grade = get_grader(load_suite("lego").grader)
    assert grade(" 1", "1").correct and not grade("0 1", "1").correct
    assert grade("val", "1").status == "parse_error"
