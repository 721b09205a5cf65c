"""The README's main job, recorded: what `skillgap run` printed and how long it took, from its run folder.

Run the README's set-up-and-main-job command under `/usr/bin/time -v` on a fresh clone, then record it:

    /usr/bin/time -v skillgap run --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --seed 0 \\
        --output-path out/ 2> time.txt
    python benchmarks/main_job.py --run-dir out/ --time-log time.txt --install-seconds 94 --note "..." \\
        --output-path benchmarks/results/main_job.json

`benchmarks/readme.py` writes the README's main-job block from that JSON.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

OVERALL = ("before", "after", "delta", "delta_ci_low", "delta_ci_high", "n", "gained", "lost", "p_value", "significant")


def peak_rss_gb(time_log: str) -> float | None:
    """GNU time's 'Maximum resident set size (kbytes)' in GB."""
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_log)
    return round(int(m.group(1)) / 1e6, 2) if m else None


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 units: `--precision auto` then trains in bf16 and the figures differ."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def record(report: dict, time_log: str, install_seconds: float | None, note: str) -> dict:
    d = report["deltas"]
    return {"command": "skillgap run --model smollm2-135m --suite arith --strategy stat-sel --budget 512 --seed 0 "
                       "--output-path out/",
            "skillgap_version": report["skillgap_version"], "model": report["model"],
            "install_seconds": install_seconds, "timings": report["timings"], "peak_rss_gb": peak_rss_gb(time_log),
            "cpu_bf16": cpu_has_bf16(), "note": note,
            "overall": {k: d["overall"][k] for k in OVERALL if k in d["overall"]},
            "by_k": [{k: x[k] for k in ("k", *OVERALL) if k in x} for x in d["by_k"]],
            "improved": report["improved"], "regressions": report["regressions"], "verdict": report["verdict"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", type=Path, required=True, help="the run's --output-path (holds report.json)")
    p.add_argument("--time-log", type=Path, required=True, help="what /usr/bin/time -v wrote")
    p.add_argument("--install-seconds", type=float, default=None)
    p.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    p.add_argument("--output-path", type=Path, default=Path(__file__).parent / "results" / "main_job.json")
    a = p.parse_args(argv)
    rec = record(json.loads((a.run_dir / "report.json").read_text()), a.time_log.read_text(), a.install_seconds, a.note)
    a.output_path.write_text(json.dumps(rec, indent=2) + "\n")


if __name__ == "__main__":
    main()
