import pytest

from skillgap.grade import Grade
from skillgap.items import Item
from skillgap.profile import Record, build_profile, first_broken_step, wilson
from skillgap.skills import Skill, SkillSet


def test_wilson_matches_reference_values():
    # Reference: statsmodels proportion_confint(8, 10, method="wilson") = (0.4902, 0.9433).
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.49016, abs=1e-4) and hi == pytest.approx(0.94332, abs=1e-4)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)


CHAIN = Item("c", "3", ("add_1digit", "fraction_of", "percent"), prompt="...", metadata={"steps": [
    {"skill": "add_1digit", "value": 9}, {"skill": "fraction_of", "value": 6}, {"skill": "percent", "value": 3}]})


def _rec(item, output, score):
    return Record(item, output, Grade(score, None, "", "ok" if score is not None else "parse_error"))


def test_first_broken_step_worked_by_hand():
    # 4 + 5 = 9 shown, then 2/3 of 9 should be 6 but the model wrote 5: fraction_of broke first.
    assert first_broken_step(_rec(CHAIN, "4 + 5 = 9. 2/3 of 9 is 5. 50% of 5 is 2.5", 0.0)) == ("fraction_of",)
    # Every intermediate right, final wrong: the last step is to blame.
    assert first_broken_step(_rec(CHAIN, "9, then 6, then 4", 0.0)) == ("percent",)
    # A bare wrong number shows no work: the break cannot be located, so every skill counts.
    assert first_broken_step(_rec(CHAIN, "The answer is 7", 0.0)) == CHAIN.skills
    # Right answers and ungradable outputs are missing nothing.
    assert first_broken_step(_rec(CHAIN, "3", 1.0)) == () and first_broken_step(_rec(CHAIN, "?", None)) == ()


def test_build_profile_counts_by_skill_and_k_and_every_item():
    one = Item("o", "85", ("add_1digit",), prompt="...", metadata={"steps": [{"skill": "add_1digit", "value": 9}]})
    skills = SkillSet((Skill("add_1digit", "Add"), Skill("fraction_of", "Frac"), Skill("percent", "Pct"),
                       Skill("unused", "Never seen")))
    recs = [_rec(one, "9", 1.0), _rec(one, "8", 0.0), _rec(one, "?", None),
            _rec(CHAIN, "4 + 5 = 9. 2/3 of 9 is 5.", 0.0)]
    p = build_profile(recs, skills).to_dict()
    add = next(s for s in p["skills"] if s["id"] == "add_1digit")
    # every item counts: the unparsed output is in n, and wrong
    assert (add["n"], add["correct"], add["unparsed"], add["accuracy"]) == (4, 1, 1, 0.25)
    assert add["unparsed_rate"] == 0.25 and add["alone"] == {"n": 3, "accuracy": pytest.approx(1 / 3)}
    assert [s["id"] for s in p["skills"]] == ["add_1digit", "fraction_of", "percent"]
    assert [(k["k"], k["n"], k["correct"], k["unparsed"]) for k in p["by_k"]] == [(1, 3, 1, 1), (3, 1, 0, 0)]
    assert p["missing"] == {"add_1digit": 1, "fraction_of": 1}  # a format failure names no missing skill
    assert p["overall"]["n"] == 4 and p["overall"]["unparsed"] == 1 and p["overall"]["accuracy"] == 0.25
    assert [(r["id"], r["correct"], r["status"]) for r in p["records"]] == [
        ("o", True, "ok"), ("o", False, "ok"), ("o", False, "parse_error"), ("c", False, "ok")]
