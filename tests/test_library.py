"""The skill adapter library: the index, and composition and negation checked against PEFT's own merge."""

import json
from pathlib import Path

import pytest
import torch

from conftest import output, run_cli
from skillgap.errors import ConfigError
from skillgap.library import Library, build_library, combine, ext_sub, load_router, negate, router


def _adapter(base: Path, out: Path, seed: int, r: int = 4, targets: tuple = ("q_proj", "down_proj")) -> Path:
    """A LoRA whose A and B are both random (PEFT's default B = 0 would make every delta zero)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(targets), init_lora_weights=False)
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


def _unit_adapter(base: Path, out: Path, column: int) -> Path:
    """Rank 1, alpha 2 (scale 2): every row of every ΔW is 2·e_column."""
    from safetensors.torch import load_file, save_file

    folder = _adapter(base, out, 0, r=1)
    t = load_file(folder / "adapter_model.safetensors")
    for k, v in t.items():
        t[k] = torch.ones_like(v) if ".lora_B." in k else torch.nn.functional.one_hot(
            torch.tensor([column]), v.shape[1]).to(v.dtype)
    save_file(t, folder / "adapter_model.safetensors")
    return folder


def test_ext_sub_subtracts_only_what_the_anti_expert_does_not_share(tmp_path, tiny_model_dir):
    # Worked by hand, per row: w+ = 2·e0, w- = 2·e1, so c = (e0 + e1)/√2 and P = (w-·c)c = e0 + e1;
    # ΔW = w+ − λ(w- − P) = (2 + λ)·e0 − λ·e1, where plain subtraction gives 2·e0 − 2λ·e1.
    plus, minus = _unit_adapter(tiny_model_dir, tmp_path / "p", 0), _unit_adapter(tiny_model_dir, tmp_path / "m", 1)
    w = _weights(tiny_model_dir)
    for name in (next(n for n in w if "q_proj" in n), next(n for n in w if "down_proj" in n)):
        row = torch.zeros(w[name].shape[1])
        for lam in (1.0, 2.0):
            out = ext_sub(plus, minus, lam, tmp_path / f"es{lam}")
            assert json.loads((out / "adapter_config.json").read_text())["r"] == 2  # r+ + r-, exact
            expected = row.clone()
            expected[0], expected[1] = 2 + lam, -lam
            got = _merged(tiny_model_dir, out)[name] - w[name]
            assert torch.allclose(got, expected.expand_as(got), atol=1e-5), (name, lam)
    # an anti-expert that shares everything with the expert removes nothing
    same = _merged(tiny_model_dir, ext_sub(plus, plus, 1.0, tmp_path / "same"))
    assert torch.allclose(same[name], _merged(tiny_model_dir, plus)[name], atol=1e-5)
    with pytest.raises(ConfigError, match="same modules"):
        ext_sub(plus, _adapter(tiny_model_dir, tmp_path / "q", 0, targets=("q_proj",)), 1.0, tmp_path / "x")
    with pytest.raises(ConfigError, match="positive"):
        ext_sub(plus, minus, 0, tmp_path / "x")


def test_ext_sub_of_random_adapters_matches_the_row_formula_on_the_full_deltas(tmp_path, tiny_model_dir):
    a, b = _adapter(tiny_model_dir, tmp_path / "a", 0), _adapter(tiny_model_dir, tmp_path / "b", 1, r=2)
    w = _weights(tiny_model_dir)
    da = {n: v - w[n] for n, v in _merged(tiny_model_dir, a).items()}
    db = {n: v - w[n] for n, v in _merged(tiny_model_dir, b).items()}
    got = _merged(tiny_model_dir, ext_sub(a, b, 0.5, tmp_path / "ab"))
    name = next(n for n in w if "down_proj" in n)
    rows = []
    for p, m in zip(da[name], db[name]):
        c = p / p.norm() + m / m.norm()
        c = c / c.norm()
        rows.append(p - 0.5 * (m - (m @ c) * c))
    assert torch.allclose(got[name] - w[name], torch.stack(rows), atol=1e-4)


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


@pytest.mark.slow
def test_library_command_measures_each_adapter_on_its_skill(tmp_path, tiny_model_dir, cli):
    p = run_cli("library", "--model", str(tiny_model_dir), "--suite", "arith", "--skills", "add_1digit,mul_facts",
                "--budget", "8", "--train-batch-size", "4", "--lora-r", "4", "--test-limit", "3", "--max-new-tokens", "8",
                "--output-path", "lib", cwd=tmp_path)
    assert "accuracy on its skill" in p.stdout
    lib = Library.load(tmp_path / "lib")
    assert all(e.accuracy is not None and 0 <= e.accuracy <= 1 for e in lib.entries.values())
    # the commands on the library run in this process: a subprocess each would pay torch's imports again
    output(*cli("localize", "--model", str(tiny_model_dir), "--backend", "hf", "--finetuned", "lib", "--skills",
                "add_1digit,mul_facts", "--sparsity", "1e-2", "--train-limit", "4", "--val-limit", "2", "--test-limit",
                "2", "--steps", "1", "--max-new-tokens", "4", "--output-path", "loc"))
    res = json.loads((tmp_path / "loc" / "localize.json").read_text())
    ft = res["config"]["finetuned"]
    assert ft["add_1digit"]["adapter"] != ft["mul_facts"]["adapter"]  # each skill in its own adapter's delta
    assert res["overlap"]["0.01"][0][1] < 1  # two fine-tunes moved different weights most
    output(*cli("compose", "--library", "lib", "--skills", "add_1digit,mul_facts", "--output-path", "both"))
    assert (tmp_path / "both" / "adapter_config.json").is_file()
    assert "--backend hf --adapter router" in output(*cli("compose", "--library", "lib", "--skills",
                                                          "add_1digit,mul_facts", "--combination", "arrow",
                                                          "--output-path", "router"))
    output(*cli("profile", "--model", str(tiny_model_dir), "--backend", "hf", "--adapter", "router", "--suite", "arith",
                "--limit", "3", "--max-new-tokens", "8", "--output-path", "routed.json"))
    assert json.loads((tmp_path / "routed.json").read_text())["overall"]["n"] == 3
    output(*cli("compose", "--library", "lib", "--skills", "add_1digit", "--combination", "ext-sub", "--expert",
                "both", "--weights", "-0.5", "--output-path", "removed"))
    assert json.loads((tmp_path / "removed" / "adapter_config.json").read_text())["r"] == 8 + 4  # cat's r + the skill's
    for args, msg in [(["--skills", "add_1digt"], "Did you mean 'add_1digit'"),
                      (["--skills", "add_1digit", "--combination", "cats"], "Did you mean 'cat'"),
                      (["--skills", "add_1digit", "--weights", "one"], "one number per skill"),
                      (["--skills", "add_1digit", "--combination", "ext-sub"], "--expert"),
                      (["--skills", "add_1digit", "--combination", "ext-sub", "--expert", "both", "--weights", "1"],
                       "negative"),
                      (["--skills", "add_1digit", "--expert", "both"], "ext-sub")]:
        code, _, err = cli("compose", "--library", "lib", *args, "--output-path", "x")
        assert code == 2 and msg in err and not (tmp_path / "x").exists()
    code, _, err = cli("library", "--model", str(tiny_model_dir), "--suite", "arith", "--skills", "mul_fact",
                       "--output-path", "lib2")
    assert code == 2 and "mul_facts" in err and not (tmp_path / "lib2").exists()


@pytest.mark.parametrize("top_k", [1, 2])
def test_arrow_routes_each_token_by_its_projection_on_each_adapters_top_singular_vector(tmp_path, tiny_model_dir, top_k):
    """Arrow's rule worked by hand at one layer: with rank-1 adapters ΔW_e = s_e·u_e·v_eᵀ the prototype is v_e
    (exactly); token x scores |⟨x, v_e⟩|, the top-k scores go through a softmax, and the layer adds
    Σ_e coeff_e · ΔW_e x to the base output."""
    from transformers import AutoModelForCausalLM

    a, b = _adapter(tiny_model_dir, tmp_path / "a", 0, r=1), _adapter(tiny_model_dir, tmp_path / "b", 1, r=1)
    deltas = [_merged(tiny_model_dir, x) for x in (a, b)]
    w = _weights(tiny_model_dir)
    name = next(n for n in w if "layers.1.mlp.down_proj" in n)
    dw = [d[name] - w[name] for d in deltas]
    protos = [torch.linalg.svd(d)[2][0] for d in dw]  # top right singular vectors
    model = load_router(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                        router({"a": a, "b": b}, tmp_path / "r", top_k=top_k))
    layer = dict(model.named_modules())["base_model.model." + name.removesuffix(".weight")]
    seen = {}
    layer.register_forward_hook(lambda m, i, o: seen.update(x=i[0].detach(), y=o.detach()))
    torch.manual_seed(2)
    model(input_ids=torch.randint(0, 500, (2, 12)))
    x, y = seen["x"].reshape(-1, w[name].shape[1]), seen["y"].reshape(-1, w[name].shape[0])
    scores = torch.stack([(x @ v).abs() for v in protos], dim=1)
    if top_k == 1:
        coeff = torch.nn.functional.one_hot(scores.argmax(1), 2).float()
        assert 0 < coeff[:, 0].sum() < len(x)  # tokens go both ways: the check below compares two routes
    else:
        coeff = torch.softmax(scores, dim=1)
    want = x @ w[name].T + sum(coeff[:, e:e + 1] * (x @ dw[e].T) for e in range(2))
    assert torch.allclose(y, want, atol=1e-5)


def test_a_router_over_one_adapter_is_that_adapter_and_runs_on_the_hf_backend_only(tmp_path, tiny_model_dir):
    from skillgap.errors import BackendError
    from skillgap.models import ModelConfig, load_model, model_identity

    a, b = _adapter(tiny_model_dir, tmp_path / "a", 0), _adapter(tiny_model_dir, tmp_path / "b", 1)
    chats = [[{"role": "user", "content": "What is 2 + 3?"}], [{"role": "user", "content": "Hi"}]]
    one = ModelConfig(str(tiny_model_dir), backend="hf", adapter=str(router({"a": a}, tmp_path / "ra")))
    one.check()
    plain = ModelConfig(str(tiny_model_dir), backend="hf", adapter=str(a))
    assert [g.text for g in load_model(one).generate(chats, 12)] == [g.text for g in load_model(plain).generate(
        chats, 12)]
    k1 = ModelConfig(str(tiny_model_dir), backend="hf", adapter=str(router({"a": a, "b": b}, tmp_path / "k1")))
    k2 = ModelConfig(str(tiny_model_dir), backend="hf", adapter=str(router({"a": a, "b": b}, tmp_path / "k2", 2)))
    assert len({model_identity(c) for c in (one, plain, k1, k2)}) == 4  # each is its own model in the run store
    with pytest.raises(BackendError, match="Arrow router.*--backend hf"):
        ModelConfig(str(tiny_model_dir), backend="vllm", adapter=k1.adapter).check()
    with pytest.raises(ConfigError, match="keeps 1 to 2"):
        router({"a": a, "b": b}, tmp_path / "x", top_k=3)
    (tmp_path / "moved").mkdir()
    (tmp_path / "moved" / "router.json").write_text((tmp_path / "k1" / "router.json").read_text()
                                                    .replace(str(b.resolve()), str(tmp_path / "gone")))
    with pytest.raises(ConfigError, match="adapter 'b'.*not a PEFT adapter folder"):
        ModelConfig(str(tiny_model_dir), backend="hf", adapter=str(tmp_path / "moved")).check()


def test_a_library_trains_lora_at_loras_learning_rate_on_a_from_scratch_model_too(tmp_path, monkeypatch, capsys):
    # `--method auto` means full fine-tuning for scratch-* models, with its own rate (3e-4); a library trains LoRA.
    from skillgap.cli import main
    from skillgap.train import TrainConfig

    monkeypatch.chdir(tmp_path)
    args = ["library", "--model", "scratch-tiny", "--suite", "arith", "--skills", "add_1digit", "--budget", "8",
            "--train-batch-size", "8", "--test-limit", "0", "--output-path", "lib", "--runs-dir", "runs"]
    assert main(args) == 0
    used = json.loads((tmp_path / "lib" / "index.json").read_text())["skills"]["add_1digit"]["train"]
    assert used["method"] == "lora" and used["learning_rate"] == TrainConfig.learning_rate
    assert main(args + ["--method", "full", "--output-path", "lib2"]) == 2
    assert "a library holds one LoRA adapter per skill" in capsys.readouterr().err
