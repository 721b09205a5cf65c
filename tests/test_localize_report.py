"""Grafting's gain recovery, worked by hand, and the report-only path that rewrites committed results."""

import json
import shutil
from pathlib import Path

import pytest

from skillgap.recipes.localize import gain_recovery, main

ROOT = Path(__file__).parents[1]


def test_gain_recovery_is_the_share_of_the_fine_tunes_gain_kept():
    # SST-2 at 1e-4: base 58%, fine-tuned 85.5%, grafted 56%: (56 - 58) / (85.5 - 58) = -2 / 27.5
    assert gain_recovery(0.56, 0.58, 0.855) == pytest.approx(-0.0727, abs=1e-4)
    # place_value at 1e-3: (18 - 2) / (40 - 2) = 16 / 38, where grafted / fine-tuned would read 0.45
    assert gain_recovery(0.18, 0.02, 0.40) == pytest.approx(0.4211, abs=1e-4)
    assert gain_recovery(0.40, 0.02, 0.40) == 1.0 and gain_recovery(0.02, 0.02, 0.40) == 0.0
    assert gain_recovery(0.5, 0.6, 0.6) is None and gain_recovery(0.5, 0.6, 0.55) is None  # no gain to keep


def test_report_only_rewrites_a_committed_run_with_gain_recovery_and_its_settings(tmp_path):
    shutil.copytree(ROOT / "benchmarks" / "results" / "localize-sst2", tmp_path / "sst2")
    main([str(tmp_path / "sst2")])
    res = json.loads((tmp_path / "sst2" / "localize.json").read_text())
    g = res["skills"]["sst2"]["masks"]["0.0001"]["graft"]
    assert g["gain_recovery"] == pytest.approx(-2 / 27.5) and g["accuracy_ratio"] == pytest.approx(0.56 / 0.855)
    assert "recovery" not in g  # the ratio's old name, read as a share of the gain
    md = (tmp_path / "sst2" / "localize.md").read_text()
    assert "| sst2 | 0.0001 | 13,113 (1.2e-04) | 56.0% (-0.07) | 0.65 |" in md
    assert "a LoRA adapter merged into the base" in md and "3 steps" in md and "200 held-out test items" in md
