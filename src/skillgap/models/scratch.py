"""From-scratch models for synthetic suites: `--model scratch-tiny`.

Skill-it's synthetic experiments need a model that starts without the skills. This builds one:
a small Llama-style decoder (a transformers config, randomly initialised from a seed) with a
word-level tokenizer whose vocabulary is read off the suite's own items. The result is saved as
a normal model folder under the cache, so everything downstream (the `hf` backend, TRL
training, checkpoints) treats it like any other model: there is no separate trainer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from skillgap.errors import unknown_name
from skillgap.io import atomic
from skillgap.models.sources import cache_dir
from skillgap.store import fingerprint
from skillgap.suites import load_suite


@dataclass(frozen=True)
class ScratchArch:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    max_position_embeddings: int = 256


ARCHS: dict[str, ScratchArch] = {
    "scratch-tiny": ScratchArch(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4),
    "scratch-deep": ScratchArch(hidden_size=128, intermediate_size=512, num_hidden_layers=8, num_attention_heads=4),
    "scratch-small": ScratchArch(hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=8),
}
SPECIALS = ("<pad>", "<unk>", "<eos>")


def is_scratch(model: str) -> bool:
    return model in ARCHS


def from_scratch(model: str) -> bool:
    """A from-scratch architecture by name, or the folder `scratch_model` built for one (its skillgap.json)."""
    return is_scratch(model) or (Path(model) / "skillgap.json").is_file()


def vocabulary(suite: object, n: int = 2000) -> list[str]:
    """Every word the suite's items use (prompts and answers, all splits), in a stable order."""
    from tokenizers.pre_tokenizers import Digits, Sequence, Whitespace

    pre = Sequence([Whitespace(), Digits(individual_digits=True)])
    words: set[str] = set()
    for split in ("train", "test"):
        for it in suite.generate(split, n, seed=0):  # type: ignore[attr-defined]
            for text in (it.chat()[-1]["content"], it.completion or "", it.answer):
                words.update(w for w, _ in pre.pre_tokenize_str(text))
    return sorted(words)


def scratch_model(name: str, suite_name: str, seed: int = 0) -> Path:
    """The model folder for architecture `name` with `suite_name`'s vocabulary, built once and cached."""
    if name not in ARCHS:
        raise unknown_name("scratch model", name, list(ARCHS))
    arch = ARCHS[name]
    words = vocabulary(load_suite(suite_name))
    key = fingerprint({"arch": asdict(arch), "words": words, "seed": seed, "specials": SPECIALS})[:12]
    out = cache_dir() / "models" / f"{name}-{suite_name}-s{seed}-{key}"
    if (out / "config.json").is_file():
        return out

    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Digits, Sequence, Whitespace
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate([*SPECIALS, *words])}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    # Digits one by one: "val1" and "val 1" read the same, so prompt + completion need no separator.
    core.pre_tokenizer = Sequence([Whitespace(), Digits(individual_digits=True)])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>",
                                  model_max_length=arch.max_position_embeddings)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=arch.hidden_size, intermediate_size=arch.intermediate_size,
                      num_hidden_layers=arch.num_hidden_layers, num_attention_heads=arch.num_attention_heads,
                      num_key_value_heads=arch.num_attention_heads,
                      max_position_embeddings=arch.max_position_embeddings, tie_word_embeddings=True,
                      pad_token_id=vocab["<pad>"], eos_token_id=vocab["<eos>"], bos_token_id=None)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = vocab["<pad>"]
    with atomic(out) as tmp:  # a killed build leaves only the temporary folder behind
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "skillgap.json").write_text(json.dumps({"arch": name, "suite": suite_name, "seed": seed}) + "\n")
    return out
