"""Identity by content: every result that is reused (a profile run, a finished training, a library adapter) is
reused only for the same weights, items and settings, never for the same path or name alone."""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from skillgap.data import DataConfig
from skillgap.items import item_from_dict, read_jsonl, write_jsonl
from skillgap.models import ModelConfig, load_model, model_identity
from skillgap.models.sources import resolve_source
from skillgap.recipes.profile import EvalConfig, profile
from skillgap.store import RunStore
from skillgap.suites import load_suite
from skillgap.train import TrainConfig, train

TINY_TRAIN = TrainConfig(batch_size=4, eval_every=0, save_every=100, lora_r=4, lora_alpha=8)


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _generated(runs: Path, run_id: str) -> int:
    """Items the latest session of a run generated (0: the run store answered from an earlier session)."""
    store = RunStore(runs)
    try:
        return store.sessions(run_id)[-1]["generated"]
    finally:
        store.close()


def _outputs(runs: Path, run_id: str) -> dict[str, str]:
    store = RunStore(runs)
    try:
        return {r.item.id: r.output for r in store.records(run_id)}
    finally:
        store.close()


def test_a_model_retrained_into_the_same_folder_is_a_new_run_measured_on_the_new_weights(tmp_path, tiny_model_dir):
    base = ModelConfig(str(tiny_model_dir), backend="hf", device="cpu")
    suite = load_suite("arith")
    data = DataConfig(suite="arith", limit=4)
    ev = EvalConfig(batch_size=4, max_new_tokens=8)
    full = replace(TINY_TRAIN, method="full")
    first = train(base, suite.generate("train", 8, seed=0), replace(full, learning_rate=1e-4), tmp_path / "out")
    trained = ModelConfig(first.weights, backend="hf", device="cpu")
    before = profile(trained, data, ev, tmp_path / "runs")
    # retrained into the same folder: other items, a much larger step, so other weights
    second = train(base, suite.generate("train", 8, seed=1), replace(full, learning_rate=5e-2), tmp_path / "out")
    assert second.weights == first.weights
    after = profile(trained, data, ev, tmp_path / "runs")
    assert after.run_id != before.run_id  # not the first model's run, returned from the store
    assert _generated(tmp_path / "runs", after.run_id) == 4  # every item generated again
    items = [it for it in suite.generate("test", 50, seed=0) if it.id in _outputs(tmp_path / "runs", after.run_id)]
    direct = load_model(trained, batch_size=4).generate([it.chat() for it in items], 8)
    assert _outputs(tmp_path / "runs", after.run_id) == {it.id: g.text for it, g in zip(items, direct)}


def test_a_folder_is_hashed_once_and_again_only_when_a_file_changes(tmp_path, tiny_model_dir, monkeypatch):
    from skillgap.models import sources

    monkeypatch.setenv("SKILLGAP_CACHE", str(tmp_path / "cache"))
    folder = _copy_model(tiny_model_dir, tmp_path / "model")
    hashed: list[str] = []
    real = sources._sha256
    monkeypatch.setattr(sources, "_sha256", lambda p: hashed.append(p.name) or real(p))
    first = resolve_source(str(folder)).identity
    assert "model.safetensors" in hashed and "config.json" in hashed and "tokenizer.json" in hashed
    hashed.clear()
    assert resolve_source(str(folder)).identity == first and hashed == []  # the cache answers: nothing is read
    (folder / "training_args.bin").write_bytes(b"not part of the model")
    (folder / "README.md").write_text("nor this")
    assert resolve_source(str(folder)).identity == first
    cfg = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps(cfg | {"repetition_penalty": 1.3}))
    changed = resolve_source(str(folder)).identity
    assert changed != first and hashed == ["generation_config.json"]  # only the changed file is read again


def test_dtype_auto_is_keyed_as_it_resolves_on_each_device_class(tiny_model_dir):
    import torch

    from skillgap.models.hf import pick_dtype

    def key(**kw: str) -> str:
        return model_identity(ModelConfig(str(tiny_model_dir), backend="hf", **kw))

    assert key(device="cuda") != key(device="cpu")  # bf16 on a GPU, fp32 on a CPU: never one run
    assert key(device="cuda") == key(device="cuda:1") == key(device="cuda", dtype="bfloat16")
    assert key(device="cuda", dtype="float32") not in (key(device="cuda"), key(device="cpu", dtype="float32"))
    assert key(device="cpu") == key(device="cpu", dtype="float32") != key(device="mps")
    assert key(device="cpu") == key()  # here, auto is the CPU
    assert "@bfloat16/cuda" in key(device="cuda") and "@float32/cpu" in key(device="cpu")
    # what the backends load is what the key says
    assert pick_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert model_identity(ModelConfig("openai/m", base_url="http://x/v1", device="cuda")) == "openai:m@http://x/v1"


def test_an_edited_data_file_under_the_same_path_and_ids_is_a_new_run(tmp_path, tiny_model_dir):
    items = load_suite("arith").generate("test", 4, seed=0)
    write_jsonl(items, tmp_path / "test.jsonl")
    model = ModelConfig(str(tiny_model_dir), backend="hf", device="cpu")
    data, ev = DataConfig(data=str(tmp_path / "test.jsonl")), EvalConfig(batch_size=4, max_new_tokens=4)
    first = profile(model, data, ev, tmp_path / "runs")
    edited = [item_from_dict(it.to_dict() | {"answer": "0"}) for it in items]  # the same ids, other answers
    write_jsonl(edited, tmp_path / "test.jsonl")
    second = profile(model, data, ev, tmp_path / "runs")
    assert second.run_id != first.run_id
    store = RunStore(tmp_path / "runs")
    assert [r.item.answer for r in store.records(second.run_id)] == ["0"] * 4  # graded against the new answers
    store.close()


def test_an_edited_training_file_under_the_same_ids_trains_again(tmp_path, tiny_model_dir):
    model = ModelConfig(str(tiny_model_dir), backend="hf", device="cpu")
    items = load_suite("arith").generate("train", 8, seed=0)
    first = train(model, items, TINY_TRAIN, tmp_path / "out")
    done = tmp_path / "out" / "train_result.json"
    stamp = done.stat().st_mtime_ns
    assert train(model, items, TINY_TRAIN, tmp_path / "out").fingerprint == first.fingerprint
    assert done.stat().st_mtime_ns == stamp  # the same items and settings: nothing to do
    write_jsonl(items, tmp_path / "train.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    edited = tmp_path / "train.jsonl"
    edited.write_text("".join(json.dumps(r | {"completion": f"{r['completion']} So the answer is {r['answer']}."})
                              + "\n" for r in rows))  # the same ids, longer completions
    again = train(model, read_jsonl(edited), TINY_TRAIN, tmp_path / "out")
    assert again.fingerprint != first.fingerprint and done.stat().st_mtime_ns != stamp
    assert again.train_tokens > first.train_tokens  # trained on the edited completions
    assert json.loads(done.read_text())["fingerprint"] == again.fingerprint


def test_a_library_rebuilds_an_adapter_trained_with_another_budget(tmp_path, tiny_model_dir):
    from skillgap.library import Library, build_library

    model = ModelConfig(str(tiny_model_dir), backend="hf", device="cpu")
    build_library(model, DataConfig(suite="arith"), ["add_1digit"], 8, TINY_TRAIN, tmp_path / "lib")
    lib = Library.load(tmp_path / "lib")
    weights = lib.adapter("add_1digit") / "adapter_model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert lib.entries["add_1digit"].examples == 8
    lib.entries["add_1digit"].accuracy = 0.5  # as `skillgap library --test-limit` records it
    lib.save()
    build_library(model, DataConfig(suite="arith"), ["add_1digit"], 12, TINY_TRAIN, tmp_path / "lib")
    entry = Library.load(tmp_path / "lib").entries["add_1digit"]
    assert (entry.examples, entry.steps, entry.train["max_steps"]) == (12, 3, 3) and weights.stat().st_mtime_ns != stamp
    assert entry.accuracy is None  # the old adapter's accuracy is not the new one's
    # the index records the fingerprint of the training it holds
    assert entry.fingerprint == json.loads((tmp_path / "lib" / "add_1digit" / "train_result.json").read_text())[
        "fingerprint"]
    stamp = weights.stat().st_mtime_ns
    build_library(model, DataConfig(suite="arith"), ["add_1digit"], 12, TINY_TRAIN, tmp_path / "lib")
    assert weights.stat().st_mtime_ns == stamp  # the same budget again: kept


def test_an_edited_mixture_pool_is_another_training(tmp_path, tiny_model_dir):
    from skillgap.recipes.online import MixConfig, build_online
    from skillgap.train import train_fingerprint

    model = ModelConfig(str(tiny_model_dir), backend="hf", device="cpu")
    pool = load_suite("arith").generate("train", 40, seed=0)
    test = load_suite("arith").generate("test", 4, seed=0)
    write_jsonl(pool, tmp_path / "pool.jsonl")
    data = DataConfig(data=str(tmp_path / "test.jsonl"))
    mc = MixConfig(mixture="stratified", train_data=str(tmp_path / "pool.jsonl"), val_per_skill=1)
    tc = replace(TINY_TRAIN, max_steps=4, eval_every=2)

    def key() -> str:
        online = build_online(data, mc, tc, test, None)
        return train_fingerprint(model, [], tc, online.val, online.stream, online.rounds)

    first = key()
    assert key() == first
    write_jsonl([item_from_dict(it.to_dict() | {"completion": "edited"}) if i == len(pool) - 1 else it
                 for i, it in enumerate(pool)], tmp_path / "pool.jsonl")  # one training item, same id
    assert key() != first


def test_a_merged_adapter_is_cached_per_base_content(tmp_path, tiny_model_dir, monkeypatch):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from skillgap.models.vllm import merged_path

    monkeypatch.setenv("SKILLGAP_CACHE", str(tmp_path / "cache"))
    base = _copy_model(tiny_model_dir, tmp_path / "model")
    net = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    get_peft_model(net, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "adapter")
    first = merged_path(base, str(tmp_path / "adapter"))
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    net.save_pretrained(base)  # the base retrained in its folder
    assert merged_path(base, str(tmp_path / "adapter")) != first
    assert os.path.basename(first).startswith("model-")
