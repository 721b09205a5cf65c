"""Joint skill attribution: a case worked by hand, the planted-gap designs, confounded skills, thin evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from skillgap.attribution import (AttributionConfig, accuracy_gaps, attribute, confounded_groups, outcomes_of,
                                  targets)
from skillgap.errors import ConfigError, DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # planted.py, as the benchmark uses it
from planted import counts, design, answers, precision_recall, top  # noqa: E402


def rows(spec: list[tuple[tuple[str, ...], int, int]]) -> list[dict]:
    """(skills, right, wrong) -> graded rows."""
    out = []
    for skills, right, wrong in spec:
        out += [{"id": f"{'+'.join(skills)}-{i}", "skills": list(skills), "correct": i < right}
                for i in range(right + wrong)]
    return out


def test_a_case_worked_by_hand():
    """A alone: 80 of 100 right; A with B: 40 of 100. Counting wrong answers blames A (20 + 60 = 80) over B (60);
    B's accuracy is 40%. The product model reads it as p_A = 0.8 and p_B = 0.4 / 0.8 = 0.5: B is the weaker skill,
    and A is clear of the failures B causes (docs/attribution.md)."""
    data = outcomes_of(rows([(("A",), 80, 20), (("A", "B"), 40, 60)]))
    fit = attribute(data, AttributionConfig(bootstrap=50))
    assert fit.mastery["A"].estimate == pytest.approx(0.8, abs=0.02)
    assert fit.mastery["B"].estimate == pytest.approx(0.5, abs=0.03)
    assert fit.mastery["B"].accuracy == pytest.approx(0.4)
    assert counts([r | {"correct": bool(r["correct"])} for r in data]) == {"A": 80, "B": 60}
    assert fit.slip < 0.02  # two patterns cannot pin the slip: its prior keeps it near 0
    m = fit.mastery["A"]
    assert m.ci_low < 0.8 < m.ci_high and m.items == 200 and m.wrong == 80 and m.by_k == {"1": 100, "2": 100}
    assert [r["k"] for r in fit.check["by_k"]] == [1, 2] and not fit.check["misfit"]
    assert fit.check["by_k"][1]["predicted"] == pytest.approx(0.4, abs=0.02)


def test_verdicts_follow_the_interval_and_the_threshold():
    data = outcomes_of(rows([(("A",), 95, 5), (("A", "B"), 10, 90), (("C",), 30, 30), (("D",), 2, 1)]))
    fit = attribute(data, AttributionConfig(bootstrap=100, mastery=0.5))
    assert fit.mastery["A"].verdict == "mastered"
    assert fit.mastery["B"].verdict == "gap" and fit.gaps == ["B"]
    assert fit.mastery["C"].verdict == "unsure"  # 50% +- 13
    assert fit.mastery["D"].verdict == "thin"  # 3 items: below --min-items
    assert fit.shortfalls() == {"B": pytest.approx(0.5 - fit.mastery["B"].estimate)}
    assert "A" in fit.mastered() and "B" not in fit.mastered()
    # the logistic linear model beside it: A above C; B never occurs alone, and an additive (compensatory) model
    # cannot say how it does alone: its interval spans most of [0, 1], where the product model's does not
    assert fit.mastery["A"].lltm > fit.mastery["C"].lltm
    lo, hi = fit.mastery["B"].lltm_ci
    assert hi - lo > 0.9 and fit.mastery["B"].ci_high - fit.mastery["B"].ci_low < 0.2


def test_deterministic_given_the_seed():
    data = answers(design("companion", n=200), seed=1)
    a, b = attribute(data, AttributionConfig(bootstrap=40)), attribute(data, AttributionConfig(bootstrap=40))
    assert a.to_dict() == b.to_dict()
    # the interval is the wider of the bootstrap's and the posterior's; never narrower than either
    plain = attribute(data, AttributionConfig(bootstrap=0))
    assert all(a.mastery[s].ci_low <= plain.mastery[s].ci_low and a.mastery[s].ci_high >= plain.mastery[s].ci_high
               for s in a.mastery)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_prerequisite(seed):
    """(a) sub_borrow, mastered, sits in most items: STAT's counts put it first; the joint model clears it."""
    d = design("prerequisite", seed=seed)
    data = answers(d, seed)
    fit = attribute(data)
    assert set(d.gaps) <= set(fit.gaps), fit.gaps
    assert top({s: -m.estimate for s, m in fit.mastery.items()}, len(d.gaps)) == sorted(
        d.gaps, key=lambda s: fit.mastery[s].estimate)
    assert fit.mastery["sub_borrow"].verdict == "mastered"
    count_precision, _ = precision_recall(top(counts(data), len(d.gaps)), d.gaps)
    joint_precision, _ = precision_recall(fit.gaps[: len(d.gaps)], d.gaps)
    assert "sub_borrow" in top(counts(data), len(d.gaps)) and joint_precision == 1.0 > count_precision


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_companion(seed):
    """(b) compare, mastered, shares 70% of its items with the gap round: its accuracy sinks with round's failures,
    so per-skill accuracy flags it as a gap; the joint model does not."""
    d = design("companion", seed=seed)
    data = answers(d, seed)
    fit = attribute(data)
    assert set(d.gaps) == set(fit.gaps), fit.gaps
    assert fit.mastery["compare"].estimate > 0.75 and fit.mastery["compare"].accuracy < 0.5
    by_accuracy = list(accuracy_gaps(outcomes_of(data), AttributionConfig())[0])
    assert "compare" in by_accuracy and set(d.gaps) <= set(by_accuracy)
    assert precision_recall(fit.gaps, d.gaps)[0] == 1.0 > precision_recall(by_accuracy, d.gaps)[0]
    assert precision_recall(fit.gaps, d.gaps)[0] >= precision_recall(top(counts(data), len(d.gaps)), d.gaps)[0]


def test_planted_twins_are_reported_as_confounded():
    """(c) percent and fraction_of always occur together: one of them is a gap, and nothing tells which."""
    d = design("twins", seed=0)
    fit = attribute(answers(d, 0))
    assert ["percent", "fraction_of"] in [sorted(g, reverse=True) for g in fit.confounded]
    for s in d.twins:
        assert fit.mastery[s].verdict == "confounded" and s not in fit.gaps
        assert set(fit.mastery[s].group) == set(d.twins)
    assert {"round", "unit_convert", "order_ops"} <= set(fit.gaps)


def test_linear_dependence_is_confounding_too():
    """No two columns equal, yet A's items are exactly B's and C's: log p_A = log p_B + log p_C is unidentified."""
    import numpy as np

    q = np.array([[1, 1, 0], [1, 0, 1]], dtype=float)  # A B C: A with B, or A with C
    groups, tangled = confounded_groups(q)
    assert groups == [[0], [1], [2]] and tangled == [[0, 1, 2]]
    groups, tangled = confounded_groups(np.array([[1, 0], [0, 1], [1, 1]], dtype=float))
    assert tangled == []


def test_model_check_flags_a_missing_skill():
    """Compositions of 3 and 4 skills that fail far more than the product of their skills predicts: the inventory
    lacks a skill those items need (here: an unlisted one they all share)."""
    d = design("companion", seed=0)
    data = answers(d, 0)
    hidden = [r | {"correct": r["correct"] and (len(r["skills"]) < 3 or i % 5 == 0)} for i, r in enumerate(data)]
    assert attribute(data).check["misfit"] == []
    assert attribute(hidden).check["misfit"]


def test_thin_evidence_is_said_and_targets_fall_back():
    few = outcomes_of(rows([(("A",), 3, 5), (("B",), 1, 9)]))
    assert "too few" in attribute(few).thin
    unformatted = outcomes_of(rows([(("A",), 20, 20), (("B",), 5, 35)])
                              + [{"id": f"x{i}", "skills": ["A"], "correct": None} for i in range(100)])
    fit = attribute(unformatted)
    assert "answer format" in fit.thin and fit.evidence["format_failures"] == 100 and fit.evidence["graded"] == 80
    assert fit.mastery["A"].items == 40  # ungradable outputs stay out of the fit
    prof = {"records": [{**r, "status": "ok" if r["correct"] is not None else "parse_error"} for r in unformatted],
            "missing": {"A": 20, "B": 35}}
    t = targets(prof, "joint")
    assert "answer format" in t.fallback and t.weights == {"B": pytest.approx(0.6 - fit.mastery["B"].estimate)}
    assert targets(prof, "count").weights == {"A": 20.0, "B": 35.0} and targets(prof, "count").mastered is None


def test_targets_by_method():
    d = design("companion", seed=0)
    data = answers(d, 0)
    prof = {"records": data, "missing": counts(data)}
    joint, acc, count = targets(prof, "joint"), targets(prof, "accuracy"), targets(prof, "count")
    assert set(joint.weights) == set(d.gaps) and joint.fallback is None and "compare" in joint.mastered
    assert "compare" in acc.weights  # accuracy blames the companion
    assert count.weights == {s: float(n) for s, n in counts(data).items()}
    with pytest.raises(ConfigError, match="skillgap diagnose"):
        targets(prof, "teacher")
    assert targets(prof | {"diagnosis": {"method": "teacher"}}, "teacher").weights == count.weights
    with pytest.raises(ConfigError, match="Did you mean 'joint'"):
        targets(prof, "jiont")


def test_records_are_checked_with_line_and_field(tmp_path):
    with pytest.raises(DataError, match=r"r.jsonl:2: field 'correct'"):
        outcomes_of([{"id": 1, "skills": ["a"], "correct": True}, {"id": 2, "skills": ["a"], "correct": "yes"}],
                    str(tmp_path / "r.jsonl"))
    with pytest.raises(DataError, match="field 'skills'"):
        outcomes_of([{"id": 1, "skills": "a", "correct": True}])
    with pytest.raises(DataError, match="field 'chance'"):
        outcomes_of([{"id": 1, "skills": ["a"], "correct": True, "chance": 1.5}])
    assert outcomes_of([{"skills": ["a"], "correct": False, "choices": ["x", "y", "z", "w"]}])[0]["chance"] == 0.25


def test_chance_rate_of_choice_items_is_not_mastery():
    """Four-choice items answered at 25% by a skill the model lacks: chance, not a quarter of mastery."""
    data = outcomes_of([{"id": i, "skills": ["A"], "correct": i % 4 == 0, "chance": 0.25} for i in range(400)]
                       + [{"id": f"b{i}", "skills": ["B"], "correct": i % 10 < 9} for i in range(100)])
    fit = attribute(data)
    assert fit.mastery["A"].estimate < 0.1 and fit.mastery["A"].accuracy == 0.25
    assert fit.mastery["A"].lltm == pytest.approx(0.25, abs=0.01)  # the LLTM knows no chance rate: accuracy alone
    assert fit.mastery["B"].lltm_ci[0] < 0.9 < fit.mastery["B"].lltm_ci[1]
    json.dumps(fit.to_dict())  # serialisable as the CLI writes it
