"""The skill adapter library: the index, and composition and negation checked against PEFT's own merge."""

from pathlib import Path

import pytest
import torch

from skillgap.errors import ConfigError
from skillgap.library import Library, build_library, combine, negate


def _adapter(base: Path, out: Path, seed: int) -> Path:
    """A LoRA whose A and B are both random (PEFT's default B = 0 would make every delta zero)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(out)
    return out


def _merged(base: Path, adapter: Path) -> dict[str, torch.Tensor]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return {n: p.detach().clone() for n, p in PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
            .named_parameters()}


def _weights(base: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return {n: p.detach().clone() for n, p in AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
            .named_parameters()}


def test_negation_subtracts_the_delta_at_the_strength_asked(tmp_path, tiny_model_dir):
    a = _adapter(tiny_model_dir, tmp_path / "a", 0)
    w, plus = _weights(tiny_model_dir), _merged(tiny_model_dir, a)
    name = next(n for n in w if "q_proj" in n)
    delta = plus[name] - w[name]
    assert delta.abs().max() > 1e-3  # the adapter does change the weights
    for strength in (1.0, 0.5):
        neg = _merged(tiny_model_dir, negate(tiny_model_dir, a, strength, tmp_path / f"neg{strength}"))
        assert torch.allclose(neg[name], w[name] - strength * delta, atol=1e-5)
        other = next(n for n in w if "embed" in n)
        assert torch.equal(neg[other], w[other])
    with pytest.raises(ConfigError, match="positive"):
        negate(tiny_model_dir, a, 0, tmp_path / "x")


def test_cat_is_the_exact_sum_of_the_deltas(tmp_path, tiny_model_dir):
    a, b = _adapter(tiny_model_dir, tmp_path / "a", 0), _adapter(tiny_model_dir, tmp_path / "b", 1)
    w = _weights(tiny_model_dir)
    da = {n: v - w[n] for n, v in _merged(tiny_model_dir, a).items()}
    db = {n: v - w[n] for n, v in _merged(tiny_model_dir, b).items()}
    both = _merged(tiny_model_dir, combine(tiny_model_dir, {"a": a, "b": b}, [1.0, 0.5], tmp_path / "ab", "cat"))
    name = next(n for n in w if "down_proj" in n)
    assert torch.allclose(both[name], w[name] + da[name] + 0.5 * db[name], atol=1e-5)
    with pytest.raises(ConfigError, match="density"):
        combine(tiny_model_dir, {"a": a, "b": b}, [1.0, 1.0], tmp_path / "t", "ties")
    with pytest.raises(ConfigError, match="Did you mean 'linear'"):
        combine(tiny_model_dir, {"a": a}, [1.0], tmp_path / "t", "lineer")


def test_library_builds_one_adapter_per_skill_and_resumes(tmp_path, tiny_model_dir):
    from skillgap.data import DataConfig
    from skillgap.models import ModelConfig
    from skillgap.train import TrainConfig

    model = ModelConfig(str(tiny_model_dir), backend="hf")
    cfg = TrainConfig(batch_size=4, eval_every=0, save_every=100, lora_r=4, lora_alpha=8)
    lib = build_library(model, DataConfig(suite="arith"), ["add_1digit", "mul_facts"], 8, cfg, tmp_path / "lib")
    again = Library.load(tmp_path / "lib")
    assert set(again.entries) == {"add_1digit", "mul_facts"} and again.base == str(tiny_model_dir)
    for s, e in again.entries.items():
        assert e.examples == 8 and e.steps == 2 and e.train["lora_r"] == 4 and e.train["max_steps"] == 2
        assert (again.adapter(s) / "adapter_config.json").is_file()
    stamp = (lib.adapter("add_1digit") / "adapter_model.safetensors").stat().st_mtime_ns
    build_library(model, DataConfig(suite="arith"), ["add_1digit"], 8, cfg, tmp_path / "lib")
    assert (lib.adapter("add_1digit") / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="Did you mean 'mul_facts'"):
        again.adapter("mul_fact")
    with pytest.raises(ConfigError, match="not a skill library"):
        Library.load(tmp_path)


def test_library_command_measures_each_adapter_on_its_skill(tmp_path, tiny_model_dir):
    from conftest import run_cli

    p = run_cli("library", "--model", str(tiny_model_dir), "--suite", "arith", "--skills", "add_1digit,mul_facts",
                "--budget", "8", "--train-batch-size", "4", "--lora-r", "4", "--test-limit", "3", "--max-new-tokens", "8",
                "--output-path", "lib", cwd=tmp_path)
    assert "accuracy on its skill" in p.stdout
    lib = Library.load(tmp_path / "lib")
    assert all(e.accuracy is not None and 0 <= e.accuracy <= 1 for e in lib.entries.values())
    bad = run_cli("library", "--model", str(tiny_model_dir), "--suite", "arith", "--skills", "mul_fact",
                  "--output-path", "lib2", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "mul_facts" in bad.stderr and not (tmp_path / "lib2").exists()
