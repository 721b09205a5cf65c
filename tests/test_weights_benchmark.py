"""The weights benchmark's comparisons (benchmarks/weights.py) on a case worked by hand, and its resume check."""

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import common.py from beside them, as `python benchmarks/x.py` does
import weights as wb  # noqa: E402


def bits(s: str) -> dict[str, bool]:
    return {f"i{i}": c == "1" for i, c in enumerate(s)}


# two seeds, four items in one group. Against the joint adapter:
#   "tied"   gains i0 in both seeds, i1 and i2 in seed 0: summed changes 2, 1, 1, 0 -> (+, +, +) alone reaches 4:
#            p = 2/8 = 0.25 (pooled, 4 won / 0 lost: 0.125)
#   "same"   equals the joint adapter: no item changes, so it is no test and not in Holm's family
#   "worse"  loses i3 in both seeds: one item, summed -2: p = 1
RES = {"groups": {"g": ["i0", "i1", "i2", "i3"]}, "order": ["base", "joint", "tied", "same", "worse"],
       "seeds": {"0": {"base": bits("0000"), "joint": bits("0001"), "tied": bits("1111"), "same": bits("0001"),
                       "worse": bits("0000")},
                 "1": {"base": bits("0000"), "joint": bits("0001"), "tied": bits("1001"), "same": bits("0001"),
                       "worse": bits("0000")}}}


def test_versus_joint_per_seed_and_over_seeds_with_holm():
    v = {x["model"]: x for x in wb.versus(RES, "joint", 200)}
    assert [(d["gained"], d["lost"], d["p_value"]) for d in v["tied"]["per_seed"]] == [(3, 0, 0.25), (1, 0, 1.0)]
    assert (v["tied"]["items_up"], v["tied"]["items_down"], v["tied"]["p_value"]) == (3, 0, 0.25)
    assert v["tied"]["delta"][0] == pytest.approx((0.75 + 0.25) / 2)
    assert (v["worse"]["items_down"], v["worse"]["p_value"]) == (1, 1.0)
    assert "p_holm" not in v["same"]  # no item changed: p = 1 in any family
    assert (v["tied"]["family"], v["tied"]["p_holm"], v["worse"]["p_holm"]) == (2, 0.5, 1.0)  # 0.25 * 2; then 1


def test_the_report_states_ext_sub_and_linear_settings(tmp_path):
    res = RES | {"config": {"model": "m", "skills": "a,b", "budget": "8"}}
    res["summary"] = wb.summarize(res, 50)
    wb.report(res, tmp_path / "w.md")
    text = (tmp_path / "w.md").read_text()
    assert "anti-expert is A's own library adapter" in text and "`linear` is measured at weights 1, 1 only" in text
    assert "pooled" not in text


def test_results_made_with_other_settings_are_refused_not_dropped(tmp_path):
    """Rows made with another --budget are neither mixed with new ones nor silently discarded: refused with the
    option named, before a model loads (there is none: --model names nothing)."""
    out = tmp_path / "weights.json"
    saved = {"config": {"model": "no-such-model", "budget": "128"}, "seeds": {"0": {"base": {}}}}
    out.write_text(json.dumps(saved))
    argv = ["--model", "no-such-model", "--work-dir", str(tmp_path / "work"), "--output-path", str(out),
            "--test-limit", "4", "--seeds", "0"]
    with pytest.raises(SystemExit, match=r"made with --budget 128, not 256"):
        wb.main(argv)
    assert json.loads(out.read_text()) == saved
    (tmp_path / "work").mkdir(exist_ok=True)
    (tmp_path / "work" / "settings.json").write_text(json.dumps({"lr": "0.5"}))
    with pytest.raises(SystemExit, match=r"settings.json: made with --lr 0.5, not 0.001"):
        wb.main(argv[:4] + ["--output-path", str(tmp_path / "new.json")] + argv[6:])
