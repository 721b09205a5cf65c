"""The `openai` backend against a real OpenAI-compatible server: llama.cpp's, serving the embedded GGUF."""

import json

import pytest

from conftest import free_port as _free_port
from conftest import run_cli
from skillgap.errors import BackendError
from skillgap.models import ModelConfig, load_model


def test_generate_keeps_order_under_concurrency(server):
    backend = load_model(ModelConfig(model="smollm2", base_url=server, concurrency=3))
    chats = [[{"role": "user", "content": f"Write the number {n} and nothing else."}] for n in (11, 22, 33, 44)]
    gens = backend.generate(chats, max_new_tokens=12)
    assert len(gens) == 4 and all(g.text and 0 < g.n_tokens <= 12 for g in gens)
    assert backend.identity == f"openai:smollm2@{server}"


def test_profile_through_the_endpoint(server, tmp_path):
    run_cli("profile", "--model", "smollm2", "--base-url", server, "--suite", "arith", "--limit", "6",
            "--max-new-tokens", "48", "--concurrency", "2", "--output-path", "p.json", "--runs-dir", "runs",
            cwd=tmp_path)
    prof = json.loads((tmp_path / "p.json").read_text())
    assert prof["model"] == f"openai:smollm2@{server}"
    assert sum(k["n"] for k in prof["by_k"]) == 6
    assert prof["config"]["model"]["backend"] == "openai"


def test_unreachable_endpoint_is_a_clear_error():
    backend = load_model(ModelConfig(model="x", base_url=f"http://127.0.0.1:{_free_port()}/v1", max_retries=1,
                                     timeout=5))
    with pytest.raises(BackendError, match=r"APIConnectionError after 2 tries.*Is the server up"):
        backend.generate([[{"role": "user", "content": "hi"}]], max_new_tokens=4)
