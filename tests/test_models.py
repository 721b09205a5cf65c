from pathlib import Path

import pytest

from skillgap.errors import BackendError, ConfigError
from skillgap.models import ModelConfig, load_model, model_identity
from skillgap.models.sources import resolve_source


def test_batched_left_padded_generation_matches_one_at_a_time(tiny_model_dir):
    """Left padding must not change what each row generates (random tiny Llama, greedy)."""
    backend = load_model(ModelConfig(model=str(tiny_model_dir), device="cpu"), batch_size=3)
    chats = [[{"role": "user", "content": q}] for q in
             ("Hi", "What is 47 + 38? Show your work please.", "A much longer question " * 6)]
    batched = backend.generate(chats, max_new_tokens=8)
    backend.width = 1
    single = backend.generate(chats, max_new_tokens=8)
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(0 < g.n_tokens <= 8 for g in batched)
    assert backend.identity == model_identity(ModelConfig(model=str(tiny_model_dir)))


@pytest.fixture(scope="module")
def varied_model_dir(tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path) -> Path:
    """conftest's tiny Llama with larger random weights: its greedy replies vary from token to token and from prompt
    to prompt (at the default init every reply is one newline repeated), so agreement tests mean something."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.3,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    out = tmp_path_factory.mktemp("varied-llama")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_continuous_batching_matches_plain_generate_one_prompt_at_a_time(varied_model_dir):
    """Rows leave the batch as they end and waiting prompts take their place, left-padded into one KV cache: each
    reply is still plain `model.generate` on its prompt alone (random tiny Llama, greedy, 2 rows for 5 prompts)."""
    backend = load_model(ModelConfig(model=str(varied_model_dir), backend="hf", device="cpu"))
    chats = [[{"role": "user", "content": q}] for q in
             ("Hi", "What is 47 + 38? Show your work please.", "A much longer question " * 6, "7 * 8?",
              "Name three prime numbers and add them up, then halve the sum.")]

    def alone(chat: list[dict[str, str]]) -> list[int]:
        enc = backend.tokenizer(backend.render(chat), return_tensors="pt", add_special_tokens=False)
        out = backend.model.generate(**enc, do_sample=False, max_new_tokens=12, eos_token_id=backend.stop_ids,
                                     pad_token_id=backend.tokenizer.pad_token_id)
        return out[0, enc["input_ids"].shape[1]:].tolist()

    # a random model never ends a reply: tokens it writes early become stop tokens, so that rows end at different
    # steps and waiting prompts join a batch already decoding
    backend.stop_ids = sorted({*backend.stop_ids, alone(chats[1])[2], alone(chats[3])[6]})
    expected = [backend.decoded(alone(c)) for c in chats]
    assert len({g.n_tokens for g in expected}) > 1
    backend.width = 2
    assert backend.generate(chats, max_new_tokens=12) == expected


def test_alias_resolves_to_the_packaged_gguf():
    src = resolve_source("smollm2-135m")
    assert src.is_gguf and src.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and src.path.is_file()


def test_bad_model_paths_and_backends(tmp_path):
    with pytest.raises(BackendError, match="No model at"):
        resolve_source(str(tmp_path / "missing"))
    with pytest.raises(BackendError, match="no config.json"):
        resolve_source(str(tmp_path))
    with pytest.raises(ConfigError, match="Did you mean 'openai'"):
        load_model(ModelConfig(backend="opena"))
