"""The teacher plumbing end to end against real OpenAI-compatible servers: llama.cpp's, serving the
embedded GGUF, and small stdlib HTTP servers that are down, slow or answer junk.

The embedded 135M model is a poor teacher; these tests check prompts, constrained parsing, retries,
the cache and concurrency, not the quality of its answers.
"""

import http.server
import json
import threading
import time

import pytest

from conftest import free_port, run_cli, shared_data, start_server
from skillgap.errors import BackendError
from skillgap.models import ModelConfig, load_model
from skillgap.skills import load_inventory
from skillgap.suites import load_suite
from skillgap.teacher import Cache, Invalid, Teacher

CHAT = [{"role": "user", "content": "Reply with JSON only: {\"n\": <a number>}"}]


def teacher(url: str, tmp_path, **kw) -> Teacher:
    return Teacher(ModelConfig(model="smollm2", base_url=url, concurrency=2, max_retries=1, timeout=kw.pop("timeout", 60)),
                   Cache(tmp_path / "teacher.db"), max_new_tokens=24, **kw)


@pytest.mark.slow
def test_cache_makes_a_rerun_free_and_survives_the_server(tmp_path):
    port = free_port()
    proc = start_server(port)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        t = teacher(url, tmp_path)
        first = t.complete([CHAT, CHAT + [{"role": "user", "content": "again"}]], temperature=0.0)
        assert t.calls == 2 and t.hits == 0 and all(first)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    again = teacher(url, tmp_path)  # a new process would see the same: the cache is on disk
    assert again.complete([CHAT, CHAT + [{"role": "user", "content": "again"}]], temperature=0.0) == first
    assert again.calls == 0 and again.hits == 2  # the server is gone, and nothing was needed from it
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}.*APIConnectionError after 2 tries"):
        again.complete([[{"role": "user", "content": "not cached"}]], temperature=0.0)
    assert len(Cache(tmp_path / "teacher.db")) == 2  # the failure lost nothing


@pytest.mark.slow
def test_malformed_replies_are_retried_with_the_reason(server, tmp_path):
    seen: list[str] = []

    def fussy(text: str) -> str:  # rejects the first reply it sees, whatever it is
        seen.append(text)
        if len(seen) == 1:
            raise Invalid("the first reply is never accepted")
        return text

    t = teacher(server, tmp_path, retries=2)
    [r] = t.ask([CHAT], fussy)
    assert r.status == "ok" and r.tries == 2 and t.calls == 2
    never = teacher(server, tmp_path, retries=1)

    def reject(text: str) -> str:
        raise Invalid("nothing is accepted")

    [r] = never.ask([CHAT], reject)
    assert r.status == "invalid" and r.value is None and r.tries == 2 and r.error == "nothing is accepted"


def test_a_chat_repeated_in_a_sampled_call_is_sampled_once_per_copy(tiny_model_dir):
    """Two Skill-Mix draws of one prompt are two samples: each copy of a chat gets its own seed, reply and cache
    entry, in `complete` and in `ask` (a judge's grades). One seed per call used to give the copies one key, so
    every repeat was the first draw's reply (and grade) counted again. Greedy copies still share one reply."""
    from skillgap.teacher import call_key, sample_seeds, seed_for

    a, b = CHAT, CHAT + [{"role": "user", "content": "again"}]
    assert sample_seeds([a, b, a, a], 0.7, 5) == [5, 5, seed_for(5, 1), seed_for(5, 2)]
    assert sample_seeds([a, b, a], 0.0, 5) == [5, 5, 5]
    t = Teacher(ModelConfig(model=str(tiny_model_dir), backend="hf", device="cpu"), Cache(":memory:"),
                max_new_tokens=6, temperature=0.7)
    texts = t.complete([a, a, b, a], temperature=0.7, seed=5)
    assert len({texts[0], texts[1], texts[3]}) == 3 and len(t.cache) == 4 and t.calls == 4
    keys = [call_key(t.identity, a, 6, 0.7, s, None) for s in (5, seed_for(5, 1), seed_for(5, 2))]
    stored = t.cache.get(keys)
    assert [stored.get(k) for k in keys] == [texts[0], texts[1], texts[3]]  # one entry per copy
    assert t.complete([a, a, b, a], 0.7, 5) == texts and t.calls == 4  # a re-run: each copy from its own entry
    graded = t.ask([b, b, b], parse=str, seed=9)  # a judge grading three identical texts: three grading samples
    assert len({r.value for r in graded}) == 3 and t.calls == 7
    greedy = t.complete([a, a], temperature=0.0)
    assert greedy[0] == greedy[1] and t.calls == 8  # one greedy call serves both


@pytest.mark.slow
def test_schema_falls_back_to_llama_cpp_form(server, tmp_path):
    backend = load_model(ModelConfig(model="smollm2", base_url=server))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    [g] = backend.generate([CHAT], max_new_tokens=16, schema=schema)
    # llama.cpp's server rejects OpenAI's json_schema form; its json_object + schema form constrains decoding
    assert backend.formats[0] == "json_object"
    assert isinstance(json.loads(g.text)["n"], int)


@pytest.mark.slow
def test_label_with_a_teacher_endpoint(server, tmp_path):
    data = shared_data()
    args = ("label", "--data", str(data / "gsm8k" / "test.jsonl"), "--format", "gsm8k", "--skills",
            str(data / "math-skill-labels" / "gsm8k_test.jsonl"), "--labeler", "teacher", "--max-skills", "2",
            "--teacher", "smollm2", "--teacher-base-url", server, "--teacher-concurrency", "2", "--limit", "4",
            "--teacher-max-new-tokens", "48", "--teacher-cache", "t.db", "--output-path", "l.jsonl")
    p = run_cli(*args, cwd=tmp_path)
    items = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().split("\n") if line]
    inventory = set(load_inventory(data / "math-skill-labels" / "gsm8k_test.jsonl").ids)
    assert len(items) == 4
    for it in items:
        lab = it["metadata"]["labels"]
        assert lab["labeler"] == "teacher"
        assert (lab["status"] == "ok" and 1 <= len(it["skills"]) <= 2 and set(it["skills"]) <= inventory) or \
            (lab["status"] == "invalid" and it["skills"] == [])
    assert "from the cache" in p.stdout
    again = run_cli(*args, cwd=tmp_path)
    assert "teacher: 0 calls" in again.stdout  # a re-run costs nothing
    assert (tmp_path / "l.jsonl").read_text() == "\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n"


@pytest.mark.slow
def test_discover_through_the_endpoint(server, tmp_path):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"question": q, "answer": f"x #### {a}"}) + "\n" for q, a in [
        ("What is 12% of 50?", 6), ("A car drives 60 km/h for 2 hours. How far does it go?", 120),
        ("Tom has 3 apples and buys 4 more. How many apples?", 7), ("What is 5 times 6?", 30)]))
    run_cli("discover", "--data", "d.jsonl", "--clusters", "2", "--teacher", "smollm2", "--teacher-base-url",
                server, "--teacher-max-new-tokens", "40", "--teacher-retries", "1", "--teacher-cache", "t.db",
                "--output-path", "skills.yaml", cwd=tmp_path)
    inv = load_inventory(tmp_path / "skills.yaml")
    assert 1 <= len(inv) <= 2
    import yaml

    doc = yaml.safe_load((tmp_path / "skills.yaml").read_text())
    assert all(s["members"] for s in doc["skills"]) and doc["discovery"]["items"] == 4
    labelled = [json.loads(line) for line in (tmp_path / "skills.items.jsonl").read_text().split("\n") if line]
    assert len(labelled) == 4 and all(set(it["skills"]) <= set(inv.ids) for it in labelled)


@pytest.mark.slow
def test_diagnose_and_judge_through_the_endpoint(server, tmp_path):
    common = ("--model", "smollm2", "--base-url", server, "--suite", "arith", "--limit", "6", "--max-new-tokens", "32",
              "--runs-dir", "runs")
    run_cli("profile", *common, "--output-path", "p.json", cwd=tmp_path)
    prof = json.loads((tmp_path / "p.json").read_text())
    n_wrong = sum(k["n"] - k["correct"] - k["unparsed"] for k in prof["by_k"])  # graded and wrong
    n_unparsed = prof["overall"]["unparsed"]
    run_cli("diagnose", prof["run_id"], "--teacher", "smollm2", "--teacher-base-url", server,
            "--teacher-max-new-tokens", "64", "--teacher-cache", "t.db", "--runs-dir", "runs",
            "--output-path", "msp.json", cwd=tmp_path)
    msp = json.loads((tmp_path / "msp.json").read_text())
    d = msp["diagnosis"]
    assert d["wrong"] == n_wrong and d["diagnosed"] + d["invalid"] == n_wrong
    assert d["format_failures"] == n_unparsed and d["with_reference"] is False
    arith = set(load_suite("arith").skills.ids)
    assert set(msp["missing"]) <= arith and sum(msp["missing"].values()) <= 3 * d["diagnosed"]
    diags = [json.loads(line) for line in (tmp_path / "msp.diagnoses.jsonl").read_text().split("\n") if line]
    assert len(diags) == n_wrong + n_unparsed and all(1 <= len(x["skills"]) <= 3 for x in diags if x["status"] == "ok")
    assert sum(x["status"] == "format_failure" and not x["skills"] for x in diags) == n_unparsed
    # the teacher's profile drives targeting like a traced one (what `skillgap train --profile msp.json` does)
    from skillgap.target import Request, build_mixture

    suite = load_suite("arith")
    if msp["missing"]:
        mix = build_mixture("stat-sel", Request(msp["missing"], suite.generate("train", 400, 0), 64, 0, suite.skills))
        top = max(msp["missing"], key=msp["missing"].get)
        assert mix.by_skill().get(top, 0) > 0
    run_cli("profile", *common, "--grader", "judge", "--judge", "smollm2", "--judge-base-url", server,
            "--output-path", "j.json", cwd=tmp_path)
    judged = json.loads((tmp_path / "j.json").read_text())
    assert judged["run_id"] != prof["run_id"]  # the judge is part of what a run is keyed on
    assert judged["overall"]["n"] == 6
    assert judged["config"]["eval"]["judge"]["model"] == "smollm2"


class _Junk(http.server.BaseHTTPRequestHandler):
    delay = 0.0
    body = b"<html>502 Bad Gateway</html>"

    def do_POST(self):  # noqa: N802
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def junk_server():
    servers = []

    def start(delay: float = 0.0, body: bytes = _Junk.body) -> str:
        handler = type("H", (_Junk,), {"delay": delay, "body": body})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/v1"

    yield start
    for s in servers:
        s.shutdown()


def test_junk_and_slow_endpoints_are_clear_errors(junk_server, tmp_path):
    url = junk_server()
    with pytest.raises(BackendError, match="not a chat completion|without choices"):
        teacher(url, tmp_path).complete([CHAT], temperature=0.0)
    url = junk_server(body=json.dumps({"object": "chat.completion", "choices": []}).encode())
    with pytest.raises(BackendError, match=r"without choices\[0\]\.message"):
        teacher(url, tmp_path).complete([CHAT], temperature=0.0)
    url = junk_server(delay=3.0)
    with pytest.raises(BackendError, match="APITimeoutError after 2 tries.*Raise --timeout"):
        teacher(url, tmp_path, timeout=0.5).complete([CHAT], temperature=0.0)
