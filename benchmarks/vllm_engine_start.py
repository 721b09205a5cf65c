"""vLLM on a CPU: engine start-up and throughput with torch.compile (vLLM's default) or eager, one fresh process.

Every model folder vLLM has not compiled costs a torch.compile on start; on a CPU a merged adapter is a new
folder, so every `after` profile pays it. This measures what compilation buys: run once per mode, each in a
new process (the compile caches are per process for vLLM 0.32 on a CPU: its AOT cache fails to reload).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vllm_engine_start.py eager
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vllm_engine_start.py compile

Prints one JSON line: start-up seconds, items/s on `--limit` arith test items (greedy, 128 new tokens), texts.
"""

import argparse
import json
import os
import time

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # as skillgap runs it: in this process
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["eager", "compile"])
    ap.add_argument("--limit", type=int, default=64)
    a = ap.parse_args()
    import vllm

    from skillgap.models.sources import materialize, resolve_source
    from skillgap.models.vllm import kv_cache_bytes
    from skillgap.suites import load_suite

    folder = materialize(resolve_source("smollm2-135m"))
    t0 = time.perf_counter()
    llm = vllm.LLM(model=str(folder), tokenizer=str(folder), dtype="float32", seed=0, max_model_len=2048,
                   max_num_seqs=64, kv_cache_memory_bytes=kv_cache_bytes(folder, "float32", 2048, 64),
                   distributed_executor_backend="uni", disable_log_stats=True, enforce_eager=a.mode == "eager")
    start = time.perf_counter() - t0
    items = load_suite("arith").generate("test", a.limit, 0)
    t0 = time.perf_counter()
    outs = llm.chat([[{"role": "user", "content": it.prompt}] for it in items],
                    vllm.SamplingParams(temperature=0, max_tokens=128), use_tqdm=False)
    gen = time.perf_counter() - t0
    print(json.dumps({"mode": a.mode, "start_s": round(start, 1), "items_per_s": round(a.limit / gen, 2),
                      "texts": [o.outputs[0].text for o in outs]}), flush=True)


if __name__ == "__main__":
    main()
