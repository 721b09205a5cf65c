"""How long the command line takes before it does any work, and whether it loads torch to get there.

    python benchmarks/cli_startup.py --baseline-src /path/to/old/checkout/src --repeats 5

times `skillgap --help`, `skillgap runs` and a mistyped option (`skillgap profile --bogus`) in fresh processes,
this checkout's `src/` and a baseline's side by side in one run (interleaved, so both see the same load), and
records whether each process imported torch. Writes benchmarks/results/cli_startup.json and .md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_json

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "runs": ["runs"], "bad option": ["profile", "--bogus"]}
# Runs the CLI in-process, then reports whether torch came in, on the last line of stderr.
PROBE = ("import sys\nfrom skillgap.cli import main\ntry:\n    code = main(sys.argv[1:])\nexcept SystemExit as e:\n"
         "    code = e.code\nprint('torch' in sys.modules, file=sys.stderr)\n")


def once(src: Path, argv: list[str], cwd: str) -> tuple[float, bool]:
    """Seconds for one fresh process, and whether it imported torch."""
    env = os.environ | {"PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    return took, p.stderr.strip().splitlines()[-1] == "True"


def measure(sources: dict[str, Path], repeats: int) -> dict[str, dict[str, dict[str, object]]]:
    times: dict[tuple[str, str], list[float]] = {}
    torch: dict[tuple[str, str], bool] = {}
    with tempfile.TemporaryDirectory() as cwd:  # an empty run store: `runs` lists nothing
        for _ in range(repeats):
            for name, argv in COMMANDS.items():
                for label, src in sources.items():
                    took, loaded = once(src, argv, cwd)
                    times.setdefault((label, name), []).append(took)
                    torch[(label, name)] = loaded
    return {label: {name: {"median_s": round(statistics.median(times[(label, name)]), 3),
                           "runs_s": [round(t, 3) for t in times[(label, name)]],
                           "imports_torch": torch[(label, name)]} for name in COMMANDS} for label in sources}


def commit(src: Path) -> str:
    """The checkout's commit, so a result names what it timed."""
    p = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def table(results: dict[str, dict[str, dict[str, object]]]) -> str:
    labels = list(results)
    lines = ["| command | " + " | ".join(f"{label}: median s (torch?)" for label in labels) + " |",
             "|---|" + "---|" * len(labels)]
    for name in COMMANDS:
        cells = [f"{results[lb][name]['median_s']:.2f} ({'yes' if results[lb][name]['imports_torch'] else 'no'})"
                 for lb in labels]
        lines.append(f"| `skillgap {' '.join(COMMANDS[name])}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-src", type=Path, help="another checkout's src/ to time beside this one")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--output-path", type=Path, default=ROOT / "benchmarks" / "results" / "cli_startup.json")
    a = ap.parse_args()
    sources = {"this checkout": ROOT / "src"} | ({"baseline": a.baseline_src} if a.baseline_src else {})
    results = measure(sources, a.repeats)
    write_json({"commands": COMMANDS, "repeats": a.repeats, "commits": {lb: commit(src) for lb, src in sources.items()},
                "results": results}, a.output_path)
    a.output_path.with_suffix(".md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
