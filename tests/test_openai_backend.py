"""The `openai` backend against a real OpenAI-compatible server: llama.cpp's, serving the embedded GGUF."""

import json

import pytest

from conftest import free_port as _free_port
from conftest import run_cli
from skillgap.errors import BackendError
from skillgap.models import ModelConfig, load_model


@pytest.mark.slow
def test_generate_keeps_order_under_concurrency(server):
    backend = load_model(ModelConfig(model="smollm2", base_url=server, concurrency=3))
    chats = [[{"role": "user", "content": f"Write the number {n} and nothing else."}] for n in (11, 22, 33, 44)]
    gens = backend.generate(chats, max_new_tokens=12)
    assert len(gens) == 4 and all(g.text and 0 < g.n_tokens <= 12 for g in gens)
    assert backend.identity == f"openai:smollm2@{server}"


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_reply_cut_off_by_the_token_limit_is_marked_and_counted_not_graded(server, tmp_path):
    backend = load_model(ModelConfig(model="smollm2", base_url=server))
    chat = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]
    cut, = backend.generate([chat], max_new_tokens=3)
    assert cut.truncated and cut.n_tokens == 3
    whole = backend.generate([[{"role": "user", "content": "Say OK."}]], max_new_tokens=64)[0]
    assert whole.n_tokens < 64 and not whole.truncated  # ended by the model, not by the limit
    p = run_cli("profile", "--model", "smollm2", "--base-url", server, "--suite", "arith", "--limit", "4",
                "--max-new-tokens", "2", "--output-path", "p.json", "--runs-dir", "runs", cwd=tmp_path)
    prof = json.loads((tmp_path / "p.json").read_text())
    assert [r["status"] for r in prof["records"]] == ["truncated"] * 4
    o = prof["overall"]
    assert (o["n"], o["correct"], o["unparsed"], o["truncated"]) == (4, 0, 4, 4)
    assert "4 (100%), 4 cut off" in p.stdout
