"""The targeting benchmark's statistics (benchmarks/targeting_efficiency.py) on cases worked by hand: the verdict against
uniform, per seed and over seeds, Holm over the family, and the examples-needed ratio."""

import json
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import common.py from beside them, as `python benchmarks/x.py` does
import targeting_efficiency as te  # noqa: E402

# four test items: two touch G = {a}, two exercise only the known skill b
ITEMS = [{"id": "i0", "skills": ["a"], "k": 1}, {"id": "i1", "skills": ["a"], "k": 1},
         {"id": "i2", "skills": ["b"], "k": 1}, {"id": "i3", "skills": ["b"], "k": 1}]


def row(seed: int, strategy: str, correct: str, budget: int = 64) -> dict:
    return {"seed": seed, "strategy": strategy, "replay": 0.0, "budget": budget, "correct": correct}


def test_versus_uniform_tests_each_seed_and_keeps_an_items_seeds_together():
    rows = [row(0, "uniform", "0010"), row(0, "stat-sel", "1110"),   # seed 0: stat-sel wins both G items
            row(1, "uniform", "1000"), row(1, "stat-sel", "0101"),   # seed 1: one won, one lost
            row(2, "stat-sel", "1111")]                              # seed 2: no uniform run, so left out
    v = te.versus_uniform({"rows": rows, "items": ITEMS}, ["a"], ["uniform", "stat-sel"], 64, [0.0], 400)
    s = v["r0"]["stat-sel"]
    assert s["seeds"] == [0, 1]
    assert [(d["gained"], d["lost"]) for d in s["per_seed"]] == [(2, 0), (1, 1)]
    assert s["per_seed"][0]["p_value"] == pytest.approx(0.5)          # exact McNemar: 2 of 2 discordant, 2 * 0.5^2
    # summed over the seeds, i0 changes 1 - 1 = 0 and i1 1 + 1 = 2: one item moved, up, by 2; under the null it
    # is -2 or +2 alike, so p = 1 (pooling the seeds' discordant pairs, 3 won / 1 lost, said 0.625)
    assert s["clustered"] == {"items_up": 1, "items_down": 0, "p_value": 1.0}
    assert "pooled" not in s
    assert s["g_macro"][0] == pytest.approx(0.5)                      # (1.0 - 0.0 + 0.5 - 0.5) / 2
    assert s["known_macro"][0] == pytest.approx(0.25)                 # (0.5 - 0.5 + 0.5 - 0.0) / 2
    assert s["g_macro"][1] <= 0.5 <= s["g_macro"][2]


ITEMS5 = [{"id": f"i{i}", "skills": ["a"], "k": 1} for i in range(4)] + [{"id": "i4", "skills": ["b"], "k": 1}]


def test_two_seeds_clustered_and_holm_worked_by_hand():
    """Two seeds, four G items. stat-sel: i0 and i1 right in both seeds, i2 in one; summed changes 2, 2, 1, 0.
    Under the null the signs of the three moved items flip together per item: the sum is 5 only for (+, +, +),
    1/8, so p = 2/8 = 0.25 (seeds pooled: 5 won, 0 lost, p = 2/32 = 0.0625, as if 5 independent items).
    curriculum: i0 in seed 0, i1 in seed 1: changes 1, 1, p = 2 * 1/4 = 0.5. Holm over the two: 0.25 * 2 = 0.5,
    then max(0.5, 0.5 * 1) = 0.5."""
    rows = [row(0, "uniform", "00000"), row(1, "uniform", "00000"),
            row(0, "stat-sel", "11100"), row(1, "stat-sel", "11000"),
            row(0, "curriculum", "10000"), row(1, "curriculum", "01000")]
    res = {"rows": rows, "items": ITEMS5}
    results = {"g": {"a": {"summary": {"versus_uniform": te.versus_uniform(
        res, ["a"], ["uniform", "stat-sel", "curriculum"], 64, [0.0], 200)}}}}
    te.holm_over_family(results)
    v = results["g"]["a"]["summary"]["versus_uniform"]["r0"]
    assert [(d["gained"], d["lost"], d["p_value"]) for d in v["stat-sel"]["per_seed"]] == [(3, 0, 0.25), (2, 0, 0.5)]
    assert v["stat-sel"]["clustered"] == {"items_up": 3, "items_down": 0, "p_value": 0.25, "p_holm": 0.5, "family": 2}
    assert v["curriculum"]["clustered"] == {"items_up": 2, "items_down": 0, "p_value": 0.5, "p_holm": 0.5, "family": 2}


def curve_rows(seed: int, strategy: str, bits: list[str]) -> list[dict]:
    return [row(seed, strategy, c, budget=b) for b, c in zip((0, 64, 128), bits)]


# G = {a} on four items (a fifth, known, never right); G accuracy per budget 0, 64, 128:
#   uniform  seed 0: 0, .25, .50   seed 1: 0, .25, .75   mean 0, .25, .625 -> reaches its .625 at 128
#   stat-sel seed 0: 0, .75, 1.0   seed 1: 0, .25, .75   mean 0, .50, .875 -> .625 at 64 + 64 * .125/.375 = 85.3
CURVES = (curve_rows(0, "uniform", ["00000", "10000", "11000"]) + curve_rows(1, "uniform", ["00000", "10000", "11100"])
          + curve_rows(0, "stat-sel", ["00000", "11100", "11110"]) + curve_rows(1, "stat-sel", ["00000", "10000", "11100"]))


def test_examples_needed_interpolates_and_says_never():
    curve = [(0, 0.1), (64, 0.2), (128, 0.4), (256, 0.5)]
    assert te.examples_needed(curve, 0.3) == pytest.approx(96)       # halfway from .2 at 64 to .4 at 128
    assert te.examples_needed(curve, 0.5) == 256
    assert te.examples_needed(curve, 0.1) == 0
    assert te.examples_needed(curve, 0.6) == math.inf
    # reached at the start, then dipping: the first budget that reaches it is 0, not an interpolation further on
    assert te.examples_needed([(0, 0.5), (64, 0.3), (128, 0.6)], 0.4) == 0


def test_examples_needed_ratio_is_read_off_the_seed_mean_curves():
    """Per seed the ratios are 128 / 42.7 = 3 (seed 0: .5 reached at 64 * .5/.75) and 128 / 128 = 1; their mean,
    2, is not what the README calls the ratio: on the mean curves uniform needs 128 and stat-sel 85.3, 1.5x."""
    r = te.ratios(CURVES, ITEMS5, ["a"], "stat-sel", [0, 1], [64, 128], 0.0, 300)
    assert r["ratio"] == pytest.approx(1.5)
    assert r["per_seed"] == [pytest.approx(3.0), pytest.approx(1.0)]
    assert r["ci"][0] <= 1.5 <= r["ci"][1]
    assert r == te.ratios(CURVES, ITEMS5, ["a"], "stat-sel", [0, 1], [64, 128], 0.0, 300)  # deterministic


def test_a_strategy_that_never_reaches_uniform_has_ratio_zero_not_an_average_with_it():
    never = [r | {"strategy": "curriculum", "correct": "00000" if r["budget"] == 0 else "10000"}
             for r in CURVES if r["strategy"] == "uniform"]
    r = te.ratios(CURVES + never, ITEMS5, ["a"], "curriculum", [0, 1], [64, 128], 0.0, 200)
    assert r["ratio"] == 0.0 and r["per_seed"] == [0.0, 0.0] and te.fmt_ratio(r["ratio"]) == "never"


def test_identical_runs_differ_by_exactly_zero():
    """Paired: every bootstrap draw takes the same items and seeds for both runs, so a run against itself has a
    zero-width interval, where unpaired draws would spread around zero."""
    rows = [row(0, "uniform", "1010"), row(0, "curriculum", "1010"),
            row(1, "uniform", "0110"), row(1, "curriculum", "0110")]
    v = te.versus_uniform({"rows": rows, "items": ITEMS}, ["a"], ["uniform", "curriculum"], 64, [0.0], 400)
    c = v["r0"]["curriculum"]
    assert c["g_macro"] == [0.0, 0.0, 0.0] and c["overall"] == [0.0, 0.0, 0.0]
    assert c["clustered"] == {"items_up": 0, "items_down": 0, "p_value": 1.0}
    assert not any(math.isnan(x) for x in c["known_macro"])


def test_rows_made_with_other_settings_are_refused_before_any_work(tmp_path):
    """Every row of a G is averaged and paired with the others: an invocation whose settings differ from the
    rows' is refused with the setting named, before a model loads (there is none: --model names nothing)."""
    out = tmp_path / "targeting.json"
    argv = ["--g", "round,unit_convert,order_ops", "--model", "no-such-model", "--seeds", "0", "--strategies",
            "uniform", "--replay", "0", "--work-dir", str(tmp_path / "work"), "--output-path", str(out)]
    settings = te.row_settings(te.parse_args(argv))
    rows = [row(0, "uniform", "0000", budget=b) | {"settings": settings | {"lr": "0.001"}} for b in (0, 64, 128, 256, 512)]
    out.write_text(json.dumps({"g": {"round.unit_convert.order_ops": {"rows": rows}}}))
    te.main(argv)  # the same settings: nothing to measure, nothing refused
    assert json.loads(out.read_text())["g"]["round.unit_convert.order_ops"]["rows"] == rows
    with pytest.raises(SystemExit, match=r"made with --max-new-tokens 128, not 96"):
        te.main(argv + ["--max-new-tokens", "96"])
    with pytest.raises(SystemExit, match=r"made with --budgets 64,128,256,512, not 64,128"):
        te.main(argv + ["--budgets", "64,128"])
    for r in rows:
        del r["settings"]
    out.write_text(json.dumps({"g": {"round.unit_convert.order_ops": {"rows": rows}}}))
    with pytest.raises(SystemExit, match="without recorded settings"):
        te.main(argv)


def test_the_diagnosis_table_scores_every_method_against_g():
    """On a planted student (a mastered prerequisite in most items), counts name it and the joint model does not;
    the table shows each method's precision and recall, the joint model's gap list included."""
    from planted import answers, counts, design

    d = design("prerequisite", seed=0)
    records = [r | {"status": "ok"} for r in answers(d, 0)]
    skills = {s for r in records for s in r["skills"]}
    accuracy = {s: sum(r["correct"] for r in records if s in r["skills"]) / sum(s in r["skills"] for r in records)
                for s in skills}
    q = te.diagnosis_quality(counts(records), list(d.gaps), accuracy, records)
    assert "sub_borrow" in q["top"] and q["precision"] < 1
    assert q["by_joint"]["precision"] == q["by_joint"]["recall"] == 1.0
    assert set(q["gaps"]["joint"]["top"]) == set(d.gaps) and q["gaps"]["joint"]["precision"] == 1.0
    lines = te.joint_lines({"3": q, "0": {"top": ["x"], "precision": 0.0, "recall": 0.0}})  # seed 0: no records
    assert len(lines) == 6 and lines[-1].startswith("| 3 | 0.") and "| 1.00 / 1.00 |" in lines[-1]
    assert q["joint_share_g"] == 1.0 and lines[-1].endswith("| 100% |")
