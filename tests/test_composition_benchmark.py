"""The composition benchmark (benchmarks/composition.py): groups within each k, verdicts withheld from small groups,
the held-out-skills regime, and the committed results regrouped."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from skillgap.errors import ConfigError

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import common.py from beside them, as `python benchmarks/x.py` does
import composition as co  # noqa: E402

PAIRS = [tuple(p.split("+")) for p in co.PAIRS.split(",")]


def test_unseen_and_seen_combinations_are_compared_within_each_k():
    items = [{"k": 1, "skills": ["a"]}, {"k": 2, "skills": ["b", "a"]}, {"k": 2, "skills": ["a", "c"]},
             {"k": 4, "skills": ["c", "a", "d", "b"]}, {"k": 3, "skills": ["c", "e", "f"]}]
    assert co.groups(items, [("a", "b")]) == {
        "k=1": [0], "k=2": [1, 2], "k=2 seen": [2], "k=2 unseen pair": [1], "k=3": [4], "k=3 seen": [4],
        "k=4": [3], "k=4 unseen pair": [3]}
    # a held-out skill takes precedence over a held-out pair in the same item
    assert co.groups(items, [("a", "b")], ["e", "d"]) == {
        "k=1": [0], "k=2": [1, 2], "k=2 seen": [2], "k=2 unseen pair": [1], "k=3": [4], "k=3 unseen skill": [4],
        "k=4": [3], "k=4 unseen skill": [3]}


def test_a_verdict_needs_the_items_to_detect_a_25_point_change():
    # (z_0.975 + z_0.8)^2 * 2 * 0.25 / d^2 = (1.95996 + 0.84162)^2 * 0.5 / d^2 = 3.92443 / d^2
    assert co.min_items() == 63 == co.MIN_ITEMS  # 3.92443 / 0.0625 = 62.79
    assert co.min_items(0.5) == 16  # 15.70
    assert co.verdict([0.3, 0.1, 0.5], 62) == "too few items for a verdict (n = 62 < 63)"
    assert co.verdict([0.3, 0.1, 0.5], 63) == "lift"
    assert co.verdict([-0.3, -0.5, -0.1], 90) == "drop"
    assert co.verdict([0.0, -0.1, 0.1], 90) == "no change detected"


def test_the_committed_results_regrouped_withhold_verdicts_on_small_groups(tmp_path):
    """The committed run's 37 "unseen pairs" were 19 k = 4 items and 5 k = 2 ones: within k, no unseen group is large
    enough for a verdict. The review computed 20.0% (k <= 3 training) against 6.7% (k = 1) on the 5 k = 2 ones."""
    res = json.loads((ROOT / "benchmarks" / "results" / "composition.json").read_text())
    co.report(res, tmp_path / "c.md", 200)
    assert [len(v) for v in co.groups(res["items"], PAIRS).values()] == [120, 90, 85, 5, 60, 47, 13, 30, 11, 19]
    md = (tmp_path / "c.md").read_text()
    table = md.split("Against training")[1].split("Paired against")[0]
    assert "| k=2 unseen pair | 5 | +6.7 [" in table and "too few items for a verdict (n = 5 < 63)" in table
    assert "| k=2 seen | 85 | +28.2 [" in table and table.count("lift") >= 2
    assert all("too few items" in line for line in table.splitlines() if line.startswith("| k=4"))
    first = md.split("Against training")[0]
    k2_unseen = next(line for line in first.splitlines() if line.startswith("| k=2 unseen pair"))
    assert k2_unseen.split(" | ")[3].startswith("6.7%") and k2_unseen.split(" | ")[5].startswith("20.0%")


def test_held_out_skills_are_trained_alone_and_never_composed():
    from skillgap.data import load_items

    cfg = co.training_data((1, 2, 3), PAIRS, ["place_value"], seed=0)
    items = load_items(replace(cfg, limit=400))[0]
    assert {it.k for it in items} == {1, 2, 3}
    assert any(it.skills == ("place_value",) for it in items)
    assert not any("place_value" in it.skills for it in items if it.k > 1)
    assert not any({a, b} <= set(it.skills) for it in items for a, b in PAIRS)
    with pytest.raises(Exception, match="place_value"):
        co.training_data((1,), PAIRS, ["place_valu"], seed=0)


def test_test_items_fill_every_k_by_group_cell():
    items = co.draw_test_items(PAIRS, ["place_value"], per_group=3)
    cells = [co.cell(it.k, list(it.skills), PAIRS, ["place_value"]) for it in items]
    assert sorted(set(cells)) == ["k=1"] + [f"k={k} {g}" for k in (2, 3, 4)
                                           for g in ("seen", "unseen pair", "unseen skill")]
    assert all(cells.count(c) == 3 for c in cells) and {it.split for it in items} == {"test"}
    assert len({it.id for it in items}) == len(items)


@pytest.mark.slow
def test_smoke_run_with_held_out_skills(tmp_path):
    """The script's smoke run on a from-scratch model: both regimes train without composing the held-out skill,
    every cell is measured, and a re-run trains nothing."""
    out = tmp_path / "c.json"
    args = ["--model", "scratch-tiny", "--backend", "hf", "--budget", "16", "--train-batch-size", "4", "--per-group",
            "2", "--seeds", "0", "--regimes", "1;1,2", "--hold-out-skills", "place_value", "--max-new-tokens", "16",
            "--bootstrap", "50", "--work-dir", str(tmp_path / "work"), "--output-path", str(out)]
    co.main(args)
    res = json.loads(out.read_text())
    assert res["runs"]["1"]["0"]["trained_k"] == [1] and res["runs"]["1,2"]["0"]["trained_k"] == [1, 2]
    trained = [json.loads(x) for x in (tmp_path / "work" / "k12" / "seed0" / "train.jsonl").read_text().splitlines()]
    assert not any("place_value" in x["skills"] for x in trained if len(x["skills"]) > 1)
    assert len(res["items"]) == 20 and len(res["base"]["correct"]) == 20
    md = out.with_suffix(".md").read_text()
    assert "| k=3 unseen skill | 2 |" in md and "`place_value`" in md and "too few items for a verdict" in md
    stamp = out.stat().st_mtime_ns
    co.main(args)  # resumed: every run is in the results already
    assert out.stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="other settings .--budget 16"):  # never mixed with, nor dropped for, others
        co.main([a if a != "16" else "32" for a in args])
    assert out.stat().st_mtime_ns == stamp
