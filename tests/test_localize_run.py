"""`skillgap localize` end to end: a real (tiny, from-scratch) model fine-tuned in full, masks found, grafted,
profiled, saved, resumed."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import output, run_cli
from skillgap.localize import Mask

SKILLS = "add_1digit,mul_facts"


@pytest.fixture(scope="module")
def localized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cwd = tmp_path_factory.mktemp("localize")
    run_cli("train", "--model", "scratch-tiny", "--suite", "arith", "--strategy", "uniform", "--method", "full",
            "--budget", "64", "--train-batch-size", "8", "--learning-rate", "3e-3", "--output-path", "ft/", cwd=cwd)
    # lr 1e12 instead of the paper's 1e7: 8 steps of a tiny model move its weights too little for 1e7 to flip any
    # coordinate, and this test is about what happens when the scores do flip some
    args = ("localize", "--model", "scratch-tiny", "--finetuned", "ft/model", "--skills", SKILLS, "--sparsity", "1e-2",
            "--train-limit", "16", "--val-limit", "8", "--test-limit", "8", "--steps", "2", "--graft-lr", "1e12",
            "--max-new-tokens", "16", "--keep-models", "--output-path", "loc/")
    p = run_cli(*args, cwd=cwd)
    assert "Skill localization by grafting" in p.stdout
    return cwd, cwd / "loc"


@pytest.mark.slow
def test_masks_baselines_and_profiles_are_consistent(localized):
    cwd, out = localized
    res = json.loads((out / "localize.json").read_text())
    total = res["graftable_parameters"]
    assert 0 < total < res["all_parameters"]  # decoder blocks only: embeddings stay pre-trained
    for skill in SKILLS.split(","):
        r = res["skills"][skill]
        row = r["masks"]["0.01"]
        graft = Mask.load(out / "masks" / f"{skill}-graft-0.01.safetensors")
        assert row["graft"]["count"] == graft.count and graft.total == total
        assert row["movement"]["count"] == int(0.01 * total)
        assert row["random"]["count"] == graft.count  # the random baseline at the graft's real size
        flips = sum(h["flipped_in"] + h["flipped_out"] for h in row["history"])
        assert flips > 0 and len(row["history"]) == 2
        for kind in ("graft", "movement", "random"):
            assert row[kind]["n"] == 8  # every held-out item counted, unparsed ones included
            assert row[kind]["correct"] <= row[kind]["n"]
        assert r["finetuned"]["n"] == r["base"]["n"] == 8
    mat = res["overlap"]["0.01"]
    a = Mask.load(out / "masks" / "add_1digit-graft-0.01.safetensors")
    b = Mask.load(out / "masks" / "mul_facts-graft-0.01.safetensors")
    assert mat[0][0] == 1.0 and mat[0][1] == pytest.approx(a.overlap(b)) and mat[1][0] == pytest.approx(b.overlap(a))
    assert (out / "overlap-0.01.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_grafted_model_is_fine_tuned_on_the_mask_and_pre_trained_elsewhere(localized):
    cwd, out = localized
    mask = Mask.load(out / "masks" / "add_1digit-graft-0.01.safetensors")
    config = json.loads((out / "config.json").read_text())
    pre = load_file(str(Path(config["base"]["model"]) / "model.safetensors"))
    ft = load_file(str(cwd / "ft" / "model" / "model.safetensors"))
    grafted = load_file(str(out / "grafted" / f"add_1digit-graft-0.01-{mask.digest()}" / "model.safetensors"))
    name = max(mask.touched(), key=mask.touched().get)
    on = mask.dense(name)
    g, p, f = grafted[name].float(), pre[name].float(), ft[name].float()
    assert torch.allclose(g[on], f[on], rtol=0, atol=1e-6)  # θ_pre + τ: the fine-tuned value, to float rounding
    assert torch.equal(g[~on], p[~on])
    assert not torch.equal(f[on], p[on])  # the mask grafts coordinates that did move
    emb = next(n for n in pre if "embed" in n)
    assert torch.equal(grafted[emb], pre[emb])


@pytest.mark.slow
def test_a_rerun_resumes_and_other_settings_are_refused(localized, cli, monkeypatch):
    cwd, out = localized
    monkeypatch.chdir(cwd)  # the reruns run in this process (cli): a subprocess each would pay torch's imports again
    path = out / "masks" / "add_1digit-graft-0.01.safetensors"
    before, stamp = json.loads((out / "localize.json").read_text()), path.stat().st_mtime_ns
    args = ["localize", "--model", "scratch-tiny", "--finetuned", "ft/model", "--skills", SKILLS, "--sparsity", "1e-2",
            "--train-limit", "16", "--val-limit", "8", "--test-limit", "8", "--steps", "2", "--graft-lr", "1e12",
            "--max-new-tokens", "16", "--keep-models", "--output-path", "loc/"]
    output(*cli(*args))
    assert path.stat().st_mtime_ns == stamp  # the mask was not searched again
    after = json.loads((out / "localize.json").read_text())
    assert after["skills"] == before["skills"]
    more = list(args)
    more[more.index("--sparsity") + 1] = "1e-2,2e-2"  # another sparsity level extends the run
    output(*cli(*more))
    assert path.stat().st_mtime_ns == stamp and (out / "masks" / "add_1digit-graft-0.02.safetensors").is_file()
    assert set(json.loads((out / "localize.json").read_text())["skills"]["add_1digit"]["masks"]) == {"0.01", "0.02"}
    gen = cwd / "ft" / "model" / "generation_config.json"
    saved = gen.read_text()
    try:  # the fine-tune changed in its folder (same path, same settings): another model, refused as well
        gen.write_text(json.dumps(json.loads(saved) | {"repetition_penalty": 1.3}))
        code, _, err = cli(*args)
        assert code == 2 and "other settings, models or items" in err
    finally:
        gen.write_text(saved)
    args[args.index("--steps") + 1] = "3"
    code, _, err = cli(*args)
    assert code == 2 and "other settings" in err


def test_unknown_skill_answers_did_you_mean(tmp_path, cli):
    code, _, err = cli("localize", "--model", "scratch-tiny", "--finetuned", str(tmp_path), "--skills", "add_1digt",
                       "--output-path", str(tmp_path / "loc"))
    assert code == 2 and "add_1digit" in err


@pytest.mark.slow
def test_a_classification_task_is_localized_by_label_words_with_calibration(tmp_path, tiny_model_dir, cli):
    """SST-2 as the paper runs it: label-word accuracy and ECE, scored in memory. A mask larger than the delta's
    support grafts all of it, so its model is the fine-tuned one: the same probabilities, not the base's."""
    from conftest import shared_data
    from test_library import _adapter

    src = shared_data() / "text-classification"
    (tmp_path / "sst2_train.jsonl").write_text("".join(src.joinpath("sst2_train.jsonl").read_text().splitlines(True)[:40]))
    (tmp_path / "sst2_test.jsonl").write_text("".join(src.joinpath("sst2_test.jsonl").read_text().splitlines(True)[:12]))
    ft = _adapter(tiny_model_dir, tmp_path / "ft", 0)  # q_proj and down_proj: about a third of the block weights
    args = ["localize", "--model", str(tiny_model_dir), "--backend", "hf", "--finetuned", str(ft), "--data",
            "sst2_train.jsonl", "--format", "classification", "--test-data", "sst2_test.jsonl", "--skills", "sst2",
            "--sparsity", "0.6,0.01", "--train-limit", "8", "--val-limit", "4", "--test-limit", "12", "--steps", "2",
            "--output-path", "loc"]
    p = run_cli(*args, cwd=tmp_path)
    assert "Expected calibration error" in p.stdout
    res = json.loads((tmp_path / "loc" / "localize.json").read_text())
    assert res["measure"] == "label words"
    r = res["skills"]["sst2"]
    assert r["finetuned"]["n"] == r["base"]["n"] == 12
    assert abs(r["finetuned"]["nll"] - r["base"]["nll"]) > 1e-2  # the adapter changes the model
    whole = r["masks"]["0.6"]["movement"]
    assert whole["nll"] == pytest.approx(r["finetuned"]["nll"], rel=1e-4)
    assert whole["ece"] == pytest.approx(r["finetuned"]["ece"], abs=1e-5) and whole["accuracy_ratio"] == pytest.approx(1)
    for kind in ("graft", "movement", "random"):
        assert 0 <= r["masks"]["0.01"][kind]["ece"] <= 1 and r["masks"]["0.01"][kind]["n"] == 12
    assert (tmp_path / "loc" / "masks" / "sst2-graft-0.01.safetensors").is_file()
    scores = sorted((tmp_path / "loc" / "profiles").glob("*.json"))
    assert {p.stem for p in scores} >= {"sst2-base", "sst2-ft", "sst2-graft-0.01", "sst2-random-0.6"}
    stamps = [p.stat().st_mtime_ns for p in scores]
    run_cli(*args, cwd=tmp_path)  # resumed: nothing scored again
    assert [p.stat().st_mtime_ns for p in scores] == stamps
    assert json.loads((tmp_path / "loc" / "localize.json").read_text())["skills"] == res["skills"]
    code, _, err = cli(*[a if a != "sst2" else "sst" for a in args])
    assert code == 2 and "Did you mean 'sst2'" in err
    no_test = [a for a in args if a not in ("--test-data", "sst2_test.jsonl")]
    code, _, err = cli(*no_test[:-1], "loc2")
    assert code == 2 and "--test-data" in err and not (tmp_path / "loc2").exists()
