"""Where training memory goes: `skillgap train ...` with the peak resident set size per phase.

    HF_HUB_OFFLINE=1 /usr/bin/time -v python benchmarks/train_memory.py [--micro N] train --model smollm2-135m \
        --suite arith --strategy uniform --budget 128 --steps 8 --seed 0 --output-path /tmp/tm/after

runs the CLI in this process, samples the RSS every 20 ms in a thread and attributes each sample to the
phase the trainer is in (evaluate, train step, checkpoint save; before and after training), by wrapping
the public `Trainer.evaluate`, `training_step`, `_save_checkpoint` and `train` methods. It also counts,
per phase, the LM head's forwards (a hook on the output embeddings). (Before issue 39 it also counted the
passes through TRL's fused LM head, when skillgap trained through SFTTrainer.)
`--micro N` sets `TrainConfig.micro_batch_size` (N = the batch size is the old one-pass step).
Prints one JSON line to stderr: peak RSS in MB, calls, wall and CPU (user + system, all threads)
seconds, per phase; run it under
`/usr/bin/time -v` for the process's own "Maximum resident set size".
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections import Counter

import psutil


def main(argv: list[str]) -> int:
    micro = None
    if argv[:1] == ["--micro"]:
        micro, argv = int(argv[1]), argv[2:]
    proc = psutil.Process()
    phase = ["before_train"]
    peaks: dict[str, int] = {}
    calls: Counter[str] = Counter()
    wall: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = proc.memory_info().rss
            peaks[phase[-1]] = max(peaks.get(phase[-1], 0), rss)
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()

    from transformers import Trainer

    def wrap(name: str, label: str) -> None:
        original = getattr(Trainer, name)

        def wrapped(self, *a, **k):
            nonlocal label
            if name == "evaluate":
                label = "evaluate_at_start" if self.state.global_step == 0 else "evaluate"
            if name == "train":
                self.model.get_output_embeddings().register_forward_hook(
                    lambda *_: calls.update([f"{phase[-1]}:lm_head"]))
            nested = phase[-1] == label  # Trainer.evaluate calls itself once per eval set: count the outer call
            phase.append(label)
            t0, c0 = time.perf_counter(), sum(proc.cpu_times()[:2])
            try:
                return original(self, *a, **k)
            finally:
                if not nested:
                    wall[label] += time.perf_counter() - t0  # `train_other` includes the phases inside it
                    cpu[label] += sum(proc.cpu_times()[:2]) - c0
                    calls[f"{label}:calls"] += 1
                phase.pop()
                if name == "train":
                    phase[-1] = "after_train"

        setattr(Trainer, name, wrapped)

    wrap("train", "train_other")
    wrap("evaluate", "evaluate")
    wrap("training_step", "train_micro_batch")
    wrap("_save_checkpoint", "save_checkpoint")

    import skillgap.recipes.train as recipe

    if micro is not None:
        inner = recipe.train

        def train(model, items, cfg, *a, **k):
            return inner(model, items, dataclasses.replace(cfg, micro_batch_size=micro), *a, **k)

        recipe.train = train

    from skillgap.cli import main as cli

    try:
        rc = cli(argv)
    finally:
        stop.set()
        time.sleep(0.05)
    print(json.dumps({"peak_rss_mb": {k: round(v / 2**20) for k, v in peaks.items()}, "calls": dict(calls),
                      "wall_s": {k: round(v, 1) for k, v in wall.items()},
                      "cpu_s": {k: round(v, 1) for k, v in cpu.items()}}), file=sys.stderr)
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
