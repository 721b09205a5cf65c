"""`skillgap train` under `accelerate launch --multi_gpu --num_processes 2 ... --device cpu` (DDP on two CPU
processes, gloo), beside the single-process recipe: the same training set, one diagnosis in the run store, the weights and
train_result.json written once, each optimizer step over both processes' batches, no duplicated lines.

`--multi_gpu` picks accelerate's torchrun launcher, which starts the processes; with `--cpu` instead,
accelerate 1.15 starts one process (several CPU processes need its MPI launcher, `--mpirun_hostfile`).
A from-scratch model (scratch-tiny) keeps it to about a minute; --strategy stat-sel runs the diagnosis
(generation, the SQLite run store) that the main process alone must do.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port, run_cli

from skillgap.store import RunStore

BUDGET, BATCH = 16, 4
ARGS = ["train", "--model", "scratch-tiny", "--backend", "hf", "--device", "cpu", "--suite", "arith",
        # 8 diagnosed items are too few to name gaps: stat-sel says so and trains on uniform examples
        "--strategy", "stat-sel", "--budget", str(BUDGET), "--diagnose-limit", "8",
        "--pool-size", "400", "--max-new-tokens", "8", "--grader", "exact",
        "--train-batch-size", str(BATCH), "--eval-every", "1", "--save-every", "1", "--seed", "0"]


def launch(tmp: Path, cache: Path, processes: int) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "COLUMNS": "120", "SKILLGAP_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
           str(free_port()), "-m", "skillgap", *ARGS, "--output-path", "ddp", "--runs-dir", "runs-ddp"]
    p = subprocess.run(cmd, cwd=tmp, env=env, text=True, capture_output=True, timeout=900)
    assert p.returncode == 0, f"accelerate launch exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.slow
def test_two_cpu_processes_train_like_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLGAP_CACHE", str(tmp_path / "cache-one"))
    one = run_cli(*ARGS, "--output-path", "one", "--runs-dir", "runs-one", cwd=tmp_path)
    # a cold cache: the main process builds the scratch model, the other waits and reads it
    two = launch(tmp_path, tmp_path / "cache-two", 2)

    a, b = tmp_path / "one", tmp_path / "ddp"
    ra, rb = (json.loads((d / "train_result.json").read_text()) for d in (a, b))
    # One process: BUDGET / BATCH steps. Two: each step takes a batch on each process, so half the steps,
    # and examples_seen counts both processes' batches: the whole training set either way.
    assert (ra["steps"], ra["examples_seen"], ra["processes"]) == (BUDGET // BATCH, BUDGET, 1)
    assert (rb["steps"], rb["examples_seen"], rb["processes"]) == (BUDGET // (2 * BATCH), BUDGET, 2)
    assert [h["step"] for h in rb["log"]] == [1, 2]  # one line per step, not one per process
    assert sorted({(v["step"], v["skill"]) for v in rb["val_loss"]}) == sorted((v["step"], v["skill"])
                                                                               for v in rb["val_loss"])
    assert {v["step"] for v in rb["val_loss"]} == {0, 1, 2}
    assert rb["weights"] == "ddp/model" and ra["train_tokens"] == rb["train_tokens"]

    # the same diagnosis and training set; the run store holds one diagnosis session, not one per process
    assert (a / "train.jsonl").read_text() == (b / "train.jsonl").read_text()
    assert json.loads((a / "diagnosis.json").read_text())["missing"] == \
        json.loads((b / "diagnosis.json").read_text())["missing"]
    store = RunStore(tmp_path / "runs-ddp")
    try:
        runs = store.runs()
        assert len(runs) == 1 and runs[0]["status"] == "done" and runs[0]["n_done"] == 8
        assert len(store.sessions(runs[0]["run_id"])) == 1
    finally:
        store.close()

    # the same files, written once: no temporary or per-process leftovers (Trainer keeps one RNG state per
    # process in each checkpoint, for an exact resume)
    fa, fb = files(a), files(b)
    assert not [f for f in fb if f.endswith(".tmp")]
    assert {f for f in fb if "rng_state" in f} == {f"checkpoints/checkpoint-{s}/rng_state_{r}.pth" for s in (1, 2)
                                                   for r in (0, 1)}
    assert {f for f in fa if not f.startswith("checkpoints/")} == {f for f in fb if not f.startswith("checkpoints/")}
    assert sorted(p.name for p in b.iterdir()) == ["checkpoints", "config.json", "diagnosis.json", "mixture.json",
                                                   "model", "sft", "sft-arrow", "train.jsonl", "train_result.json"]

    # one summary line and one targeting line, from the main process only
    assert one.stdout.count("trained 4 steps on 16 examples") == 1
    assert two.stdout.count("trained 2 steps on 16 examples") == 1 and two.stdout.count("trained ") == 1
    assert two.stderr.count("uniform: 16 examples") == 1 and two.stderr.count("stat-sel fell back to uniform") == 1

    # launched again: every process finds the finished training, none trains or writes
    stamp = (b / "train_result.json").stat().st_mtime_ns
    again = launch(tmp_path, tmp_path / "cache-two", 2)
    assert (b / "train_result.json").stat().st_mtime_ns == stamp and files(b) == fb
    assert again.stdout.count("trained 2 steps on 16 examples") == 1 and "train ━" not in again.stderr

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(b / "model")
    assert model.num_parameters() == AutoModelForCausalLM.from_pretrained(a / "model").num_parameters()
