"""Throughput of every generation path skillgap has, side by side in one run, on the same `arith` items.

Paths (each greedy, the same chat template, stop tokens and `--max-new-tokens`):

1. hf naive: plain transformers `model.generate`, one prompt at a time (the obvious loop);
2. hf static (issue 12 to 39): batches of 16 sorted by prompt tokens, `model.generate` each, as
   `HFBackend.generate` was before issue 39 (issue 12's "before" row: profile_throughput-issue12.md);
3. hf now: `HFBackend.generate`, continuously batched (a row leaves when it ends, a waiting prompt
   takes its place; 64 rows at once on a CPU), called as the profile recipe calls it (`backend.batch_size`
   chats per call);
4. skillgap vllm fp32 / bf16: `VLLMBackend.generate`, called as the profile recipe calls it
   (chunks of `--vllm-batch-size` chats);
5. raw vLLM: `LLM.chat` on the same chats, all at once, on the same engine: the ceiling skillgap's
   path is compared with (target: within 1.1x);
6. adapters: the main job's LoRA adapter served by hf (merged by PEFT), by vLLM's LoRA kernels
   (`LoRARequest`) and by vLLM on the merged weights: what `--adapter-mode auto` picks on a CPU.

For each: items/s, generated tokens/s, model GFLOP/s as a share of the machine's measured fp32 and
bf16 matmul peaks (model FLOPs = 2 * n_params * (prompt + generated tokens), a floor: it ignores
attention and the work wasted on padding), and agreement: the share of items whose text equals the
hf static fp32 output, i.e. the hf backend's text before issue 39 (the adapter rows: equals hf + PEFT), and the
share of items whose `arith` grade (the suite's numeric grader) equals it. Engine start-up times are reported apart.
The markdown beside the JSON (`--output-path` with .md) is written from the JSON by this script.

Resumable: each finished path is written to `--output-path` at once, and a re-run skips it.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/profile_throughput.py --limit 128 --naive-limit 32 \\
        --adapter /path/to/out/adapter --output-path benchmarks/results/profile_throughput.json

`--vllm fp32` measures skillgap's fp32 vLLM path only (no bf16 engine, no raw LLM.chat), `--vllm none` no vLLM.

A smoke run: --limit 4 --naive-limit 2 --max-new-tokens 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from skillgap.grade import get_grader
from skillgap.models import Generation, ModelConfig, load_model
from skillgap.suites import load_suite

from common import write_json

FLOP_NOTE = "model FLOPs = 2 * n_params * (prompt + generated tokens); attention and padding not counted"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--limit", type=int, default=128, help="items for every path but the naive one")
    p.add_argument("--naive-limit", type=int, default=32, help="items for the naive loop (the first of --limit)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--vllm-batch-size", type=int, default=64, help="chats per VLLMBackend.generate call")
    p.add_argument("--adapter", default=None, help="a LoRA adapter folder for the adapter rows (skipped if none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vllm", choices=("all", "fp32", "none"), default="all", help="which vLLM rows to measure")
    p.add_argument("--output-path", type=Path, default=Path("benchmarks/results/profile_throughput.json"))
    return p.parse_args(argv)


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Best GFLOP/s of an n x n matmul: the machine's peak for that dtype, as torch reaches it."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


@torch.inference_mode()
def hf_naive(backend: Any, chats: list[Any], max_new_tokens: int) -> list[Generation]:
    out = []
    for chat in chats:
        enc = backend.tokenizer(backend.render(chat), return_tensors="pt", add_special_tokens=False)
        row = backend.model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                     pad_token_id=backend.tokenizer.pad_token_id,
                                     eos_token_id=backend.stop_ids)[0, enc["input_ids"].shape[1]:].tolist()
        n = next((j for j, t in enumerate(row) if t in backend.stop_ids), len(row))
        out.append(Generation(backend.tokenizer.decode(row[:n], skip_special_tokens=True), n))
    return out


@torch.inference_mode()
def hf_static(backend: Any, chats: list[Any], max_new_tokens: int, batch_size: int = 16) -> list[Generation]:
    """`HFBackend.generate` before issue 39: prompts sorted by tokens, `model.generate` on batches of 16."""
    ids = [backend.tokenizer(backend.render(c), add_special_tokens=False)["input_ids"] for c in chats]
    order = sorted(range(len(chats)), key=lambda i: len(ids[i]))
    out: dict[int, Generation] = {}
    for s in range(0, len(order), batch_size):
        rows = order[s:s + batch_size]
        enc = backend.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
        gen = backend.model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                     pad_token_id=backend.tokenizer.pad_token_id, eos_token_id=backend.stop_ids)
        for i, row in zip(rows, gen[:, enc["input_ids"].shape[1]:].tolist()):
            out[i] = backend.decoded(row)
    return [out[i] for i in range(len(chats))]


def in_chunks(backend: Any, chats: list[Any], max_new_tokens: int, size: int) -> list[Generation]:
    """As the profile recipe calls a backend: `size` chats per generate() call."""
    return [g for s in range(0, len(chats), size) for g in backend.generate(chats[s:s + size], max_new_tokens)]


def raw_chat(engine: Any, chats: list[Any], max_new_tokens: int) -> list[Generation]:
    """What a vLLM user writes: LLM.chat on every chat at once, greedy."""
    from vllm import SamplingParams

    outs = engine.llm.chat(chats, SamplingParams(temperature=0.0, max_tokens=max_new_tokens), use_tqdm=False)
    return [Generation(o.outputs[0].text, len(o.outputs[0].token_ids) - (o.outputs[0].finish_reason == "stop"))
            for o in outs]


@dataclass
class Bench:
    """The results file of one run and how a path is timed into it: each path is saved as soon as it is measured."""

    result: dict[str, Any]
    path: Path
    console: Console
    items: list[Any]

    def save(self) -> None:
        write_json(self.result, self.path, indent=1)

    def measure(self, name: str, fn: Callable[[], list[Generation]], n: int, reference: str | None,
                prompt_tokens: int, **extra: Any) -> None:
        result = self.result
        if name in result["rows"]:
            self.console.print(f"[dim]{name}: done before, skipped[/dim]")
            return
        self.console.print(f"{name}: {n} items ...")
        t0 = time.perf_counter()
        gens = fn()
        seconds = time.perf_counter() - t0
        texts = [g.text for g in gens]
        grader = get_grader("numeric")  # the arith suite's
        grades = [(gr.score, gr.answer) for gr in (grader(t, it.answer) for t, it in zip(texts, self.items))]
        gen_tokens = sum(g.n_tokens for g in gens)
        gflops = 2 * result["n_params"] * (prompt_tokens + gen_tokens) / seconds / 1e9
        result["rows"][name] = {"items": n, "seconds": round(seconds, 2), "items_per_s": n / seconds,
                                "gen_tokens_per_s": gen_tokens / seconds, "gflops": gflops,
                                "pct_fp32_peak": 100 * gflops / result["peaks"]["fp32"],
                                "pct_bf16_peak": 100 * gflops / result["peaks"]["bf16"],
                                "reference": reference,
                                "right": sum(score == 1.0 for score, _ in grades), **extra}
        result["outputs"][name] = texts
        result["grades"][name] = grades
        self.save()


def open_results(args: argparse.Namespace, items: list[Any]) -> dict[str, Any]:
    """The results so far, refused if they are of other items or settings; this machine's description added."""
    path = args.output_path
    result: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {"rows": {}, "outputs": {}, "grades": {}}
    if result.get("items") not in (None, [it.id for it in items]) or result.get("max_new_tokens", args.max_new_tokens) \
            != args.max_new_tokens:
        raise SystemExit(f"{path} holds another benchmark's items or settings: pass another --output-path.")
    result.update(items=[it.id for it in items], max_new_tokens=args.max_new_tokens, model=args.model,
                  cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(), torch=torch.__version__)
    return result


STATIC = "hf static (batch 16, before issue 39)"  # the reference of every base-model row


def hf_paths(args: argparse.Namespace, chats: list[Any], bench: Bench) -> tuple[list[int], int]:
    """The hf rows: static batches (before issue 39), now, naive, and with the adapter; returns the prompt tokens
    per chat and the base model's parameter count."""
    def load_hf(adapter: str | None = None) -> Any:
        backend = load_model(ModelConfig(model=args.model, backend="hf", device="cpu", adapter=adapter), 16)
        bench.result["n_params"] = sum(p.numel() for p in backend.model.parameters())
        return backend

    hf, n = load_hf(), len(chats)
    n_params = bench.result["n_params"]
    tokens = [len(hf.tokenizer(hf.render(c), add_special_tokens=False)["input_ids"]) for c in chats]
    bench.result["prompt_tokens"] = sum(tokens)
    hf.generate(chats[:2], 4)  # warm-up: first-kernel costs stay out of the timings
    bench.measure(STATIC, lambda: hf_static(hf, chats, args.max_new_tokens), n, None, sum(tokens))
    bench.measure(f"hf now (continuous, {hf.width} rows, {hf.batch_size} chats per call)",
                  lambda: in_chunks(hf, chats, args.max_new_tokens, hf.batch_size), n, STATIC, sum(tokens),
                  batch_size=hf.batch_size)
    if k := args.naive_limit:
        bench.measure("hf naive (batch 1)", lambda: hf_naive(hf, chats[:k], args.max_new_tokens), k, STATIC,
                      sum(tokens[:k]))
    if args.adapter:
        hfa = load_hf(args.adapter)
        bench.measure("hf + adapter (PEFT, merged)", lambda: hfa.generate(chats, args.max_new_tokens), n, None,
                      sum(tokens))
    return tokens, n_params


def vllm_paths(args: argparse.Namespace, chats: list[Any], tokens: int, bench: Bench) -> None:
    """skillgap's vLLM backend at fp32 and bf16, raw LLM.chat on the same engine, and the LoRARequest adapter."""
    from skillgap.models.vllm import VLLMBackend

    starts, now, n = bench.result.setdefault("engine_start_s", {}), STATIC, len(chats)
    dtypes = (("float32", 16 if args.adapter else 0),) + ((("bfloat16", 0),) if args.vllm == "all" else ())
    for dtype, lora in dtypes:
        names = [f"skillgap vllm {dtype}"] + [f"raw vLLM LLM.chat {dtype}"] * (args.vllm == "all") + \
            ["vllm + adapter (LoRARequest)"] * bool(lora)
        if all(x in bench.result["rows"] for x in names):
            continue
        t0 = time.perf_counter()
        vb = VLLMBackend(ModelConfig(model=args.model, backend="vllm", device="cpu", dtype=dtype,
                                     adapter_mode="lora" if lora else "auto"), args.vllm_batch_size, lora_rank=lora)
        starts[f"{dtype}{' +lora' if lora else ''}"] = round(time.perf_counter() - t0, 2)
        vb.generate(chats[:2], 4)
        bench.measure(names[0], lambda: in_chunks(vb, chats, args.max_new_tokens, args.vllm_batch_size), n, now,
                      tokens, batch_size=args.vllm_batch_size)
        if args.vllm == "all":
            bench.measure(names[1], lambda: raw_chat(vb.engine, chats, args.max_new_tokens), n, now, tokens)
        if dtype == "float32" and args.vllm == "all":  # the profile recipe's default --batch-size: 16 chats per call
            bench.measure(f"skillgap vllm {dtype} (batch 16)", lambda: in_chunks(vb, chats, args.max_new_tokens, 16),
                          n, now, tokens, batch_size=16)
        if lora:
            va = VLLMBackend(ModelConfig(model=args.model, backend="vllm", device="cpu", adapter=args.adapter,
                                         adapter_mode="lora"), args.vllm_batch_size, engine=vb.engine)
            bench.measure(names[-1], lambda: in_chunks(va, chats, args.max_new_tokens, args.vllm_batch_size), n,
                          "hf + adapter (PEFT, merged)", tokens, batch_size=args.vllm_batch_size)
        vb.close()
    if args.adapter and "vllm + adapter (merged)" not in bench.result["rows"]:
        t0 = time.perf_counter()
        vm = VLLMBackend(ModelConfig(model=args.model, backend="vllm", device="cpu", adapter=args.adapter,
                                     adapter_mode="merge"), args.vllm_batch_size)
        starts["float32 merged adapter (merge + start)"] = round(time.perf_counter() - t0, 2)
        vm.generate(chats[:2], 4)
        bench.measure("vllm + adapter (merged)", lambda: in_chunks(vm, chats, args.max_new_tokens, args.vllm_batch_size),
                      n, "hf + adapter (PEFT, merged)", tokens, batch_size=args.vllm_batch_size)
        vm.close()


def agreement(result: dict[str, Any], name: str, key: str) -> float | None:
    """The share of a row's outputs (key "outputs") or grades ("grades") equal to its reference row's, on the items
    both have; None without a reference measured."""
    ref = result[key].get(result["rows"][name]["reference"] or "")
    if not ref:
        return None
    mine = result[key][name]
    return sum(json.dumps(a) == json.dumps(b) for a, b in zip(mine, ref)) / len(mine)


def columns(name: str, r: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """One row of the table, its share of the machine's peaks recomputed against the best peak seen."""
    r["agreement"], r["same_grades"] = agreement(result, name, "outputs"), agreement(result, name, "grades")
    r["pct_fp32_peak"] = 100 * r["gflops"] / result["peaks"]["fp32"]
    r["pct_bf16_peak"] = 100 * r["gflops"] / result["peaks"]["bf16"]
    same = "-" if r["agreement"] is None else f"{r['agreement']:.0%} of {r['items']}"
    grades = "-" if r.get("same_grades") is None else f"{r['same_grades']:.0%} of {r['items']}"
    return [name, str(r["items"]), f"{r['items_per_s']:.2f}", f"{300 / r['items_per_s']:.0f}",
            f"{r['gen_tokens_per_s']:.0f}", f"{r['pct_fp32_peak']:.1f}%", same, grades]


HEAD = ("path", "items", "items/s", "s per 300 items", "gen tok/s", "% fp32 peak", "same text", "same grades")


def title(args: argparse.Namespace, result: dict[str, Any]) -> str:
    return (f"{args.model}, {len(result['items'])} arith items, {args.max_new_tokens} new tokens, "
            f"{result['cpu_count']} CPUs (peaks: fp32 {result['peaks']['fp32']:.0f}, "
            f"bf16 {result['peaks']['bf16']:.0f} GFLOP/s)")


def print_table(args: argparse.Namespace, result: dict[str, Any], console: Console) -> None:
    table = Table(title=title(args, result))
    for col in HEAD:
        table.add_column(col, justify="left" if col == "path" else "right")
    for name, r in result["rows"].items():
        table.add_row(*columns(name, r, result))
    console.print(table)


def write_markdown(args: argparse.Namespace, result: dict[str, Any], path: Path) -> None:
    """The results table as markdown, from the JSON: never typed by hand."""
    rows = ["| " + " | ".join(columns(name, r, result)) + " |" for name, r in result["rows"].items()]
    lines = ["# Generation throughput, every path side by side", "",
             f"Written by `benchmarks/profile_throughput.py` from `{path.with_suffix('.json').name}`. "
             f"{title(args, result)}; torch {result['torch']}, {result.get('torch_threads')} torch threads.", "",
             "Command:", "", "    " + result.get("command", ""), "",
             "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD), *rows, "",
             f"Same text / same grades: the share of items whose text (grade: the arith suite's numeric grader, "
             f"score and extracted answer) equals that of `{STATIC}`, the hf backend before issue 39. "
             f"s per 300 items: the main job's three evaluation stages (100 items each) at this row's rate.",
             f"Engine start-up (s, not in the rows): {result.get('engine_start_s', {})}.", "",
             f"{FLOP_NOTE}; n_params {result['n_params'] / 1e6:.1f}M.", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 130))
    items = load_suite("arith").generate("test", args.limit, args.seed)
    chats = [it.chat() for it in items]
    bench = Bench(open_results(args, items), args.output_path, console, items)
    result = bench.result
    env = "".join(f"{k}={os.environ[k]} " for k in ("OMP_NUM_THREADS",) if k in os.environ)
    result["command"] = f"{env}HF_HUB_OFFLINE=1 python benchmarks/profile_throughput.py " + \
        " ".join(sys.argv[1:] if argv is None else argv)
    result["torch_threads"] = torch.get_num_threads()
    console.print("matmul peaks ...")  # probed at every (re-)run; the best seen is kept: load only lowers it
    peaks = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    result["peaks"] = {k: max(v, result.get("peaks", {}).get(k, 0.0)) for k, v in peaks.items()}
    bench.save()
    tokens, n_params = hf_paths(args, chats, bench)
    if args.vllm != "none":
        vllm_paths(args, chats, sum(tokens), bench)
    print_table(args, result, console)
    bench.save()
    write_markdown(args, result, args.output_path.with_suffix(".md"))
    console.print(f"engine start-up (s): {result.get('engine_start_s', {})}")
    console.print(f"[dim]{FLOP_NOTE}; n_params {n_params / 1e6:.1f}M[/dim]")
    return result


if __name__ == "__main__":
    main()
