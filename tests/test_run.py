"""`skillgap run` end to end on the real embedded model, at a size a test can afford."""

import json
import sqlite3

import pytest
from conftest import run_cli

from skillgap.data import DataConfig, load_items
from skillgap.items import read_jsonl
from skillgap.verify import assert_disjoint

ARGS = ["run", "--model", "smollm2-135m", "--suite", "arith", "--strategy", "stat-sel", "--budget", "16",
        "--limit", "12", "--diagnose-limit", "16", "--seed", "3", "--train-batch-size", "8", "--eval-every", "2",
        "--max-new-tokens", "64", "--pool-size", "600", "--device", "cpu", "--output-path", "out",
        "--runs-dir", "runs"]


@pytest.mark.slow
@pytest.mark.timeout(1500)  # measured over 600 s on 2 shared cores: the real model, profiled three times and trained
def test_run_real_model_profile_target_train_verify_report(tmp_path, smollm_dir, cli):
    first = run_cli(*ARGS, cwd=tmp_path)
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert {"before", "after", "deltas", "mixture", "training", "diagnosis"} <= set(report)
    assert (out / "report.html").is_file() and report["verdict"] in first.stdout \
        and report["verdict"].startswith("overall ")

    # Targeting followed the diagnosis: every training item exercises a skill it named missing.
    missing = set(report["diagnosis"]["missing"])
    train = read_jsonl(out / "train.jsonl")
    assert len(train) == 16 and all(missing & set(it.skills) for it in train)
    # Verification used items the model never trained on, the same ones before and after.
    test_items, _, _ = load_items(DataConfig(suite="arith", split="test", limit=12, seed=3))
    assert_disjoint(train, test_items)
    assert report["before"]["overall"]["n"] == 12
    assert report["after"]["data"] == report["before"]["data"]
    assert report["after"]["model"] != report["before"]["model"]  # the adapter is part of the identity
    # Paired: the same items before and after, each skill's delta made of the items that flipped.
    assert [r["id"] for r in report["before"]["records"]] == [r["id"] for r in report["after"]["records"]]
    assert report["deltas"]["test"] == "mcnemar-exact" and report["deltas"]["correction"] == "holm"
    skills = {d["id"]: d for d in report["deltas"]["skills"]}
    for s in report["after"]["skills"]:
        d = skills[s["id"]]
        assert d["after"] == s["accuracy"] and d["delta"] == pytest.approx(d["after"] - d["before"])
        assert d["delta"] == pytest.approx((d["gained"] - d["lost"]) / s["n"]) and d["n"] == s["n"]
        assert d["delta_ci_low"] <= d["delta"] <= d["delta_ci_high"] and d["p_value"] <= d["p_adjusted"]
    assert report["training"]["steps"] == 2 and {v["step"] for v in report["training"]["val_loss"]} == {0, 2}
    assert (out / "adapter" / "adapter_model.safetensors").is_file()

    # A finished run re-run does no work: nothing generated in the new sessions, no retraining.
    db = sqlite3.connect(tmp_path / "runs" / "skillgap.db")
    last = db.execute("SELECT MAX(session) FROM sessions").fetchone()[0]
    stamp = (out / "train_result.json").stat().st_mtime_ns
    run_cli(*ARGS, cwd=tmp_path)
    assert db.execute("SELECT COUNT(*) FROM items WHERE session > ?", (last,)).fetchone()[0] == 0
    assert (out / "train_result.json").stat().st_mtime_ns == stamp

    cmp = run_cli("compare", "out/before.json", "out/after.json", cwd=tmp_path)
    assert "overall" in cmp.stdout and "per skill after Holm:" in cmp.stdout and "exact McNemar" in cmp.stdout
    unpaired = run_cli("compare", "out/before.json", "out/after.json", "--unpaired", "--correction", "bh",
                       cwd=tmp_path)
    assert "two-proportion z-test (unpaired)" in unpaired.stdout and "Benjamini-Hochberg" in unpaired.stdout
    # a profile of other items cannot be paired with these: a clear error, not a silent unpaired test
    run_cli("profile", "--model", "smollm2-135m", "--suite", "arith", "--limit", "3", "--seed", "4",
            "--max-new-tokens", "16", "--output-path", "other.json", "--runs-dir", "runs", cwd=tmp_path)
    code, _, err = cli("compare", "out/before.json", "other.json")
    assert code == 2 and "cover different items" in err and "--unpaired" in err
    by_id = run_cli("compare", report["before"]["run_id"], report["after"]["run_id"][:24], "--runs-dir", "runs",
                    cwd=tmp_path)
    assert by_id.stdout.split("\n")[1:] == cmp.stdout.split("\n")[1:]
