"""Recipe: another harness's evaluation log in, the per-skill profile out, without generating a token.

    log = read_log(path, cfg)                 # lm-eval, Inspect or LightEval rows -> graded records (checked)
    items = label_items(...)                  # only when the rows carry no skills: --labeler embed|teacher
    store.add(run, records)                   # a run keyed by the log's content and the settings that read it
    profile = build_profile(records)          # the same profile, gap list and paired tests as `skillgap profile`
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError
from skillgap.io import write_json
from skillgap.label import LabelConfig, label_items, labelled_examples
from skillgap.logs import LogConfig, read_log
from skillgap.recipes.label import is_labelled_jsonl
from skillgap.profile import Profile, build_profile
from skillgap.skills import SkillSet, load_inventory
from skillgap.store import RunStore, fingerprint
from skillgap.teacher import Teacher


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def import_log(path: str | Path, cfg: LogConfig, runs_dir: str | Path = "runs", output_path: str | Path | None = None,
               inventory: str | Path | None = None, label: LabelConfig | None = None,
               teacher: Teacher | None = None) -> Profile:
    """Read `path` into the run store as a finished run and return its profile. The run id hashes the log's bytes
    and every setting that changes what is read (filter, metric, the labels file's bytes, the labeller), so the
    same import twice is the same run and a re-exported log is a new one. `inventory` (a skills file) orders the
    skills and, with `label`, is what the labeller picks from."""
    skills: SkillSet | None = load_inventory(inventory) if inventory else None
    if label is not None and skills is None:
        raise ConfigError("--labeler needs the inventory to label with: --skills skills.yaml (or a labelled JSONL).")
    if label is not None and cfg.skills_from:
        raise ConfigError("Give one source of skills: --skills-from (a labels file) or --labeler, not both.")
    log = read_log(path, cfg, unlabelled=label is not None)  # every row checked before anything is written
    records = log.records
    if label is not None:
        labelled = label.labeler == "embed" and is_labelled_jsonl(Path(inventory))
        examples = labelled_examples(inventory) if labelled else None
        items = label_items([r.item for r in records], skills, label, examples, teacher)
        records = [replace(r, item=it) for r, it in zip(records, items)]
    identity = {"kind": "import", "log": file_hash(path), "filter": log.meta["filter"], "metric": log.meta["metric"],
                "skills_from": file_hash(cfg.skills_from) if cfg.skills_from else None,
                "labeler": asdict(label) if label else None, "inventory": file_hash(inventory) if inventory else None}
    run_id = f"{slug(log.meta.get('model'))}-{slug(log.meta.get('task'))}-{log.harness}-{fingerprint(identity)[:8]}"
    data = f"{log.harness}:{log.meta.get('task')}"
    model = str(log.meta.get("model") or "unknown")
    config = {"import": log.meta, "log": asdict(cfg), "identity": identity}
    store = RunStore(runs_dir)
    try:
        session = store.open_run(run_id, "import", model, data, None, len(records), config)
        if not store.done_ids(run_id):
            store.add(run_id, session, enumerate(records))
        prof = build_profile(store.records(run_id), skills, run_id, model, data)
        store.finish(run_id, prof.to_dict())
    finally:
        store.close()
    if output_path:
        write_json(prof.to_dict() | {"config": config}, output_path)
    return prof


def slug(text: Any) -> str:
    name = Path(str(text or "unknown")).name.lower()
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")[:24] or "unknown"
