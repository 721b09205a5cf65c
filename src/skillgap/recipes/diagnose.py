"""Recipe: a teacher's Missing-Skill-Profile for a finished profile run (`skillgap diagnose`).

    records   = store.records(run)                  # what the student said, graded
    diagnoses = diagnose(wrong(records), inventory, teacher)
    profile   = build_profile(records, missing=missing_skill_profile(diagnoses))

The profile JSON it writes has the `skillgap profile` schema with `missing` from the teacher, so
`skillgap train --profile it.json` targets the skills the teacher named. The per-item diagnoses go
beside it (`<output stem>.diagnoses.jsonl`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from skillgap.diagnose import diagnose, missing_skill_profile, wrong
from skillgap.errors import ConfigError
from skillgap.io import write_json
from skillgap.profile import build_profile
from skillgap.skills import Skill, SkillSet, load_inventory, sibling_inventory
from skillgap.store import RunStore
from skillgap.suites import SUITES, load_suite
from skillgap.teacher import Teacher


def diagnose_recipe(run_ref: str, teacher: Teacher, output_path: str | Path, runs_dir: str | Path = "runs",
                    skills_path: str | Path | None = None, console: Console | None = None,
                    with_reference: bool = False) -> dict[str, Any]:
    console = console or Console(stderr=True)
    store = RunStore(runs_dir)
    try:
        run = store.get(run_ref)
        records = store.records(run["run_id"])
    finally:
        store.close()
    if run["status"] != "done":
        console.print(f"[yellow]run {run['run_id']} is unfinished ({len(records)} of {run['n_items']} items); "
                      "diagnosing the graded ones[/yellow]")
    if skills_path:
        inventory = load_inventory(skills_path)
    else:
        suite = run["data"].removeprefix("suite:").split("/")[0]
        beside = sibling_inventory(run["data"].removeprefix("file:").split("?")[0]) \
            if run["data"].startswith("file:") else None
        if run["data"].startswith("suite:") and suite in SUITES:
            inventory = load_suite(suite).skills
        elif beside is not None:
            inventory = beside
        else:
            ids = sorted({s for r in records for s in r.item.skills})
            if not ids:
                raise ConfigError(f"Run {run['run_id']}'s items carry no skills; give the inventory with --skills.")
            inventory = SkillSet(tuple(Skill(s, s.replace("_", " ").capitalize()) for s in ids))
    todo = wrong(records)
    columns = (TextColumn("[bold]diagnose"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("diagnose", total=len(todo))
        diagnoses = diagnose(records, inventory, teacher, progress=lambda n: bar.advance(task, n),
                             with_reference=with_reference)
    msp = missing_skill_profile(diagnoses)
    invalid = sum(d.status == "invalid" for d in diagnoses)
    unformatted = sum(d.status == "format_failure" for d in diagnoses)
    prof = build_profile(records, inventory, run["run_id"], run["model"], run["data"], missing=msp).to_dict()
    prof["diagnosis"] = {"method": "teacher", "teacher": teacher.identity, "wrong": len(todo),
                         "diagnosed": len(todo) - invalid, "invalid": invalid, "format_failures": unformatted,
                         "with_reference": with_reference, "inventory": str(skills_path) if skills_path else None,
                         "teacher_calls": teacher.calls, "cache_hits": teacher.hits}
    out = Path(output_path)
    write_json(prof, out)
    with out.with_name(out.stem + ".diagnoses.jsonl").open("w", encoding="utf-8") as f:
        for d in diagnoses:
            f.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
    console.print(f"{len(todo)} wrong answers diagnosed ({invalid} without a valid teacher answer), "
                  f"{unformatted} format failures (no gradable answer: not a missing skill); "
                  "missing-skill profile: " + (", ".join(f"{s} {n}" for s, n in msp.items()) or "empty"))
    return prof


def read_graded(source: str | Path, runs_dir: str | Path = "runs") -> tuple[list[dict[str, Any]], str]:
    """Graded outcomes from wherever they were graded: a records JSONL (`{"id", "skills", "correct"}` a line), a
    profile JSON (`skillgap profile`, or a `skillgap run` folder's before.json), or a run id in the store. Returns
    the outcomes and a description of the source. Every problem names the file, line and field."""
    from skillgap.attribution import outcomes_of
    from skillgap.errors import DataError
    from skillgap.io import read_json
    from skillgap.items import read_text
    from skillgap.profile import outcome

    path = Path(source)
    if path.is_dir():
        if not (path / "before.json").is_file():
            raise DataError(path, None, None, "a folder without before.json: give a `skillgap run` output folder, a "
                            "profile JSON, a records JSONL or a run id")
        path = path / "before.json"
    if path.is_file() and path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(read_text(path).split("\n"), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(path, n, None, f"invalid JSON ({e.msg} at column {e.colno})") from None
        lines = [n for n, line in enumerate(read_text(path).split("\n"), start=1) if line.strip()]
        try:
            return outcomes_of(rows, str(path)), f"records {path}"
        except DataError as e:  # its line counts records; name the file's line
            raise DataError(path, lines[e.line - 1] if e.line else None, e.field,
                            str(e).split(": ", 2 if e.field else 1)[-1]) from None
    if path.is_file():
        d = read_json(path)
        if not isinstance(d, dict) or not isinstance(d.get("records"), list):
            raise DataError(path, None, "records", "expected a profile with its item outcomes, as `skillgap "
                            "profile` writes it (or a records JSONL: {\"id\", \"skills\", \"correct\"} a line)")
        return outcomes_of(d["records"], str(path)), f"profile {path}"
    if not (Path(runs_dir) / "skillgap.db").is_file():
        raise ConfigError(f"No run {str(source)!r}: no such file, and no run store in {runs_dir}/ (give a profile "
                          "JSON, a records JSONL, or the run id with --runs-dir).")
    store = RunStore(runs_dir)
    try:
        run = store.get(str(source))
        records = store.records(run["run_id"])
    finally:
        store.close()
    return outcomes_of([outcome(r) for r in records]), f"run {run['run_id']}"


def attribute_recipe(source: str | Path, cfg: Any = None, runs_dir: str | Path = "runs",
                     output_path: str | Path | None = None) -> dict[str, Any]:
    """`skillgap attribute`: every skill's mastery fitted jointly over graded outcomes, the gaps, and the evidence."""
    from skillgap.attribution import AttributionConfig, attribute

    cfg = cfg or AttributionConfig()
    cfg.check()
    outcomes, described = read_graded(source, runs_dir)
    result = {"source": described} | attribute(outcomes, cfg).to_dict()
    if output_path:
        write_json(result, Path(output_path))
    return result
