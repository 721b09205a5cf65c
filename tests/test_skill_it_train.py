"""Skill-it end to end: a from-scratch model trained on an online mixture through TRL, graphs from the CLI,
the documented plain-PyTorch loop, and resuming a killed mixture run."""

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

DOCS = Path(__file__).resolve().parents[1] / "docs" / "skill-it.md"


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.slow
def test_documented_plain_pytorch_loop_runs():
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    scope: dict = {}
    exec(compile(code, str(DOCS), "exec"), scope)
    policy = scope["policy"]
    assert len(policy.history) == 4  # four evaluations, two rounds
    w = policy.weights()
    assert sum(w.values()) == pytest.approx(1.0)
    # By hand: after the second round, p_i ∝ exp(η Σ_j A[i,j] Σ_{last 3 evaluations} L_j), with the hand graph's
    # off-diagonal 1 counted as 0.5 (A = [[1,0,0],[.5,1,0],[0,0,1]]) and η = 0.1.
    import math

    A = [[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]
    L = [sum(h[j] for h in policy.history[-3:]) for j in range(3)]
    z = [math.exp(0.1 * sum(a * x for a, x in zip(row, L))) for row in A]
    assert list(w.values()) == pytest.approx([x / sum(z) for x in z], rel=1e-9)
    start = scope["SkillIt"](scope["parse_rows"]("100/110/001", list(w)), eta=0.1).weights()
    assert max(abs(w[s] - start[s]) for s in w) > 1e-3  # the losses moved it off its start


@pytest.mark.slow
def test_train_skill_it_writes_mixture_and_profile(tmp_path):
    p = run_cli("train", "--model", "scratch-tiny", "--suite", "lego", "--mixture", "skill-it", "--steps", "100",
                "--seed", "0", "--output-path", "DIR", cwd=tmp_path)
    out = tmp_path / "DIR"
    rounds = _lines(out / "mixture.jsonl")
    assert [r["step"] for r in rounds] == [0, 16, 32, 48, 64, 80, 96]  # T = 100 // 6 on the 16-step evaluations
    skills = [f"depth_{i}" for i in range(5)]
    for r in rounds:
        assert list(r["weights"]) == skills and sum(r["weights"].values()) == pytest.approx(1.0, abs=1e-5)
    # the paper's LEGO graph: depth_1 helps depths 0-3, so it starts with the largest share
    assert max(rounds[0]["weights"], key=rounds[0]["weights"].get) == "depth_1"
    assert rounds[1]["weights"] != rounds[0]["weights"] and rounds[1]["example"] > 0
    vals = _lines(out / "val_loss.jsonl")
    assert [v["step"] for v in vals] == list(range(0, 101, 16))
    assert vals[-1]["loss"]["depth_0"] < vals[0]["loss"]["depth_0"]  # it learned something
    prof = json.loads((out / "profile.json").read_text())
    reference = run_cli("profile", "--model", str(out / "model"), "--suite", "lego", "--limit", "50",
                        "--output-path", "p.json", cwd=tmp_path)
    assert reference.returncode == 0
    plain = json.loads((tmp_path / "p.json").read_text())
    assert set(plain) <= set(prof) and set(prof) - set(plain) == {"answer_loss"}
    assert [s["id"] for s in prof["skills"]] == skills and prof["overall"]["n"] == 500
    assert set(prof["answer_loss"]) == set(skills) and all(v > 0 for v in prof["answer_loss"].values())
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["method"] == "full" and cfg["mixture"]["eta"] == 0.5 and cfg["mixture"]["round_steps"] == 16
    assert "trained 100 steps" in p.stdout


def test_online_mixture_errors_are_actionable(cli):
    lego = ["train", "--model", "scratch-tiny", "--suite", "lego", "--output-path", "o"]
    for extra, message in [(["--mixture", "skill-it"], "give --steps N"),
                           (["--mixture", "skill-it", "--steps", "20", "--round-steps", "10"], "multiple of --eval-every"),
                           (["--mixture", "skill-it", "--steps", "20", "--graph", "100/110/001"],
                            "expected 5 rows of 5 digits"),
                           (["--mixture", "skil-it", "--steps", "20"], "Did you mean 'skill-it'")]:
        code, _, err = cli(*lego, *extra)
        assert code == 2 and message in err, (extra, err)


@pytest.mark.slow
def test_killed_mixture_run_resumes_to_the_same_mixture(tmp_path):
    args = ["train", "--model", "scratch-tiny", "--suite", "addition", "--mixture", "skill-it", "--steps", "12",
            "--eval-every", "2", "--round-steps", "4", "--save-every", "4", "--eta", "2", "--val-per-skill", "20",
            "--limit", "30", "--seed", "1"]
    run_cli(*args, "--output-path", "a", cwd=tmp_path)
    full = _lines(tmp_path / "a" / "mixture.jsonl")
    # what a run killed between steps 8 and 12 leaves: checkpoints 4 and 8, logs up to its last evaluation
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    b = tmp_path / "b"
    shutil.rmtree(b / "checkpoints" / "checkpoint-12")
    for f in ("train_result.json", "profile.json"):
        (b / f).unlink()
    shutil.rmtree(b / "model")
    p = run_cli(*args, "--output-path", "b", cwd=tmp_path)
    assert "resuming" in p.stderr
    resumed = _lines(b / "mixture.jsonl")
    assert [r["step"] for r in resumed] == [r["step"] for r in full] == [0, 4, 8, 12]
    assert [r["example"] for r in resumed] == [r["example"] for r in full]
    for x, y in zip(resumed, full):
        assert x["weights"] == pytest.approx(y["weights"], abs=1e-4)
    assert len(full[1]["weights"]) == 3 and full[3]["weights"] != full[0]["weights"]


@pytest.mark.slow
def test_graph_estimated_and_given(tmp_path):
    run_cli("graph", "--model", "scratch-tiny", "--suite", "addition", "--pretrain-steps", "20", "--steps", "10",
            "--val-per-skill", "20", "--output-path", "g.json", cwd=tmp_path)
    g = json.loads((tmp_path / "g.json").read_text())
    assert g["skills"] == ["digit_0", "digit_1", "digit_2"] and g["source"] == "estimated"
    assert all(-1.0 <= x <= 1.0 for row in g["matrix"] for x in row)
    assert all(max(abs(row[j]) for row in g["matrix"]) in (0.0, 1.0) for j in range(3))
    assert set(g["notes"]["loss_after"]) == set(g["skills"]) and g["notes"]["pretrain_steps"] == 20
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "g-runs" / "only-digit_2" / "train_result.json").is_file()
    # the estimated graph drives training as a file
    run_cli("train", "--model", "scratch-tiny", "--suite", "addition", "--mixture", "skill-it", "--steps", "4",
            "--eval-every", "2", "--graph", "g.json", "--val-per-skill", "10", "--limit", "15",
            "--output-path", "t", cwd=tmp_path)
    assert json.loads((tmp_path / "t" / "config.json").read_text())["mixture"]["graph"]["source"] == "estimated"
    p = run_cli("graph", "--suite", "lego", "--graph", "10000/11110/00100/00010/00001", "--output-path", "paper.json",
                cwd=tmp_path)
    assert json.loads((tmp_path / "paper.json").read_text())["matrix"][1] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert "depth_1" in p.stdout and (tmp_path / "paper.png").is_file()


def test_answer_scores_count_the_answer_tokens_only():
    """The per-skill loss Skill-it reads: cross-entropy of the label token given the prompt, nothing else."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skillgap.models.scratch import scratch_model
    from skillgap.suites import load_suite
    from skillgap.scoring import answer_scores

    folder = scratch_model("scratch-tiny", "addition")
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    items = load_suite("addition").generate("test", 6, seed=0)
    by_skill = {"digit_0": items[0::3], "digit_1": items[1::3]}
    got = answer_scores(model, tok, by_skill, conversational=False, batch_size=1)
    for skill, its in by_skill.items():
        losses, right = [], 0
        for it in its:  # by hand: one forward pass on prompt + answer, read the label's log-probability
            ids = tok(it.prompt + it.completion, add_special_tokens=False, return_tensors="pt").input_ids
            logp = torch.log_softmax(model(input_ids=ids).logits[0, -2], -1)
            label = tok.convert_tokens_to_ids(it.answer)
            losses.append(-logp[label].item())
            right += int(logp.argmax() == label)
        assert got[skill]["loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-4)
        assert got[skill]["accuracy"] == right / len(its)
    assert got["digit_0"]["loss"] == pytest.approx(torch.log(torch.tensor(float(len(tok)))).item(), rel=0.1)


@pytest.mark.slow
def test_mixture_over_a_file_pool_with_a_chat_model(tmp_path, tiny_model_dir):
    """Any labelled JSONL pool works: chat template, LoRA, validation held out of the pool, the prerequisite graph."""
    from skillgap.items import write_jsonl
    from skillgap.suites import load_suite

    arith = load_suite("arith")
    write_jsonl(arith.generate("train", 120, seed=0), tmp_path / "pool.jsonl")
    write_jsonl(arith.generate("test", 12, seed=0), tmp_path / "test.jsonl")
    run_cli("train", "--model", str(tiny_model_dir), "--data", "test.jsonl", "--train-data", "pool.jsonl",
            "--mixture", "skill-it", "--steps", "4", "--eval-every", "2", "--train-batch-size", "4",
            "--val-per-skill", "2", "--max-new-tokens", "8", "--device", "cpu", "--output-path", "o", cwd=tmp_path)
    cfg = json.loads((tmp_path / "o" / "config.json").read_text())
    assert cfg["train"]["method"] == "lora" and cfg["mixture"]["graph"]["source"] == "prerequisites"
    rounds = _lines(tmp_path / "o" / "mixture.jsonl")
    assert [r["step"] for r in rounds] == [0, 2, 4] and len(rounds[0]["weights"]) == 13
    assert (tmp_path / "o" / "adapter" / "adapter_model.safetensors").is_file()
    prof = json.loads((tmp_path / "o" / "profile.json").read_text())
    assert prof["overall"]["n"] == 12 and prof["answer_loss"]


@pytest.mark.slow
def test_run_with_an_online_mixture_at_the_same_budget(tmp_path):
    """`skillgap run --mixture skill-it`: no diagnosis; --budget examples read from the stream (steps = budget /
    batch); the report counts what the stream served; on a suite restricted by skill, only its skills."""
    args = ["run", "--model", "scratch-tiny", "--backend", "hf", "--device", "cpu", "--suite", "lego",
            "--exclude-skills", "depth_4", "--mixture", "skill-it", "--budget", "24", "--train-batch-size", "4",
            "--eval-every", "1", "--round-steps", "2", "--val-per-skill", "8", "--limit", "12", "--seed", "0",
            "--output-path", "out", "--runs-dir", "runs"]
    run_cli(*args, cwd=tmp_path)
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["strategy"] == "mixture:skill-it" and not report["diagnosis"]
    assert not (out / "diagnosis.json").exists()
    assert report["training"]["steps"] == 6 and report["training"]["examples_seen"] == 24
    served = _lines(out / "train.jsonl")
    assert len(served) == 24 and report["mixture"]["n_examples"] == 24 and report["mixture"]["order"] == "online"
    assert sum(report["mixture"]["by_skill"].values()) == 24
    assert {s for r in served for s in r["skills"]} <= {f"depth_{i}" for i in range(4)}
    rounds = _lines(out / "mixture.jsonl")
    assert [r["step"] for r in rounds] == [0, 2, 4, 6]
    assert all(list(r["weights"]) == [f"depth_{i}" for i in range(4)] for r in rounds)
    # the weights the served examples were drawn with are the rounds' weights, and they moved
    changes = report["mixture"]["notes"]["changes"]
    assert len(changes) > 1 and all(any(c["weights"] == pytest.approx(r["weights"], abs=1e-4) for r in rounds) for c in changes)
    assert report["before"]["overall"]["n"] == report["after"]["overall"]["n"] == 12
    assert (out / "report.html").is_file()
