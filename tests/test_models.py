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
    backend.batch_size = 1
    single = backend.generate(chats, max_new_tokens=8)
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(0 < g.n_tokens <= 8 for g in batched)
    assert backend.identity == model_identity(ModelConfig(model=str(tiny_model_dir)))


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
