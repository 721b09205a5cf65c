"""Skills: the unit of what a model can do, and of the data that teaches it.

A `SkillSet` is an inventory of skills plus their prerequisite graph (an edge p -> s means
"s builds on p"). The graph is validated on construction: an unknown prerequisite or a cycle
is an error, because every later stage (attribution, curriculum, Skill-it mixing) walks it.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError, DataError
from skillgap.items import read_text


@dataclass(frozen=True)
class Skill:
    """One skill. `id` is the stable key used in item labels; `name` is for people."""

    id: str
    name: str
    description: str = ""
    family: str = ""
    prerequisites: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prerequisites"] = list(self.prerequisites)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Skill:
        return cls(
            id=str(d["id"]),
            name=str(d.get("name") or d["id"]),
            description=str(d.get("description") or ""),
            family=str(d.get("family") or ""),
            prerequisites=tuple(d.get("prerequisites") or ()),
        )


@dataclass(frozen=True)
class SkillSet:
    """An ordered inventory of skills with a validated prerequisite DAG."""

    skills: tuple[Skill, ...]
    _by_id: dict[str, Skill] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Skill] = {}
        for s in self.skills:
            if s.id in by_id:
                raise ConfigError(f"Skill id {s.id!r} is defined twice.")
            by_id[s.id] = s
        for s in self.skills:
            for p in s.prerequisites:
                if p not in by_id:
                    raise ConfigError(f"Skill {s.id!r} lists unknown prerequisite {p!r}.")
        object.__setattr__(self, "_by_id", by_id)
        self.topological_order()  # raises on a cycle

    @classmethod
    def from_dicts(cls, rows: Iterable[Mapping[str, Any]]) -> SkillSet:
        return cls(tuple(Skill.from_dict(r) for r in rows))

    def to_dicts(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.skills]

    def __len__(self) -> int:
        return len(self.skills)

    def __iter__(self) -> Iterator[Skill]:
        return iter(self.skills)

    def __contains__(self, skill_id: object) -> bool:
        return skill_id in self._by_id

    def __getitem__(self, skill_id: str) -> Skill:
        try:
            return self._by_id[skill_id]
        except KeyError:
            raise ConfigError(f"Unknown skill {skill_id!r}; known: {', '.join(self.ids)}.") from None

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.skills]

    def subset(self, ids: Iterable[str]) -> SkillSet:
        """These skills alone, in inventory order, with the prerequisite edges among them (a suite restricted by
        skill)."""
        keep = set(ids)
        return SkillSet(tuple(replace(s, prerequisites=tuple(p for p in s.prerequisites if p in keep))
                              for s in self.skills if s.id in keep))

    def topological_order(self) -> list[str]:
        """Prerequisites before the skills that need them; ties keep inventory order.

        Raises ConfigError naming one cycle (e.g. 'a -> b -> a') if the graph has any.
        """
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        order: list[str] = []

        def visit(sid: str, path: list[str]) -> None:
            if state.get(sid) == 2:
                return
            if state.get(sid) == 1:
                cycle = path[path.index(sid):] + [sid]
                raise ConfigError(f"Prerequisite cycle: {' -> '.join(cycle)}.")
            state[sid] = 1
            for p in self._by_id[sid].prerequisites:
                visit(p, path + [sid])
            state[sid] = 2
            order.append(sid)

        for s in self.skills:
            visit(s.id, [])
        return order

    def ancestors(self, skill_id: str) -> set[str]:
        """Every skill that `skill_id` builds on, directly or transitively."""
        seen: set[str] = set()
        stack = list(self[skill_id].prerequisites)
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                stack.extend(self._by_id[p].prerequisites)
        return seen


def load_inventory(path: str | Path) -> SkillSet:
    """A skill inventory from a file, so real data can be profiled by named skills.

    - YAML or JSON: a list of skills ({id, name, description, family, prerequisites}), or {"skills": [...]};
    - CSV: one skill per row, with those columns (prerequisites separated by ';');
    - JSONL of labelled items (a `skills` list per line): the skills they use, most frequent first;
    - JSONL of skill rows (an `id` per line, as MathCAMPS's standards.jsonl): `short_description` is the
      name and `grade` the family when present.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file")
    text = read_text(path)
    rows: list[dict[str, Any]]
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix == ".csv":
            data = [dict(r) | {"prerequisites": [p for p in (r.get("prerequisites") or "").split(";") if p]}
                    for r in csv.DictReader(io.StringIO(text))]
        else:
            data = [(n, json.loads(line)) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    except (json.JSONDecodeError, ValueError) as e:
        raise DataError(path, getattr(e, "lineno", None), None, f"cannot parse: {e}") from None
    if isinstance(data, dict) and "skills" in data:
        data = data["skills"]
    if path.suffix not in (".yaml", ".yml", ".json", ".csv"):  # JSONL
        if data and all("skills" in d for _, d in data):
            counts: Counter[str] = Counter()
            for n, d in data:
                if not isinstance(d["skills"], list):
                    raise DataError(path, n, "skills", "expected a list of skill ids")
                counts.update(str(s) for s in d["skills"])
            # no description: an invented one would only add noise to the embed labeller's similarity
            return SkillSet(tuple(Skill(s, s.replace("_", " ").capitalize()) for s, _ in counts.most_common()))
        rows = [d | {"name": d.get("name") or d.get("short_description") or d.get("id"),
                     "family": d.get("family") or str(d.get("grade") or "")} for _, d in data]
    else:
        rows = data
    if not isinstance(rows, list) or not rows:
        raise DataError(path, None, None, "expected a non-empty list of skills")
    for i, r in enumerate(rows, start=1):
        if not isinstance(r, dict) or not r.get("id"):
            raise DataError(path, i if path.suffix != ".csv" else i + 1, "id", "every skill needs an id")
    return SkillSet.from_dicts(rows)


def sibling_inventory(data_path: str | Path) -> SkillSet | None:
    """The inventory `skillgap label` or `discover` wrote beside a labelled file (`x.jsonl` -> `x.skills.yaml`,
    `skills.items.jsonl` -> `skills.yaml`), so later stages show the skills' names; None if there is none."""
    path = Path(data_path)
    for cand in (path.with_name(path.name.removesuffix(".jsonl") + ".skills.yaml"),
                 path.with_name(path.name.removesuffix(".items.jsonl") + ".yaml")):
        if cand != path and cand.is_file():
            return load_inventory(cand)
    return None
