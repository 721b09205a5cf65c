"""Training through transformers' Trainer and PEFT: the adapter, the logs, skipping a finished training, resuming
after kill -9, and the step itself (TRL's tokenization, packed rows that keep examples apart).

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


def _trl_rows(folder, records):
    """The same records as TRL's SFTTrainer prepares them (its tokenization is the reference for `encode`)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    args = SFTConfig(output_dir="/tmp/unused", use_cpu=True, max_length=512, completion_only_loss=True,
                     report_to="none", bf16=False)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(folder), args=args, processing_class=tok,
                         train_dataset=Dataset.from_list(records))
    return tok, [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in trainer.train_dataset]


@pytest.mark.parametrize("kind", ["chat", "plain"])
def test_encode_tokenizes_as_trl_sft_trainer_does(kind, tiny_model_dir):
    """Chat template and end-of-turn token (a chat model), or the text with EOS appended (a word-level model)."""
    from skillgap.models.scratch import scratch_model
    from skillgap.train import encode

    items = load_suite("arith").generate("train", 6, seed=3)
    folder = tiny_model_dir if kind == "chat" else scratch_model("scratch-tiny", "arith")
    records = [to_record(it, conversational=kind == "chat") for it in items]
    tok, want = _trl_rows(folder, records)
    got = [encode(r, tok, 512) for r in records]
    assert got == want
    assert all(-100 in r["labels"] and r["labels"][-1] != -100 for r in got)  # a prompt, and a completion to its end


def test_a_packed_row_scores_each_example_as_if_alone(tiny_model_dir):
    """Examples end to end in one row attend only within themselves, and the LM head scores only completion
    positions: the loss and the gradient equal those of each example on its own."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skillgap.train import completion_loss, encode, pack

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="eager")
    rows = [encode(to_record(it), tok, 512) for it in load_suite("arith").generate("train", 3, seed=1)]
    n = sum(sum(t != -100 for t in r["labels"]) for r in rows)

    def loss_and_grad(batches):
        model.zero_grad()
        total = sum(completion_loss(model(**{k: v for k, v in b.items() if k != "labels"}), b["labels"], n)
                    for b in batches)
        total.backward()
        return total.item(), model.model.layers[0].self_attn.q_proj.weight.grad.clone()

    packed = pack(rows)
    assert packed["logits_to_keep"].numel() == n  # one scored position per completion token
    loss_packed, grad_packed = loss_and_grad([packed])
    loss_alone, grad_alone = loss_and_grad([pack([r]) for r in rows])
    assert loss_packed == pytest.approx(loss_alone, rel=1e-5)
    torch.testing.assert_close(grad_packed, grad_alone, rtol=1e-4, atol=1e-6)
    # without the position ids the examples would see each other: the checks above can fail
    mixed = {k: v for k, v in packed.items() if k != "position_ids"}
    loss_mixed, grad_mixed = loss_and_grad([mixed])
    assert abs(loss_mixed - loss_alone) > 10 * 1e-5 * loss_alone
    assert not torch.allclose(grad_mixed, grad_alone, rtol=1e-2, atol=1e-6)
