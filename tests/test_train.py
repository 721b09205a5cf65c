"""Training through TRL: the adapter, the logs, skipping a finished training, and resuming after kill -9.

These use a randomly initialised 2-layer Llama (real transformers, TRL and PEFT), so they are
about the plumbing; the real model's training is covered by the `skillgap run` test.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import run_cli

from skillgap.items import write_jsonl
from skillgap.suites import load_suite
from skillgap.train import to_record


def test_records_are_trl_conversational_prompt_completion():
    item = load_suite("arith").generate("train", 1, seed=0)[0]
    rec = to_record(item)
    assert rec["prompt"] == [{"role": "user", "content": item.prompt}]
    assert rec["completion"] == [{"role": "assistant", "content": item.completion}]


@pytest.mark.slow
def test_train_on_a_file_then_skip_when_done(tmp_path, tiny_model_dir):
    write_jsonl(load_suite("arith").generate("train", 12, seed=0), tmp_path / "train.jsonl")
    args = ["train", "--model", str(tiny_model_dir), "--data", "train.jsonl", "--output-path", "out",
            "--train-batch-size", "4", "--save-every", "2", "--device", "cpu"]
    first = run_cli(*args, cwd=tmp_path)
    assert "trained 3 steps on 12 examples" in first.stdout
    result = json.loads((tmp_path / "out" / "train_result.json").read_text())
    assert [h["step"] for h in result["log"]] == [1, 2, 3] and all(h["loss"] > 0 for h in result["log"])
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "out" / "config.json").read_text())["train"]["learning_rate"] == 1e-3
    stamp = (tmp_path / "out" / "train_result.json").stat().st_mtime_ns
    run_cli(*args, cwd=tmp_path)  # same data, same config: nothing to do
    assert (tmp_path / "out" / "train_result.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_suite_training_logs_per_skill_validation_loss(tmp_path, tiny_model_dir):
    run_cli("train", "--model", str(tiny_model_dir), "--suite", "arith", "--strategy", "uniform", "--budget", "8",
            "--train-batch-size", "4", "--eval-every", "1", "--output-path", "out", "--device", "cpu", cwd=tmp_path)
    result = json.loads((tmp_path / "out" / "train_result.json").read_text())
    skills = set(load_suite("arith").skills.ids)
    steps = {v["step"] for v in result["val_loss"]}
    assert steps == {0, 1, 2}  # before training, then every step
    assert {v["skill"] for v in result["val_loss"]} == skills
    mixture = json.loads((tmp_path / "out" / "mixture.json").read_text())
    assert mixture["strategy"] == "uniform" and mixture["n_examples"] == 8


@pytest.mark.slow
def test_kill_9_mid_training_resumes_from_the_last_checkpoint(tmp_path, tiny_model_dir):
    args = ["train", "--model", str(tiny_model_dir), "--suite", "arith", "--strategy", "uniform", "--budget", "64",
            "--train-batch-size", "4", "--save-every", "2", "--eval-every", "0", "--output-path", "out",
            "--device", "cpu"]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "skillgap", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "out" / "checkpoints"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in ckpts.glob("checkpoint-*") if (p / "trainer_state.json").is_file()] \
            if ckpts.is_dir() else []
        if any(int(p.name.split("-")[1]) >= 4 for p in done):
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out" / "train_result.json").exists(), "the kill must land mid-training"
    second = run_cli(*args, cwd=tmp_path)
    assert "resuming training" in second.stderr
    result = json.loads((tmp_path / "out" / "train_result.json").read_text())
    assert result["steps"] == 16
    assert [h["step"] for h in result["log"]] == list(range(1, 17))  # every step once: none redone, none lost


@pytest.mark.slow
def test_full_fine_tuning_saves_a_model_the_profile_stage_loads(tmp_path, tiny_model_dir):
    write_jsonl(load_suite("arith").generate("train", 8, seed=1), tmp_path / "train.jsonl")
    run_cli("train", "--model", str(tiny_model_dir), "--data", "train.jsonl", "--output-path", "out",
            "--method", "full", "--learning-rate", "1e-4", "--train-batch-size", "4", "--device", "cpu", cwd=tmp_path)
    assert (tmp_path / "out" / "model" / "config.json").is_file()
    p = run_cli("profile", "--model", "out/model", "--suite", "arith", "--limit", "4", "--max-new-tokens", "4",
                "--device", "cpu", cwd=tmp_path)
    assert "overall" in p.stdout
