"""Recipe: label a dataset with skills from an inventory (`skillgap label`).

    items     = read_items(data)                  # any format: GSM8K, MATH, JSONL, CSV, Parquet
    inventory = load_inventory(skills)            # YAML / JSON / CSV, or the skills of a labelled JSONL
    examples  = labelled_examples(...)            # embed: the neighbours that vote (default: the --skills
                                                  # file itself when it is a labelled JSONL)
    labelled  = label_items(items, inventory, cfg, examples, teacher)
    write_jsonl(labelled, output)                 # the items format: `skillgap profile --data` reads it

The inventory is written beside the output (`<output>.skills.yaml`) so that later stages show names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from skillgap.data import DataConfig
from skillgap.discover import discover
from skillgap.errors import ConfigError
from skillgap.formats import read_items
from skillgap.items import Item, write_jsonl
from skillgap.label import LabelConfig, label_counts, label_items, labelled_examples
from skillgap.skills import load_inventory
from skillgap.teacher import Teacher


def is_labelled_jsonl(path: Path) -> bool:
    """A JSONL of items with `skills`: an inventory whose items can vote as the embed labeller's neighbours."""
    if path.suffix not in (".jsonl", ".json") or not path.is_file():
        return False
    with path.open(encoding="utf-8") as f:
        first = next((line for line in f if line.strip()), "")
    try:
        return isinstance(json.loads(first).get("skills"), list)
    except (json.JSONDecodeError, AttributeError):
        return False


def label_recipe(data: DataConfig, skills_path: str | Path, cfg: LabelConfig, output_path: str | Path,
                 examples_path: str | Path | None = None, teacher: Teacher | None = None,
                 console: Console | None = None) -> list[Item]:
    console = console or Console(stderr=True)
    if not data.data:
        raise ConfigError("skillgap label needs --data: suites are labelled by construction.")

    items, _ = read_items(data.data, data.format, dict(data.fields))
    items = items[: data.limit] if data.limit else items
    inventory = load_inventory(skills_path)
    examples = None
    if cfg.labeler == "embed":
        source = Path(examples_path) if examples_path else Path(skills_path)
        if examples_path or is_labelled_jsonl(source):
            examples = labelled_examples(source)
            console.print(f"[dim]embed: {len(inventory)} skills, {len(examples)} labelled neighbours from "
                          f"{source.name}[/dim]")
        else:
            console.print(f"[dim]embed: {len(inventory)} skills, descriptions only (no labelled examples)[/dim]")
    columns = (TextColumn(f"[bold]label ({cfg.labeler})"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("label", total=len(items))
        labelled = label_items(items, inventory, cfg, examples, teacher, progress=lambda n: bar.advance(task, n))
    out = write_jsonl(labelled, output_path)
    inv_path = out.with_name(out.name.removesuffix(".jsonl") + ".skills.yaml")
    inv_path.write_text(yaml.safe_dump({"skills": inventory.to_dicts(), "labelled_by": asdict(cfg)
                                        | {"teacher": teacher.identity if teacher else None}}, sort_keys=False))
    if cfg.labeler == "embed" and examples:
        console.print(f"[dim]embed: neighbour weight {labelled[0].metadata['labels']['neighbour_weight']}"
                      f"{' (fitted on the examples)' if cfg.weight is None else ''}[/dim]")
    invalid = sum(it.metadata["labels"]["status"] != "ok" for it in labelled)
    counts = label_counts(labelled)
    console.print(f"labelled {len(labelled) - invalid} of {len(labelled)} items"
                  + (f" ({invalid} without a valid teacher answer, written with no skills)" if invalid else "")
                  + "; by skill: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    if teacher:
        console.print(f"[dim]teacher: {teacher.calls} calls, {teacher.hits} from the cache[/dim]")
    return labelled


def discover_recipe(data: DataConfig, teacher: Teacher, output_path: str | Path, n_clusters: int | None = None,
                    distance: float | None = None, per_item: int = 3, console: Console | None = None) -> Any:
    """Items -> teacher-named fine skills -> clusters -> named coarse skills, written as an inventory YAML
    (with each skill's member names), plus the items labelled with them (`<output stem>.items.jsonl`)."""
    console = console or Console(stderr=True)
    if not data.data:
        raise ConfigError("skillgap discover needs --data: the items to name skills for.")
    items, _ = read_items(data.data, data.format, dict(data.fields))
    items = items[: data.limit] if data.limit else items
    columns = (TextColumn("[bold]discover: naming skills"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("discover", total=len(items))
        found = discover(items, teacher, n_clusters, distance, per_item, progress=lambda n: bar.advance(task, n))
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [s.to_dict() | {"members": found.members[s.id]} for s in found.inventory]
    out.write_text(yaml.safe_dump({"skills": rows, "discovery": found.notes | {"data": data.describe()}},
                                  sort_keys=False, allow_unicode=True))
    def status(it: Item) -> str:
        return "ok" if it.id in found.item_skills else "invalid"

    labelled = [replace(it, skills=found.item_skills.get(it.id, ()),
                        metadata=it.metadata | {"labels": {"labeler": "discover", "status": status(it)}})
                for it in items]
    write_jsonl(labelled, out.with_name(out.stem + ".items.jsonl"))
    console.print(f"{len(found.inventory)} skills from {found.notes['fine_names']} names over {len(items)} items "
                  f"({found.notes['items_without_valid_names']} items without a valid answer, "
                  f"{found.notes['clusters_named_by_member']} clusters named after their top member); "
                  f"teacher: {teacher.calls} calls, {teacher.hits} from the cache")
    return found
