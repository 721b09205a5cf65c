"""A library of skill adapters: one LoRA per skill on a frozen base, composed and removed through PEFT.

PSEC (Liu et al., ICLR 2025) keeps one LoRA per skill and composes them by weights; for language models the
same idea is a LoRA library with fixed-weight merges or routing (Ostapenko et al., 2024), and LoRA
arithmetic (Zhang et al., NeurIPS 2023): addition, and negation, which removes a skill; Ext-Sub (Hu et al.,
AAAI 2024) removes only the part of a skill's adapter that a kept adapter does not share. PEFT does all the
other arithmetic (`add_weighted_adapter`); this module keeps the index (skill -> adapter, the examples it saw, its
training config) and names the operations in the loop's terms.

With `combination_type="linear"` PEFT scales each adapter's A by sign(w)·sqrt(|w|·scale) and B by
sqrt(|w|·scale), so a single adapter at weight −λ is exactly ΔW → −λ ΔW: Zhang et al.'s negation.
`cat` stacks the adapters (rank = sum of ranks) and is the exact weighted sum Σ w_i ΔW_i.

Arrow (Ostapenko et al., ICML 2024) routes instead of merging: per token and layer, each adapter's prototype
(the top right singular vector of its ΔW) scores the token's input by |⟨x, v⟩|, the top-k adapters are mixed by
a softmax over those scores. The choice depends on the input, so a router cannot be merged into the weights: it
is a folder naming its adapters (`router.json`), loaded by the hf backend through PEFT's `create_arrow_model`.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from skillgap.data import DataConfig, load_items, stratified_sample
from skillgap.errors import ConfigError, unknown_name
from skillgap.io import atomic, read_json, write_json
from skillgap.items import Item, write_jsonl
from skillgap.models.router import ROUTER, is_router, load_router, read_router, router  # noqa: F401 (public here too)
from skillgap.models.sources import materialize, resolve_source
from skillgap.train import train, train_fingerprint
from skillgap.verify import overlap

COMBINATIONS = ("linear", "cat", "svd", "ties", "ties_svd", "dare_linear", "dare_ties", "dare_linear_svd",
                "dare_ties_svd", "magnitude_prune", "magnitude_prune_svd")


@dataclass
class Entry:
    skill: str
    adapter: str  # relative to the library folder
    examples: int
    steps: int
    train: dict[str, Any] = field(default_factory=dict)  # the TrainConfig it was trained with
    accuracy: float | None = None  # on its own skill's held-out items, once measured
    fingerprint: str = ""  # of its training (base weights, items, settings): a resume reuses only the same training


@dataclass
class Library:
    root: Path
    base: str  # the model every adapter was trained on
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def adapter(self, skill: str) -> Path:
        if skill not in self.entries:
            raise unknown_name("skill in the library", skill, list(self.entries))
        return self.root / self.entries[skill].adapter

    def save(self) -> Path:
        return write_json({"base": self.base, "skills": {s: asdict(e) for s, e in self.entries.items()}},
                          self.index_path)

    @classmethod
    def load(cls, root: str | Path) -> Library:
        root = Path(root)
        path = root / "index.json"
        if not path.is_file():
            raise ConfigError(f"{root} is not a skill library: no index.json (build one with `skillgap library`).")
        d = read_json(path)
        return cls(root, d["base"], {s: Entry(**e) for s, e in d["skills"].items()})


def test_set(data: DataConfig, skill: str, limit: int, test_data: str | None = None) -> DataConfig:
    """The held-out items a skill's adapter is measured on: the suite's test split, a seeded sample of that skill's
    items in `test_data`, or in the --data file itself, which `train_items` then keeps out of training."""
    return replace(data, data=test_data or data.data, split="test", skills=(skill,), limit=limit)


def train_items(data: DataConfig, skill: str, budget: int, held_out: list[Item] | None = None) -> list[Item]:
    """`budget` items of `skill` alone to train its adapter on: the suite's train split, or a seeded sample of the
    file's items of that skill less the `held_out` ones (by id and by prompt text; a file has no split to trust)."""
    if not data.data:
        return load_items(replace(data, split="train", skills=(skill,), limit=budget))[0]
    items = load_items(replace(data, skills=(skill,), limit=None))[0]
    held = {test_id for test_id, _, _ in overlap(held_out or [], items)}
    rest = [it for it in items if it.id not in held]
    if not rest:
        raise ConfigError(f"--data {data.data}: all {len(items)} items of skill {skill!r} are held out to measure its "
                          "adapter; lower --test-limit or give --test-data.")
    return stratified_sample(rest, budget, data.seed)


def build_library(model: Any, data: Any, skills: list[str], budget: int, cfg: Any, root: str | Path,
                  console: Any = None, items: dict[str, list[Item]] | None = None) -> Library:
    """One LoRA per skill, each on `budget` train items made of that skill alone (or on `items[skill]`, held-out
    items already left out); resumable skill by skill, and a skill whose base weights, items or settings changed
    since its adapter was trained is trained again. Each adapter's items go beside it (`<skill>/train.jsonl`)."""
    cfg = replace(cfg, method="lora")
    lib = Library.load(root) if (Path(root) / "index.json").is_file() else Library(Path(root), model.model)
    if lib.base != model.model:
        raise ConfigError(f"{root} holds adapters of {lib.base}, not of {model.model}: give another folder.")
    for s in skills:
        chosen = items[s] if items is not None else train_items(data, s, budget)
        if not chosen:
            raise ConfigError(f"skill {s!r} has no training items of its own: it cannot have an adapter.")
        used = replace(cfg, max_steps=max(1, len(chosen) // cfg.batch_size))  # one pass over the skill's items
        fp = train_fingerprint(model, chosen, used)
        old = lib.entries.get(s)
        if old is not None and old.fingerprint == fp and lib.adapter(s).is_dir():
            continue
        if old is not None and console is not None:
            console.print(f"[yellow]{s}: its adapter was trained otherwise ({changes(old, chosen, used)}): training it "
                          f"again[/yellow]")
        result = train(model, chosen, used, lib.root / s, console=console)
        write_jsonl(chosen, lib.root / s / "train.jsonl")
        lib.entries[s] = Entry(s, str(Path(result.weights).relative_to(lib.root)), len(chosen), result.steps,
                               asdict(used), fingerprint=fp)
        lib.save()
    return lib


def changes(entry: Entry, items: list[Any], used: Any) -> str:
    """What differs between an adapter's recorded training and the one asked for, in a few words."""
    diff = [f"{k} {entry.train.get(k)} -> {v}" for k, v in asdict(used).items() if entry.train.get(k) != v]
    if entry.examples != len(items):
        diff.insert(0, f"examples {entry.examples} -> {len(items)}")
    return ", ".join(diff) or "other items or base weights"


def combine(base_folder: str | Path, adapters: dict[str, str | Path], weights: list[float], out: str | Path,
            combination_type: str = "linear", density: float | None = None) -> Path:
    """`add_weighted_adapter` over `adapters` (name -> folder), saved as one adapter folder at `out`."""
    if combination_type not in COMBINATIONS:
        raise unknown_name("combination type", combination_type, list(COMBINATIONS))
    if len(weights) != len(adapters):
        raise ConfigError(f"{len(adapters)} adapters but {len(weights)} weights.")
    if (combination_type.startswith(("ties", "dare", "magnitude"))) and density is None:
        raise ConfigError(f"combination type {combination_type} needs a density (the share of each delta kept).")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    names = list(adapters)
    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(model, str(adapters[names[0]]), adapter_name=names[0])
    for n in names[1:]:
        peft_model.load_adapter(str(adapters[n]), adapter_name=n)
    kw = {"density": density} if density is not None else {}
    peft_model.add_weighted_adapter(names, weights, "combined", combination_type=combination_type, **kw)
    out = Path(out)
    with atomic(out) as tmp:
        staged = tmp.with_name(tmp.name + ".peft")
        peft_model.save_pretrained(staged, selected_adapters=["combined"])
        nested = staged / "combined"
        (nested if nested.is_dir() else staged).rename(tmp)  # PEFT nests a non-default adapter
        shutil.rmtree(staged, ignore_errors=True)
    return out


def compose(lib: Library, skills: list[str], out: str | Path, combination: str = "cat",
            weights: list[float] | None = None, density: float | None = None, top_k: int = 1,
            expert: str | Path | None = None) -> Path:
    """The library's adapters of `skills` as one `--adapter` folder: a fixed-weight merge, an Arrow router, or
    (`ext-sub`) `expert` with one skill removed by extraction before subtraction."""
    adapters = {s: lib.adapter(s) for s in skills}
    if combination == "arrow":
        if weights is not None or density is not None:
            raise ConfigError("an Arrow router weighs adapters per token: it takes --top-k, not --weights/--density.")
        return router(adapters, out, top_k)
    if combination == "ext-sub":
        if expert is None or len(skills) != 1:
            raise ConfigError("ext-sub removes one skill from an adapter that has it: give --expert ADAPTER and "
                              "one skill in --skills.")
        weight = (weights or [-1.0])[0]
        if len(weights or [0]) != 1 or weight >= 0:
            raise ConfigError(f"ext-sub subtracts: give --weights as one negative number (−λ), got {weights}.")
        return ext_sub(expert, adapters[skills[0]], -weight, out)
    if expert is not None:
        raise ConfigError("--expert is the adapter ext-sub removes a skill from: use it with --combination ext-sub.")
    if combination not in COMBINATIONS:
        raise unknown_name("combination", combination, [*COMBINATIONS, "arrow", "ext-sub"])

    return combine(materialize(resolve_source(lib.base)), adapters, weights or [1.0] * len(skills), out,
                   combination, density)


def negate(base_folder: str | Path, adapter: str | Path, strength: float, out: str | Path) -> Path:
    """The adapter at weight −strength: ΔW → −strength·ΔW (Zhang et al.'s negation, through PEFT's linear merge)."""
    if strength <= 0:
        raise ConfigError(f"--strength must be positive (the adapter is subtracted at that weight), got {strength}.")
    return combine(base_folder, {"skill": adapter}, [-strength], out, "linear")


def _deltas(folder: str | Path) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """A LoRA folder as (config, module -> (ΔW = scale·B·A, A)), in float32."""
    import torch
    from peft import LoraConfig
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = LoraConfig.from_pretrained(str(folder))
    if cfg.rank_pattern or cfg.alpha_pattern or cfg.use_dora:
        raise ConfigError(f"{folder}: Ext-Sub reads plain LoRA adapters with one rank and alpha (this one has "
                          "rank/alpha patterns or DoRA).")
    scale = cfg.lora_alpha / (cfg.r ** 0.5 if cfg.use_rslora else cfg.r)
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    out = {}
    for key, b in tensors.items():
        if ".lora_B." in key:
            a = tensors[key.replace(".lora_B.", ".lora_A.")].to(torch.float32)
            out[key.split(".lora_B.")[0]] = (scale * b.to(torch.float32) @ a, a)
    if not out:
        raise ConfigError(f"{folder}: no lora_A/lora_B tensors in adapter_model.safetensors.")
    return cfg, out


def ext_sub(expert: str | Path, anti_expert: str | Path, strength: float, out: str | Path) -> Path:
    """Ext-Sub (Hu et al., AAAI 2024): subtract from `expert` only what `anti_expert` does not share with it.

    Per module and output row i, with ŵ a row over its norm: c_i = normalise(ŵ⁺_i + ŵ⁻_i) is the direction the
    two share, P_i = (w⁻_i · c_i) c_i the anti-expert's part along it, and ΔW = ΔW⁺ − λ(ΔW⁻ − P), as the
    reference `ext_sub.py` does. Every row of ΔW lies in the row spaces of A⁺ and A⁻, so it is saved exactly
    as a LoRA of rank r⁺ + r⁻ (A: an orthonormal basis of those rows, B = ΔW Aᵀ); the reference saves the full
    matrix, which is the same delta.
    """
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    if strength <= 0:
        raise ConfigError(f"Ext-Sub strength must be positive (the anti-expert is subtracted at it), got {strength}.")
    cfg, plus = _deltas(expert)
    _, minus = _deltas(anti_expert)
    if set(plus) != set(minus):
        missing = sorted(set(plus) ^ set(minus))[:3]
        raise ConfigError(f"Ext-Sub needs adapters on the same modules: {expert} and {anti_expert} differ "
                          f"(e.g. {missing}); train both with the same LoRA settings.")
    rank = next(iter(plus.values()))[1].shape[0] + next(iter(minus.values()))[1].shape[0]
    tensors = {}
    for module, (dw_plus, a_plus) in plus.items():
        dw_minus, a_minus = minus[module]
        c = F.normalize(F.normalize(dw_plus, dim=-1) + F.normalize(dw_minus, dim=-1), dim=-1)  # zero rows stay 0
        kept = (dw_minus * c).sum(-1, keepdim=True) * c
        dw = dw_plus - strength * (dw_minus - kept)
        basis = torch.linalg.qr(torch.cat([a_plus, a_minus]).T).Q  # in × (r⁺ + r⁻) when in ≥ r⁺ + r⁻
        basis = F.pad(basis, (0, rank - basis.shape[1]))  # fewer input features than the rank: zero columns
        tensors[f"{module}.lora_A.weight"] = basis.T.contiguous()
        tensors[f"{module}.lora_B.weight"] = (dw @ basis).contiguous()
    out = Path(out)
    cfg.r, cfg.lora_alpha, cfg.use_rslora = rank, rank, False  # scale 1: B carries it
    with atomic(out) as tmp:
        tmp.mkdir()
        cfg.save_pretrained(str(tmp))
        save_file(tensors, str(tmp / "adapter_model.safetensors"))
    return out
