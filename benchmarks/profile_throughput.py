"""Throughput of `skillgap profile`'s batched evaluation against a naive one-at-a-time loop.

What it measures, in one process, on the same `arith` test items and the same loaded model:

1. batched: what `skillgap profile` does. Items sorted by prompt length, then
   `backend.generate(chats, max_new_tokens)` on the `hf` backend, which runs greedy `model.generate`
   on left-padded batches of `--batch-size` chats (a comma list sweeps several sizes).
2. naive: one item at a time, plain transformers `model.generate` on a batch of 1, greedy, the same
   chat template, stop tokens and `max_new_tokens`.
3. the machine's fp32 matmul throughput (best of repeated N x N `torch.matmul` on the device), and
   the fraction of it the model reaches, with model FLOPs estimated as 2 * n_params * tokens
   (prompt + generated tokens). That is the standard 2·N·T approximation: it ignores attention
   FLOPs and the compute wasted on padding and on rows that already stopped, so it is a floor on
   the work the hardware really did.

It also reports agreement: the fraction of items whose batched and naive outputs are identical
text. Left padding changes the numerics of a row slightly, which can flip a greedy choice, so
agreement below 100% is expected and worth knowing, not a bug to hide.

Why: to know what batching buys on this machine (speed-up over the obvious loop), how close
evaluation gets to the hardware's peak, and whether batching changes what the model answers.

Run it from the repository root (it takes minutes on CPU; the naive loop dominates):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/profile_throughput.py \
        --model smollm2-135m --device cpu --limit 64 --naive-limit 64 \
        --batch-size 8,16,32 --max-new-tokens 128 --output-path benchmarks/profile_throughput.json

A quick smoke run: --limit 4 --naive-limit 2 --max-new-tokens 16 --batch-size 2,4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from skillgap.items import Item
from skillgap.models import Generation, ModelConfig, load_model
from skillgap.suites import load_suite

FLOP_NOTE = ("model FLOPs = 2 * n_params * (prompt + generated tokens): the standard 2·N·T approximation, "
             "ignoring attention FLOPs and the compute wasted on padding and on rows that already stopped")


# -----------------------------------------------------------------------------
# config

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m", help="model alias, folder or GGUF file")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps | auto")
    p.add_argument("--limit", type=int, default=64, help="items for the batched path")
    p.add_argument("--naive-limit", type=int, default=None,
                   help="items for the naive loop (the first ones of --limit); default: --limit")
    p.add_argument("--batch-size", default="16", help="one size or a comma list to sweep, e.g. 8,16,32")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="seed of the arith test stream")
    p.add_argument("--matmul-size", type=int, default=2048, help="N of the N x N fp32 matmul peak probe")
    p.add_argument("--matmul-repeats", type=int, default=10)
    p.add_argument("--output-path", type=Path, default=None, help="write the results here as JSON")
    args = p.parse_args(argv)
    args.batch_sizes = [int(b) for b in str(args.batch_size).split(",") if b.strip()]
    args.naive_limit = args.limit if args.naive_limit is None else min(args.naive_limit, args.limit)
    if args.limit < 1 or args.naive_limit < 1 or not args.batch_sizes or min(args.batch_sizes) < 1:
        p.error("--limit, --naive-limit and every --batch-size must be >= 1")
    return args


# -----------------------------------------------------------------------------
# measurements

@dataclass
class PathResult:
    name: str
    batch_size: int
    n_items: int
    seconds: float
    prompt_tokens: int
    gen_tokens: int
    texts: list[str]  # in item order, whatever order the path ran them in

    @property
    def items_per_s(self) -> float:
        return self.n_items / self.seconds

    @property
    def gen_tokens_per_s(self) -> float:
        return self.gen_tokens / self.seconds


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def matmul_gflops(device: torch.device, n: int, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    """Best observed GFLOP/s of an n x n @ n x n matmul (2 n^3 FLOPs) on `device`."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)  # warm-up: allocations, kernel selection
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def count_params(model: torch.nn.Module) -> int:
    """Unique parameters: `parameters()` yields a tied tensor (embedding = lm_head) only once."""
    return sum(p.numel() for p in model.parameters())


def prompt_token_counts(backend: Any, items: list[Item]) -> list[int]:
    """Prompt tokens per item, tokenized exactly as the backend does (rendered template, no extra specials)."""
    enc = backend.tokenizer([backend.render(it.chat()) for it in items], add_special_tokens=False)
    return [len(ids) for ids in enc["input_ids"]]


def run_batched(backend: Any, items: list[Item], prompt_tokens: list[int], batch_size: int,
                max_new_tokens: int) -> PathResult:
    """skillgap's path: sort by prompt length (as the profile recipe does), then backend.generate."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].prompt or ""))
    backend.batch_size = batch_size
    sync(backend.device)
    t0 = time.perf_counter()
    gens: list[Generation] = backend.generate([items[i].chat() for i in order], max_new_tokens)
    sync(backend.device)
    seconds = time.perf_counter() - t0
    texts = [""] * len(items)
    for i, g in zip(order, gens):
        texts[i] = g.text
    return PathResult(f"batched (B={batch_size})", batch_size, len(items), seconds,
                      sum(prompt_tokens), sum(g.n_tokens for g in gens), texts)


@torch.inference_mode()
def generate_one(backend: Any, item: Item, max_new_tokens: int) -> Generation:
    """Plain transformers: one prompt, batch of 1, greedy, cut at the first stop token."""
    tok, model = backend.tokenizer, backend.model
    enc = tok(backend.render(item.chat()), return_tensors="pt", add_special_tokens=False).to(backend.device)
    out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                         pad_token_id=tok.pad_token_id, eos_token_id=backend.stop_ids)
    row = out[0, enc["input_ids"].shape[1]:].tolist()
    n = next((j for j, t in enumerate(row) if t in backend.stop_ids), len(row))
    return Generation(tok.decode(row[:n], skip_special_tokens=True), n)


def run_naive(backend: Any, items: list[Item], prompt_tokens: list[int], max_new_tokens: int) -> PathResult:
    sync(backend.device)
    t0 = time.perf_counter()
    gens = [generate_one(backend, it, max_new_tokens) for it in items]
    sync(backend.device)
    seconds = time.perf_counter() - t0
    return PathResult("naive (batch 1)", 1, len(items), seconds,
                      sum(prompt_tokens), sum(g.n_tokens for g in gens), [g.text for g in gens])


def warm_up(backend: Any, item: Item, batch_size: int) -> None:
    """One short call on each path, so lazy init and first-kernel costs stay out of the timings."""
    generate_one(backend, item, max_new_tokens=4)
    backend.batch_size = batch_size
    backend.generate([item.chat()] * min(batch_size, 2), max_new_tokens=4)


# -----------------------------------------------------------------------------
# report

def summarize(r: PathResult, n_params: int, peak_gflops: float, naive: PathResult) -> dict[str, Any]:
    gflops = 2 * n_params * (r.prompt_tokens + r.gen_tokens) / r.seconds / 1e9
    same = [a == b for a, b in zip(r.texts, naive.texts)]  # naive ran the first naive.n_items items
    return {
        "path": r.name, "batch_size": r.batch_size, "items": r.n_items, "seconds": r.seconds,
        "prompt_tokens": r.prompt_tokens, "gen_tokens": r.gen_tokens,
        "items_per_s": r.items_per_s, "gen_tokens_per_s": r.gen_tokens_per_s,
        "speedup_items_per_s": r.items_per_s / naive.items_per_s,
        "speedup_gen_tokens_per_s": r.gen_tokens_per_s / naive.gen_tokens_per_s if naive.gen_tokens else None,
        "achieved_gflops": gflops, "pct_of_matmul_peak": 100 * gflops / peak_gflops,
        "agreement": sum(same) / len(same), "agreement_items": len(same),
        "mismatched_items": [i for i, s in enumerate(same) if not s],
    }


def print_report(console: Console, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    console.print(f"[bold]{meta['model']}[/] on {meta['device']} ({meta['dtype']}), "
                  f"{meta['n_params'] / 1e6:.1f}M unique params, torch threads {meta['torch_threads']}, "
                  f"max_new_tokens {meta['max_new_tokens']}")
    before, after = meta["matmul_gflops_before_after"]
    console.print(f"fp32 matmul peak ({meta['matmul_size']}x{meta['matmul_size']}, best of "
                  f"{meta['matmul_repeats']}, probed before and after the runs: {before:.1f} / {after:.1f}): "
                  f"[bold]{meta['matmul_peak_gflops']:.1f}[/] GFLOP/s")
    table = Table(title="skillgap profile throughput: batched vs naive")
    for col in ("path", "items", "seconds", "items/s", "gen tok/s", "speed-up", "GFLOP/s", "% of peak",
                "agreement"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for r in rows:
        naive = r["batch_size"] == 1 and r["path"].startswith("naive")
        table.add_row(
            r["path"], str(r["items"]), f"{r['seconds']:.2f}", f"{r['items_per_s']:.2f}",
            f"{r['gen_tokens_per_s']:.1f}", "1.00x" if naive else f"{r['speedup_items_per_s']:.2f}x",
            f"{r['achieved_gflops']:.2f}", f"{r['pct_of_matmul_peak']:.1f}%",
            "-" if naive else f"{r['agreement']:.0%} of {r['agreement_items']}")
    console.print(table)
    console.print(f"speed-up: items/s over the naive loop's items/s (naive ran the first "
                  f"{meta['naive_limit']} of {meta['limit']} items).")
    console.print(f"agreement: identical output text on the first {meta['naive_limit']} items "
                  f"(left padding can change greedy outputs).")
    console.print(f"[dim]{FLOP_NOTE}.[/]")
    if any(r["pct_of_matmul_peak"] > 100 for r in rows) or max(before, after) > 1.5 * min(before, after):
        console.print("[yellow]warning: the matmul probes disagree or a path exceeds the peak; other load on "
                      "the machine disturbed the timings. Rerun on an idle machine before trusting them.[/]")


# -----------------------------------------------------------------------------
# main

def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 120))  # keep the table readable when piped
    items = load_suite("arith").generate("test", args.limit, args.seed)
    backend = load_model(ModelConfig(model=args.model, device=args.device), batch_size=args.batch_sizes[0])
    device, dtype = backend.device, next(backend.model.parameters()).dtype
    n_params = count_params(backend.model)
    prompt_tokens = prompt_token_counts(backend, items)

    console.print(f"measuring fp32 matmul peak on {device} ...")
    peak_before = matmul_gflops(device, args.matmul_size, args.matmul_repeats)
    warm_up(backend, items[0], max(args.batch_sizes))

    console.print(f"naive loop: {args.naive_limit} items ...")
    naive = run_naive(backend, items[:args.naive_limit], prompt_tokens[:args.naive_limit], args.max_new_tokens)
    runs = []
    for b in args.batch_sizes:
        console.print(f"batched B={b}: {args.limit} items ...")
        runs.append(run_batched(backend, items, prompt_tokens, b, args.max_new_tokens))
    # Probe again after the runs and keep the best: one probe disturbed by other load would
    # otherwise understate the peak and overstate every utilization figure.
    peak_after = matmul_gflops(device, args.matmul_size, args.matmul_repeats)
    peak = max(peak_before, peak_after)

    meta = {
        "model": args.model, "identity": backend.identity, "device": str(device), "dtype": str(dtype),
        "n_params": n_params, "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "limit": args.limit, "naive_limit": args.naive_limit, "batch_sizes": args.batch_sizes,
        "max_new_tokens": args.max_new_tokens, "seed": args.seed, "matmul_size": args.matmul_size,
        "matmul_repeats": args.matmul_repeats, "matmul_peak_gflops": peak,
        "matmul_gflops_before_after": [peak_before, peak_after], "flop_estimate": FLOP_NOTE,
    }
    if dtype != torch.float32:
        meta["model_dtype_matmul_peak_gflops"] = matmul_gflops(device, args.matmul_size, args.matmul_repeats, dtype)
        console.print(f"[yellow]note: the model runs in {dtype}, so % of the fp32 peak overstates its "
                      f"utilization; {dtype} matmul peak: {meta['model_dtype_matmul_peak_gflops']:.1f} GFLOP/s[/]")
    rows = [summarize(r, n_params, peak, naive) for r in [naive, *runs]]
    print_report(console, meta, rows)

    result = {"meta": meta, "results": rows,
              "outputs": {"item_ids": [it.id for it in items], "naive": naive.texts,
                          **{f"batched_B{r.batch_size}": r.texts for r in runs}}}
    if args.output_path:
        args.output_path.parent.mkdir(parents=True, exist_ok=True)
        args.output_path.write_text(json.dumps(result, indent=2))
        console.print(f"wrote {args.output_path}")
    return result


if __name__ == "__main__":
    main()
