"""Seconds per training step at several micro-batch sizes, interleaved in one process (a fair comparison on a
machine other jobs share): one step = the main job's first batch of 16 examples, forward and backward through
SFTTrainer's own `compute_loss` (TRL's fused LM head), in micro-batches of m with the loss normalised over the
batch's tokens as Trainer does when it accumulates. Prints one JSON line per run and the best per size.

    HF_HUB_OFFLINE=1 python benchmarks/train_step_time.py --rounds 4 --micro 16 1 2 4
"""

from __future__ import annotations

import argparse
import json
import time

import psutil


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--micro", type=int, nargs="+", default=[16, 1])
    ap.add_argument("--budget", type=int, default=64)
    a = ap.parse_args()

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from skillgap.models.sources import materialize, resolve_source
    from skillgap.suites import load_suite
    from skillgap.target import Request, build_mixture
    from skillgap.train import to_record

    folder = materialize(resolve_source("smollm2-135m"))
    tok = AutoTokenizer.from_pretrained(folder)
    suite = load_suite("arith")
    mixture = build_mixture("uniform", Request({}, suite.generate("train", 4000, 0), a.budget, 0, suite.skills,
                                               suite, None))
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", bias="none",
                      task_type="CAUSAL_LM")
    args = SFTConfig(output_dir="/tmp/train_step_time", per_device_train_batch_size=16, use_cpu=True,
                     max_length=512, completion_only_loss=True, report_to="none", save_strategy="no", bf16=False)
    trainer = SFTTrainer(model=base, args=args, train_dataset=Dataset.from_list([to_record(it) for it in
                                                                                mixture.items]),
                         processing_class=tok, peft_config=lora)
    model = trainer.model
    model.train()
    rows = [trainer.train_dataset[i] for i in range(16)]
    proc = psutil.Process()
    best: dict[int, float] = {}
    for r in range(a.rounds):
        for m in a.micro:
            batches = [trainer.data_collator(rows[i:i + m]) for i in range(0, 16, m)]
            n = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
            t0, c0 = time.perf_counter(), sum(proc.cpu_times()[:2])
            for b in batches:
                trainer.compute_loss(model, b, num_items_in_batch=n).backward()
            wall, cpu = time.perf_counter() - t0, sum(proc.cpu_times()[:2]) - c0
            model.zero_grad(set_to_none=True)
            best[m] = min(best.get(m, float("inf")), wall)
            print(json.dumps({"round": r, "micro": m, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                              "padded_tokens": sum(b["input_ids"].numel() for b in batches),
                              "load1": round(psutil.getloadavg()[0], 2)}), flush=True)
    print(json.dumps({"best_wall_s": {m: round(v, 2) for m, v in best.items()}}))


if __name__ == "__main__":
    main()
