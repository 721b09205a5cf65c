"""The targeting benchmark's verdict against uniform (benchmarks/targeting_efficiency.py), on a case worked by hand."""

import importlib.util
import math
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "targeting_efficiency", Path(__file__).parents[1] / "benchmarks" / "targeting_efficiency.py")
te = importlib.util.module_from_spec(spec)
spec.loader.exec_module(te)

# four test items: two touch G = {a}, two exercise only the known skill b
ITEMS = [{"id": "i0", "skills": ["a"], "k": 1}, {"id": "i1", "skills": ["a"], "k": 1},
         {"id": "i2", "skills": ["b"], "k": 1}, {"id": "i3", "skills": ["b"], "k": 1}]


def row(seed: int, strategy: str, correct: str, budget: int = 64) -> dict:
    return {"seed": seed, "strategy": strategy, "replay": 0.0, "budget": budget, "correct": correct}


def test_versus_uniform_pairs_runs_on_their_seed_and_items():
    rows = [row(0, "uniform", "0010"), row(0, "stat-sel", "1110"),   # seed 0: stat-sel wins both G items
            row(1, "uniform", "1000"), row(1, "stat-sel", "0101"),   # seed 1: one won, one lost
            row(2, "stat-sel", "1111")]                              # seed 2: no uniform run, so left out
    v = te.versus_uniform({"rows": rows, "items": ITEMS}, ["a"], ["uniform", "stat-sel"], 64, [0.0], 400)
    s = v["r0"]["stat-sel"]
    assert s["seeds"] == [0, 1]
    assert [(d["gained"], d["lost"]) for d in s["per_seed"]] == [(2, 0), (1, 1)]
    assert s["per_seed"][0]["p_value"] == pytest.approx(0.5)          # exact McNemar: 2 of 2 discordant, 2 * 0.5^2
    assert (s["pooled"]["gained"], s["pooled"]["lost"]) == (3, 1)
    assert s["pooled"]["p_value"] == pytest.approx(0.625)             # 2 * (1 + 4) / 16
    assert s["g_macro"][0] == pytest.approx(0.5)                      # (1.0 - 0.0 + 0.5 - 0.5) / 2
    assert s["known_macro"][0] == pytest.approx(0.25)                 # (0.5 - 0.5 + 0.5 - 0.0) / 2
    assert s["g_macro"][1] <= 0.5 <= s["g_macro"][2]


def test_identical_runs_differ_by_exactly_zero():
    """Paired: every bootstrap draw takes the same items and seeds for both runs, so a run against itself has a
    zero-width interval, where unpaired draws would spread around zero."""
    rows = [row(0, "uniform", "1010"), row(0, "curriculum", "1010"),
            row(1, "uniform", "0110"), row(1, "curriculum", "0110")]
    v = te.versus_uniform({"rows": rows, "items": ITEMS}, ["a"], ["uniform", "curriculum"], 64, [0.0], 400)
    c = v["r0"]["curriculum"]
    assert c["g_macro"] == [0.0, 0.0, 0.0] and c["overall"] == [0.0, 0.0, 0.0]
    assert (c["pooled"]["gained"], c["pooled"]["lost"], c["pooled"]["p_value"]) == (0, 0, 1.0)
    assert not any(math.isnan(x) for x in c["known_macro"])
