"""Verification statistics against independently computed references, and the worked cases of docs/run.md."""

import itertools
import math
import re

import numpy as np
import pytest
from scipy.stats import binomtest

from skillgap.errors import ConfigError, DataError
from skillgap.grade import Grade
from skillgap.items import Item
from skillgap.profile import Record, build_profile, wilson
from skillgap.verify import (VerifyConfig, adjust, assert_disjoint, compare, mcnemar_p, newcombe_paired,
                             two_proportion_p, unpaired_delta)


def _records(outcomes: list[str], skills: tuple[str, ...] = ("s",), prefix: str = "i") -> list[Record]:
    """One record per outcome: 'r' right, 'w' wrong, 'u' unparsed."""
    grades = {"r": Grade(1.0, "1", ""), "w": Grade(0.0, "2", ""), "u": Grade(None, None, "no number", "parse_error")}
    return [Record(Item(f"{prefix}{i}", "1", skills, prompt=f"q{prefix}{i}"), "", grades[o])
            for i, o in enumerate(outcomes)]


def _profile(outcomes: list[str], **kw) -> dict:
    return build_profile(_records(outcomes, **kw)).to_dict()


def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_pairs():
    for gained in range(0, 25, 3):
        for lost in range(0, 25, 4):
            ref = binomtest(lost, gained + lost, 0.5).pvalue if gained + lost else 1.0
            assert mcnemar_p(gained, lost) == pytest.approx(ref, rel=1e-12, abs=1e-15)
    assert mcnemar_p(12, 2) == pytest.approx(212 / 2**14)  # 2 * (C(14,0) + C(14,1) + C(14,2)) / 2^14
    assert mcnemar_p(1500, 1400) == pytest.approx(binomtest(1400, 2900).pvalue, rel=1e-9)  # no under- or overflow


def test_newcombe_paired_interval_matches_the_published_example():
    # Cavo et al. (2012), complete response before and after consolidation therapy: 59 both, 6 lost, 16 gained,
    # 80 neither. Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables" (2017), ch. 8: the
    # Newcombe square-and-add interval for before - after is -0.0621 (-0.1186 to -0.0046).
    lo, hi = newcombe_paired(59, 6, 16, 80)
    assert (lo, hi) == (pytest.approx(0.0046, abs=5e-5), pytest.approx(0.1186, abs=5e-5))


def test_every_interval_contains_its_estimate_exactly_at_the_edges():
    for n in range(1, 61):
        for c in range(n + 1):
            lo, hi = wilson(c, n)
            assert 0.0 <= lo <= c / n <= hi <= 1.0
        assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0
    for both, lost, gained, neither in [(0, 0, 0, 10), (10, 0, 0, 0), (0, 0, 10, 0), (0, 10, 0, 0), (3, 0, 5, 0),
                                        (0, 1, 0, 0), (5, 5, 5, 5), (40, 0, 1, 59)]:
        lo, hi = newcombe_paired(both, lost, gained, neither)
        d = (gained - lost) / (both + lost + gained + neither)
        assert -1.0 <= lo <= d <= hi <= 1.0


def test_unparsed_outputs_count_as_wrong_worked_case():
    # 100 items. Before: 15 right, 5 wrong, 80 unparsed (0.75 of the parsed). After: 50 right, 50 wrong, none
    # unparsed. Leaving the unparsed out compares 0.75 with 0.50 and calls it a regression (p = 0.041);
    # counting every item, 15% -> 50% is an improvement of 35 items.
    before = _profile(["r"] * 15 + ["w"] * 5 + ["u"] * 80)
    after = _profile(["r"] * 50 + ["w"] * 50)
    assert before["overall"]["n"] == 100 and before["overall"]["accuracy"] == 0.15
    assert before["overall"]["unparsed"] == 80 and before["overall"]["unparsed_rate"] == 0.8
    old = unpaired_delta({"n": 20, "correct": 15, "accuracy": 0.75}, {"n": 100, "correct": 50, "accuracy": 0.5})
    assert old["p_value"] == pytest.approx(0.041, abs=5e-4) and old["delta"] < 0  # the trap
    v = compare(before, after)
    o = v["overall"]
    assert o["delta"] == pytest.approx(0.35) and o["flag"] == "improved"
    assert (o["gained"], o["lost"], o["unparsed_before"], o["unparsed_after"]) == (35, 0, 80, 0)
    assert o["p_value"] == pytest.approx(binomtest(0, 35).pvalue)
    assert v["improved"] == ["s"] and v["regressions"] == []


def test_paired_test_is_more_powerful_worked_case():
    # 100 items, 50 -> 60 right: 48 right both times, 2 right -> wrong, 12 wrong -> right, 38 wrong both times.
    before = _profile(["r"] * 48 + ["r"] * 2 + ["w"] * 12 + ["w"] * 38)
    after = _profile(["r"] * 48 + ["w"] * 2 + ["r"] * 12 + ["w"] * 38)
    paired = compare(before, after)["overall"]
    assert paired["test"] == "mcnemar-exact" and (paired["gained"], paired["lost"]) == (12, 2)
    assert paired["p_value"] == pytest.approx(0.0129, abs=1e-4) and paired["flag"] == "improved"
    assert paired["p_value"] == pytest.approx(binomtest(2, 14).pvalue)
    assert paired["p_value_unpaired"] == pytest.approx(0.155, abs=5e-4)
    unpaired = compare(before, after, VerifyConfig(paired=False))["overall"]
    assert unpaired["test"] == "two-proportion-z" and unpaired["p_value"] == pytest.approx(0.155, abs=5e-4)
    assert unpaired["p_value"] == pytest.approx(two_proportion_p(50, 100, 60, 100)) and unpaired["flag"] == ""
    assert paired["delta_ci_low"] > 0 > unpaired["delta_ci_low"]  # the paired interval is narrower and clears 0
    assert paired["effect"]["odds_ratio"] == 6.0 and paired["effect"]["cohens_h"] > 0


def test_per_skill_and_per_k_pairs_are_the_items_that_carry_them():
    a = _records(["r"] * 10 + ["w"] * 10, skills=("add",), prefix="a")
    b = _records(["r"] * 10 + ["w"] * 10, skills=("sub", "mul"), prefix="b")
    before = build_profile(a + b).to_dict()
    a2 = _records(["w"] * 10 + ["w"] * 10, skills=("add",), prefix="a")  # add: 10 right -> wrong
    b2 = _records(["r"] * 10 + ["r"] * 10, skills=("sub", "mul"), prefix="b")  # sub (and mul): 10 wrong -> right
    v = compare(before, build_profile(a2 + b2).to_dict())
    add, sub = (next(d for d in v["skills"] if d["id"] == s) for s in ("add", "sub"))
    assert (add["gained"], add["lost"], add["flag"]) == (0, 10, "regression")
    assert (sub["gained"], sub["lost"], sub["flag"]) == (10, 0, "improved")
    # Holm over the three skills: each p = 2/2^10, adjusted x3
    assert add["p_adjusted"] == pytest.approx(3 * mcnemar_p(0, 10))
    assert [(d["k"], d["gained"], d["lost"]) for d in v["by_k"]] == [(1, 0, 10), (2, 10, 0)]
    assert v["overall"]["delta"] == 0.0 and v["overall"]["flag"] == ""


def test_different_items_are_refused_unless_unpaired():
    before = _profile(["r"] * 10, prefix="x")
    after = _profile(["r"] * 9 + ["w"], prefix="y")
    with pytest.raises(ConfigError, match="cover different items.*10 only before.*'x0'.*--unpaired"):
        compare(before, after)
    assert compare(before, after, VerifyConfig(paired=False))["overall"]["test"] == "two-proportion-z"
    old = {k: v for k, v in before.items() if k != "records"}
    with pytest.raises(ConfigError, match="no per-item records"):
        compare(old, after)


def test_unpaired_compare_counts_every_item_of_an_older_profile_too():
    # The worked case above, with "before" as an older skillgap wrote it: n and accuracy over the 20 parsed
    # items (0.75), the 80 unparsed beside them. Read as 0.75 it would be a regression to 0.50; counted over
    # every item it is 15% -> 50%.
    old = {"n": 20, "correct": 15, "accuracy": 0.75, "ci_low": 0.53, "ci_high": 0.89, "unparsed": 80}
    before = {"run_id": "old", "overall": old, "skills": [old | {"id": "s", "name": "s"}],
              "by_k": [old | {"k": 1}], "missing": {}}
    v = compare(before, _profile(["r"] * 50 + ["w"] * 50, prefix="y"), VerifyConfig(paired=False))
    for d in (v["overall"], v["skills"][0], v["by_k"][0]):
        assert (d["before"], d["n_before"], d["unparsed_before"]) == (0.15, 100, 80)
        assert d["delta"] == pytest.approx(0.35) and d["p_value"] == pytest.approx(two_proportion_p(15, 100, 50, 100))
    assert v["improved"] == ["s"] and v["regressions"] == []
    no_count = {k: v for k, v in old.items() if k != "unparsed"}
    with pytest.raises(ConfigError, match=r"before profile \(old\) was written by an older skillgap.*re-run"):
        compare(before | {"overall": no_count}, _profile(["r"] * 10), VerifyConfig(paired=False))


def test_the_verdict_line_states_overall_and_k_before_the_skills(capsys):
    # 4 skills x 25 items, 5 wrong -> right in each: no skill clears Holm (each p = 2/2^5), overall p = 2/2^20.
    # The last line must not read "improved: none" as if nothing happened.
    from skillgap.cli import print_comparison

    before = build_profile([r for s in "abcd" for r in _records(["w"] * 5 + ["r"] * 20, (s,), s)]).to_dict()
    after = build_profile([r for s in "abcd" for r in _records(["r"] * 25, (s,), s)]).to_dict()
    v = compare(before, after)
    assert v["improved"] == [] and v["overall"]["significant"] and v["overall"]["p_value"] == 2 / 2 ** 20
    print_comparison(before, after, v)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    ci = r"\[\+\d+\.\d, \+\d+\.\d\]"
    assert re.fullmatch(rf"overall \+20\.0 pp {ci}, p = 2e-6 \(significant\); k=1 \+20\.0 pp {ci}, p = 2e-6, "
                        r"Holm 2e-6 \(significant\); per skill after Holm: none improved, none regressed", last), last


def test_holm_and_benjamini_hochberg_adjusted_p_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted .005 .01 .03 .04 times 4, 3, 2, 1 = .02 .03 .06 .04 -> running max .02 .03 .06 .06
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted times 4/1, 4/2, 4/3, 4/4 = .02 .02 .04 .04 -> running min from the top: .02 .02 .04 .04
    assert adjust(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert sum(x <= 0.05 for x in adjust(p, "bh")) == 4 > sum(x <= 0.05 for x in adjust(p, "holm")) == 2
    with pytest.raises(ConfigError, match="Did you mean 'holm'"):
        VerifyConfig(correction="hlom").check()


def test_assert_disjoint_catches_ids_and_texts():
    train = [Item("a", "1", ("x",), prompt="What is 2 + 3?", split="train")]
    assert_disjoint(train, [Item("b", "1", ("x",), prompt="What is 2 + 4?")])
    with pytest.raises(DataError, match="'b' is also in the training set"):
        assert_disjoint(train, [Item("b", "1", ("x",), prompt="what is 2 + 3?  ")])


# ---------------------------------------------------------------- the delegated statistics against the old formulas


def _old_mcnemar_p(gained: int, lost: int) -> float:
    """The hand-written exact McNemar test scipy's binomtest replaced: twice the binomial tail, in integers."""
    m = gained + lost
    return 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, i) for i in range(min(gained, lost) + 1)) / 2**m)


def _old_wilson(correct: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The hand-written Wilson interval statsmodels' proportion_confint replaced."""
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if correct == 0 else min(p, max(0.0, centre - half))
    return lo, 1.0 if correct == n else max(p, min(1.0, centre + half))


def _old_adjust(p: list[float], method: str) -> list[float]:
    """The hand-written Holm step-down and Benjamini-Hochberg step-up statsmodels' multipletests replaced."""
    m, order, out = len(p), sorted(range(len(p)), key=lambda i: p[i]), [1.0] * len(p)
    running = 0.0 if method == "holm" else 1.0
    for rank in range(m) if method == "holm" else range(m - 1, -1, -1):
        i = order[rank]
        running = (max(running, min(1.0, (m - rank) * p[i])) if method == "holm"
                   else min(running, m * p[i] / (rank + 1)))
        out[i] = min(1.0, running)
    return out


def test_mcnemar_equals_the_old_integer_formula():
    for gained, lost in itertools.product(range(0, 41, 3), range(0, 41, 2)):
        assert mcnemar_p(gained, lost) == pytest.approx(_old_mcnemar_p(gained, lost), rel=1e-9, abs=1e-300)
    for gained, lost in [(1500, 1400), (300, 250), (1000, 3)]:
        assert mcnemar_p(gained, lost) == pytest.approx(_old_mcnemar_p(gained, lost), rel=1e-9, abs=1e-300)


def test_wilson_equals_the_old_formula():
    for n in range(1, 81):
        for c in range(n + 1):
            assert wilson(c, n) == pytest.approx(_old_wilson(c, n), abs=1e-12)
            assert wilson(c, n, 2.5758) == pytest.approx(_old_wilson(c, n, 2.5758), abs=1e-12)  # a 99% interval
    assert wilson(0, 0) == (0.0, 1.0)


def test_holm_and_bh_equal_the_old_step_methods_ties_included():
    rng = np.random.default_rng(0)
    for size in range(0, 13):
        for _ in range(4):
            p = [float(x) for x in rng.choice([0.001, 0.01, 0.02, 0.04, 0.3, 1.0], size)]  # many ties
            p += [float(x) for x in rng.uniform(0, 0.2, size)]
            for method in ("holm", "bh"):
                assert adjust(p, method) == pytest.approx(_old_adjust(p, method), abs=1e-12)
    assert adjust([], "holm") == [] == adjust([], "bh")
