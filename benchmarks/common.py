"""What the training benchmarks share: their options, the bootstrap over seeds and items, and result files.

Each benchmark is a script run from the repository root (`python benchmarks/NAME.py`), so Python finds this
file beside it; tests load it the same way (`sys.path` holds `benchmarks/`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from skillgap.io import write_text
from skillgap.verify import cluster_bootstrap


def benchmark_parser(doc: str, work_dir: str, output: str, max_new_tokens: int) -> argparse.ArgumentParser:
    """A parser with the options every training benchmark has; the script adds its own.

    `work_dir` names the folder under /var/tmp that holds trainings and the run store; `output` the results file
    under benchmarks/results (the markdown, and a plot where there is one, are written beside it)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m", help="the base model every run starts from")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--train-batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    p.add_argument("--backend", default="auto")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws for every interval")
    p.add_argument("--work-dir", type=Path, default=Path("/var/tmp") / work_dir)
    p.add_argument("--output-path", type=Path, default=Path("benchmarks/results") / output,
                   help="the results; the markdown is written beside it (.md)")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from the results, train nothing")
    return p


def numbers(text: str, kind: type = int) -> list[Any]:
    """A comma-separated option as numbers: "0,1,2" -> [0, 1, 2]."""
    return [kind(x) for x in text.split(",") if x]


def settings_of(a: argparse.Namespace) -> dict[str, str]:
    """An invocation's options as strings: what a results file records and later invocations are checked against."""
    return {k: str(v) for k, v in vars(a).items()}


def option(key: str) -> str:
    """The command-line spelling of a setting: max_new_tokens -> --max-new-tokens."""
    return "--" + key.replace("_", "-")


def model_name(model: str, suite: str) -> str:
    """The model to load: a `scratch-*` name (a smoke run's tiny model) becomes its folder for `suite`."""
    from skillgap.models.scratch import is_scratch, scratch_model

    return str(scratch_model(model, suite)) if is_scratch(model) else model


# ---------------------------------------------------------------- results


def read_results(path: Path) -> dict[str, Any]:
    """The results written so far ({} before the first): every benchmark resumes from its results file."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(obj: dict[str, Any], path: Path, indent: int = 2) -> None:
    """Atomically (skillgap.io), so a run killed while writing leaves the last results whole."""
    write_text(path, json.dumps(obj, indent=indent) + "\n")


# ---------------------------------------------------------------- the bootstrap and its cells


def bootstrap_mean(bits: Any, n_boot: int) -> list[float]:
    """Mean of a seeds x items table (right or wrong, or a paired difference of two runs on the same seeds) with a
    95% interval that resamples seeds and items together; [nan, nan, nan] for an empty table."""
    import numpy as np

    v = np.asarray(bits, dtype=float)
    if v.size == 0:
        return [math.nan] * 3
    return cluster_bootstrap(lambda w: (w @ v.T) / v.shape[1], len(v), v.shape[1], n_boot)


def fmt_mean(m: list[float]) -> str:
    """A mean with its interval, in percent ("-" when there is none)."""
    return "-" if math.isnan(m[0]) else f"{m[0]:.1%}" + ("" if math.isnan(m[1]) else f" [{m[1]:.1%}, {m[2]:.1%}]")


def fmt_points(m: list[float]) -> str:
    """A paired difference with its interval, in points ("-" when there is none)."""
    return "-" if math.isnan(m[0]) else f"{100 * m[0]:+.1f} [{100 * m[1]:+.1f}, {100 * m[2]:+.1f}]"
