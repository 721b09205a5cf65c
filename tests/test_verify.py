import pytest

from skillgap.errors import DataError
from skillgap.items import Item
from skillgap.profile import wilson
from skillgap.verify import assert_disjoint, compare, holm, two_proportion_p


def _score(correct: int, n: int) -> dict:
    lo, hi = wilson(correct, n)
    return {"n": n, "correct": correct, "accuracy": correct / n, "ci_low": lo, "ci_high": hi, "unparsed": 0}


def _profile(scores: dict[str, tuple[int, int]]) -> dict:
    total = (sum(c for c, _ in scores.values()), sum(n for _, n in scores.values()))
    return {"run_id": "r", "overall": _score(*total), "missing": {},
            "skills": [{"id": s, "name": s} | _score(c, n) for s, (c, n) in scores.items()],
            "by_k": [{"k": 1} | _score(*total)]}


def test_two_proportion_p_worked_by_hand():
    # 10/20 vs 15/20: pooled 0.625, se = sqrt(.625 * .375 * (1/20 + 1/20)) = 0.15309, z = 1.633 -> p = 0.1025
    assert two_proportion_p(10, 20, 15, 20) == pytest.approx(0.1025, abs=1e-4)
    assert two_proportion_p(0, 10, 0, 10) == 1.0 and two_proportion_p(1, 0, 1, 5) == 1.0


def test_holm_step_down():
    # alpha 0.05 over 4 tests: thresholds .0125, .0167, .025, .05 in p order
    assert holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    assert holm([0.001, 0.012, 0.02, 0.04]) == [True, True, True, True]


def test_compare_flags_improvements_and_regressions():
    before = _profile({"up": (5, 50), "down": (45, 50), "same": (25, 50)})
    after = _profile({"up": (40, 50), "down": (10, 50), "same": (27, 50)})
    v = compare(before, after)
    flags = {d["id"]: d["flag"] for d in v["skills"]}
    assert flags == {"up": "improved", "down": "regression", "same": ""}
    assert v["improved"] == ["up"] and v["regressions"] == ["down"]
    up = next(d for d in v["skills"] if d["id"] == "up")
    assert up["delta"] == pytest.approx(0.7) and up["delta_ci_low"] > 0 and up["delta_ci_high"] < 1


def test_assert_disjoint_catches_ids_and_texts():
    train = [Item("a", "1", ("x",), prompt="What is 2 + 3?", split="train")]
    assert_disjoint(train, [Item("b", "1", ("x",), prompt="What is 2 + 4?")])
    with pytest.raises(DataError, match="'b' is also in the training set"):
        assert_disjoint(train, [Item("b", "1", ("x",), prompt="what is 2 + 3?  ")])
