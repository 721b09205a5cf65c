"""Training throughput: the main job's training step, today's path and each change side by side in one process.

The machine is shared, so paths are compared within one run, in rounds that interleave them. Every path trains the
same items (the main job's kind of batch: 16 `arith` training examples a step, uniform over the suite, seed 0) for
the same `--steps`, from the same seed, and reports:

- training tokens/s: the tokens of the examples trained on (prompt + completion, no padding) per second of
  `Trainer.train`, the first step (warm-up) left out;
- model GFLOP/s, counted as the issue does: 4 x parameters x tokens per step (the forward, and the backward
  through the frozen weights; LoRA's own FLOPs and attention left out), and its share of this machine's matmul
  peak (2048 x 2048, best of 10, fp32 and bf16, measured in the same run);
- the peak resident memory while the path trained (sampled every 20 ms; the process's, model included);
- the loss at every step: paths that compute the same thing must agree (`--tolerance`), a path that changes the
  numerics on purpose (bf16 base weights) is reported with its largest difference.

Paths: `sft-*` rebuild the path skillgap trained with before issue 39 (TRL's SFTTrainer and its fused LM head,
micro-batches of 2 with padding); `skillgap-*` call `skillgap.train.train` itself with a precision and micro-batch.

    HF_HUB_OFFLINE=1 python benchmarks/train_throughput.py --steps 6 --rounds 1 \\
        --output-path benchmarks/results/train_throughput.json

Resumable: each finished (round, path) is written at once and skipped by a re-run with the same settings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from common import read_results, write_json
from skillgap.io import write_text

PATHS = {  # name: (how, precision, micro-batch)
    "sft-fp32-autocast-micro2": ("sft", "bf16", 2),  # before issue 39: fp32 weights under bf16 autocast
    "sft-fp32-micro2": ("sft", "fp32", 2),  # the same at fp32: the reference the fp32 packed path must match
    "sft-bf16-base-micro2": ("sft-bf16-base", "bf16", 2),  # the one-line change: base weights in bf16, TRL's loss
    "skillgap-fp32-micro4": ("skillgap", "fp32", 4),  # packed rows + LM head on completion tokens, fp32
    "skillgap-bf16-micro2": ("skillgap", "bf16", 2),
    "skillgap-bf16-micro4": ("skillgap", "bf16", 4),  # the default on a CPU with bf16 units
    "skillgap-bf16-micro8": ("skillgap", "bf16", 8),
}
BEFORE, NOW = "sft-fp32-autocast-micro2", "skillgap-bf16-micro4"
PAIRS = [("sft-fp32-micro2", "skillgap-fp32-micro4"), (BEFORE, NOW)]  # (reference, path): losses compared


def matmul_peaks() -> dict[str, float]:
    """GFLOP/s of a 2048 x 2048 matmul, best of 10, fp32 and bf16."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        best = float("inf")
        for _ in range(10):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        out[name] = round(2 * 2048 ** 3 / best / 1e9, 1)
    return out


def training_items(n: int, seed: int) -> list[Any]:
    from skillgap.suites import load_suite
    from skillgap.target import Request, build_mixture

    suite = load_suite("arith")
    return build_mixture("uniform", Request({}, suite.generate("train", 4000, seed), n, seed, suite.skills,
                                            suite, None)).items


class Clock:
    """A TrainerCallback's worth of timestamps: when each optimizer step ended."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.start = 0.0

    def callback(self) -> Any:
        from transformers import TrainerCallback

        clock = self

        class _Clock(TrainerCallback):
            def on_train_begin(self, *a: Any, **k: Any) -> None:
                clock.start = time.perf_counter()

            def on_step_end(self, *a: Any, **k: Any) -> None:
                clock.ends.append(time.perf_counter())

        return _Clock()


def run_sft(items: list[Any], how: str, precision: str, micro: int, steps: int, work: Path, clock: Clock) -> dict:
    """The path before issue 39, rebuilt: SFTTrainer with the settings skillgap gave it then."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from skillgap.models.sources import materialize, resolve_source
    from skillgap.scoring import to_record

    folder = materialize(resolve_source("smollm2-135m"))
    tok = AutoTokenizer.from_pretrained(folder)
    dtype = torch.bfloat16 if how == "sft-bf16-base" else torch.float32
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", bias="none",
                      task_type="CAUSAL_LM")
    args = SFTConfig(output_dir=str(work), per_device_train_batch_size=micro, gradient_accumulation_steps=16 // micro,
                     learning_rate=1e-3, lr_scheduler_type="constant_with_warmup", warmup_steps=3, max_steps=steps,
                     optim="adamw_torch", seed=0, data_seed=0, train_sampling_strategy="sequential",
                     bf16=precision == "bf16", use_cpu=True, gradient_checkpointing=False, max_length=512,
                     packing=False, padding_free=False, completion_only_loss=True, logging_steps=1,
                     save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True)
    trainer = SFTTrainer(model=base, args=args, train_dataset=Dataset.from_list([to_record(it) for it in items]),
                         processing_class=tok, peft_config=lora, callbacks=[clock.callback()])
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    tokens = [sum(len(x) for x in trainer.train_dataset[i * 16:(i + 1) * 16]["input_ids"]) for i in range(steps)]
    return {"losses": losses, "tokens": tokens}


def run_skillgap(items: list[Any], precision: str, micro: int, steps: int, work: Path, clock: Clock) -> dict:
    """skillgap's own training, through `skillgap.train.train` (a Clock callback added to Trainer's list)."""
    from transformers import Trainer

    from skillgap.models import ModelConfig
    from skillgap.train import TrainConfig, _datasets, train

    original = Trainer.__init__

    def init(self: Any, *a: Any, **k: Any) -> None:  # the benchmark's clock joins the trainer's callbacks
        k["callbacks"] = [*k.get("callbacks", []), clock.callback()]
        original(self, *a, **k)

    Trainer.__init__ = init
    try:
        cfg = TrainConfig(precision=precision, micro_batch_size=micro, max_steps=steps, eval_every=0,
                          save_every=10_000, keep_checkpoints=1, seed=0)
        result = train(ModelConfig("smollm2-135m"), items, cfg, work)
    finally:
        Trainer.__init__ = original
    from transformers import AutoTokenizer

    from skillgap.models.sources import materialize, resolve_source

    tok = AutoTokenizer.from_pretrained(materialize(resolve_source("smollm2-135m")))
    ds, _ = _datasets(items, None, None, tok, cfg.max_length)
    tokens = [sum(len(x) for x in ds[i * 16:(i + 1) * 16]["input_ids"]) for i in range(steps)]
    return {"losses": [r["loss"] for r in result.log], "tokens": tokens}


def measure(name: str, items: list[Any], steps: int, work: Path) -> dict[str, Any]:
    how, precision, micro = PATHS[name]
    proc, peak, stop = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    shutil.rmtree(work, ignore_errors=True)
    clock = Clock()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        if how == "skillgap":
            out = run_skillgap(items, precision, micro, steps, work, clock)
        else:
            out = run_sft(items, how, precision, micro, steps, work, clock)
    finally:
        stop.set()
        thread.join()
    seconds = [b - a for a, b in zip([clock.start, *clock.ends], clock.ends)]
    timed = sum(seconds[1:])  # the first step warms up
    return out | {"step_seconds": [round(s, 3) for s in seconds], "timed_seconds": round(timed, 3),
                  "tokens_per_s": round(sum(out["tokens"][1:]) / timed, 1),
                  "peak_rss_gb": round(peak[0] / 1e9, 2), "load1": round(psutil.getloadavg()[0], 2)}


def summary(res: dict[str, Any], params: float) -> dict[str, Any]:
    """Per path, the best round's tokens/s and what it means in FLOP/s and share of the peaks; loss agreement."""
    peaks = res["peaks"]
    rows = {}
    for name in PATHS:
        runs = [r[name] for r in res["rounds"].values() if name in r]
        if not runs:
            continue
        best = max(runs, key=lambda r: r["tokens_per_s"])
        gflops = 4 * params * best["tokens_per_s"] / 1e9
        rows[name] = {"tokens_per_s": best["tokens_per_s"], "rounds": len(runs),
                      "step_s": round(best["timed_seconds"] / max(len(best["step_seconds"]) - 1, 1), 2),
                      "gflops": round(gflops, 1), "share_fp32": round(gflops / peaks["fp32"], 3),
                      "share_bf16": round(gflops / peaks["bf16"], 3), "peak_rss_gb": max(r["peak_rss_gb"] for r in runs),
                      "losses": best["losses"]}
    for name, row in rows.items():
        if BEFORE in rows:
            row["speedup"] = round(row["tokens_per_s"] / rows[BEFORE]["tokens_per_s"], 2)
    agreement = []
    for ref, path in PAIRS:
        if ref in rows and path in rows:
            diffs = [abs(a - b) for a, b in zip(rows[ref]["losses"], rows[path]["losses"])]
            agreement.append({"reference": ref, "path": path, "step1_abs_loss_diff": round(diffs[0], 6),
                              "max_abs_loss_diff": round(max(diffs), 6)})
    return {"paths": rows, "agreement": agreement}


def markdown(res: dict[str, Any]) -> str:
    s, peaks = res["summary"], res["peaks"]
    lines = ["# Training throughput (issue 39)", "",
             f"The main job's training step (LoRA r = 16 on SmolLM2-135M-Instruct, 16 `arith` examples a step), "
             f"{res['settings']['steps']} steps per path, best of {res['settings']['rounds']} round(s), on "
             f"{res['machine']}; matmul peak measured in the same run: fp32 {peaks['fp32']} GFLOP/s, bf16 "
             f"{peaks['bf16']} GFLOP/s. GFLOP/s = 4 x {res['params'] / 1e6:.0f}M parameters x tokens/s.", "",
             "```bash", res["command"], "```", "",
             "| path | tokens/s | s/step | speed-up | GFLOP/s | % fp32 peak | % bf16 peak | RSS high-water GB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in s["paths"].items():
        bold = "**" if name in (BEFORE, NOW) else ""
        lines.append(f"| {bold}{name}{bold} | {r['tokens_per_s']} | {r['step_s']} | {r.get('speedup', '')}x | "
                     f"{r['gflops']} | {100 * r['share_fp32']:.0f}% | {100 * r['share_bf16']:.0f}% | "
                     f"{r['peak_rss_gb']} |")
    lines += ["", "Peak RSS is the benchmark process's high-water mark when the path finished: every path runs in one "
              "process, so it only grows; the main job's `/usr/bin/time -v` figure (README) is the memory check.", "",
              "Loss, same seed and items. Step 1 is the same weights on the same batch, so it must agree to float "
              f"noise (tolerance {res['settings']['tolerance']}); later steps drift apart as Adam, whose update "
              "normalises each gradient coordinate, turns float-order differences in tiny gradients into "
              "different steps.", ""]
    for a in s["agreement"]:
        ok = "within" if a["step1_abs_loss_diff"] <= res["settings"]["tolerance"] else "OUTSIDE"
        why = "" if "fp32" in a["path"] else " (bf16 base weights change the numerics on purpose)"
        lines.append(f"- {a['path']} against {a['reference']}: step 1 differs by {a['step1_abs_loss_diff']} ({ok} "
                     f"the tolerance), the largest step by {a['max_abs_loss_diff']}{why}")
    lines += ["", "Losses:", ""] + [f"- {n}: {', '.join(f'{x:.4f}' for x in r['losses'])}" for n, r in s["paths"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--paths", default=",".join(PATHS), help="comma-separated, of: " + ", ".join(PATHS))
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest loss difference for paths that must agree")
    p.add_argument("--work-dir", type=Path, default=Path("/var/tmp/train_throughput"))
    p.add_argument("--output-path", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    p.add_argument("--report-only", action="store_true")
    a = p.parse_args(argv)
    import platform

    import torch

    settings = {"steps": a.steps, "rounds": a.rounds, "tolerance": a.tolerance}
    res = read_results(a.output_path)
    if res.get("settings") != settings:
        res = {"settings": settings, "rounds": {}}
    res["command"] = ("HF_HUB_OFFLINE=1 python benchmarks/train_throughput.py --steps "
                      f"{a.steps} --rounds {a.rounds} --output-path {a.output_path}")
    res["machine"] = f"{psutil.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__}"
    if not a.report_only:
        res["peaks"] = matmul_peaks()
        items = training_items(16 * a.steps, 0)
        for r in range(a.rounds):
            done = res["rounds"].setdefault(str(r), {})
            for name in a.paths.split(","):
                if name in done:
                    continue
                done[name] = measure(name, items, a.steps, a.work_dir / name)
                print(json.dumps({"round": r, "path": name, "tokens_per_s": done[name]["tokens_per_s"],
                                  "peak_rss_gb": done[name]["peak_rss_gb"]}), flush=True)
                write_json(res, a.output_path)
    res["params"] = 134_515_008  # SmolLM2-135M-Instruct, tied embeddings counted once
    res["summary"] = summary(res, res["params"])
    write_json(res, a.output_path)
    write_text(a.output_path.with_suffix(".md"), markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
