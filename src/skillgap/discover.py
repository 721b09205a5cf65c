"""Discover a skill inventory from unlabelled items, after Didolkar et al. (2024), "Metacognitive
Capabilities of LLMs: An Exploration in Mathematical Problem Solving", and Instruct-SkillMix's
skill extraction (Kaur, Park, Goyal, Arora, ICLR 2025).

1. The teacher names the fine-grained skills each item needs (1-3 short snake_case names).
2. The distinct names are embedded (all-MiniLM-L6-v2) and grouped by agglomerative clustering
   (scikit-learn; cosine distance, average linkage). Didolkar et al. let GPT-4 cluster ~5000
   names into ~117 skills; an embedding clustering does the grouping without a strong teacher.
3. The teacher names each cluster from its members: {"id", "name", "description"}. A cluster
   whose naming fails validation keeps its most frequent member as id, marked `named_by: member`.

The result is a `SkillSet` plus, per skill, its member names and the items that produced them,
so the discovered inventory comes with a first labelling of the items.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


from skillgap.embed import DEFAULT_ENCODER, embed
from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.label import item_text
from skillgap.skills import Skill, SkillSet
from skillgap.teacher import Invalid, Teacher, json_in

NAME_PROMPT = """Name the skills needed to solve this problem.

Problem:
{problem}

Give 1 to {hi} skills, each a short snake_case name of a general, reusable skill, not a restatement of this problem.
Reply with JSON only, in this form: {{"skills": ["<skill_name>", ...]}}"""

CLUSTER_PROMPT = """These fine-grained skill names were grouped together because they mean similar things:

{members}

Give the group one coarse skill: a snake_case id, a short human-readable name, and a one-sentence description.
Reply with JSON only, in this form: {{"id": "<snake_case_id>", "name": "<short name>", "description": "<one sentence>"}}"""

_SNAKE = re.compile(r"[a-z][a-z0-9_]{1,63}")
_PLACEHOLDERS = {"skill_name", "snake_case_id", "short_name", "one_sentence"}  # the prompts' templates, echoed


def _echo(value: str) -> bool:
    return "<" in value or snake(value) in _PLACEHOLDERS


def snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().casefold()).strip("_")


def parse_names(hi: int):
    def parse(text: str) -> tuple[str, ...]:
        d = json_in(text)
        names = d.get("skills") if isinstance(d, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise Invalid('expected {"skills": ["snake_case_name", ...]} with at least one name')
        if any(_echo(n) for n in names):
            raise Invalid("replace the placeholder with real skill names")
        out = tuple(dict.fromkeys(snake(n) for n in names if _SNAKE.fullmatch(snake(n))))
        if not out:
            raise Invalid("skill names must be short snake_case phrases")
        return out[:hi]

    return parse


def parse_cluster(text: str) -> dict[str, str]:
    d = json_in(text)
    if not isinstance(d, dict) or not all(isinstance(d.get(k), str) and d[k].strip() for k in ("id", "name")):
        raise Invalid('expected {"id": ..., "name": ..., "description": ...}')
    if any(_echo(str(d.get(k) or "")) for k in ("id", "name", "description")):
        raise Invalid("replace the placeholders with a real id, name and description")
    sid = snake(d["id"])
    if not _SNAKE.fullmatch(sid):
        raise Invalid("the id must be a short snake_case phrase")
    return {"id": sid, "name": d["name"].strip(), "description": str(d.get("description") or "").strip()}


# Constrained decoding (llama.cpp, vLLM) then cannot produce a name the parser rejects: snake_case, 2-64 chars.
SNAKE_SCHEMA = {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,63}$"}
NAMES_SCHEMA = {"type": "object", "properties": {"skills": {"type": "array", "items": SNAKE_SCHEMA,
                                                            "minItems": 1, "maxItems": 3}}, "required": ["skills"]}
CLUSTER_SCHEMA = {"type": "object", "properties": {"id": SNAKE_SCHEMA, "name": {"type": "string"},
                                                   "description": {"type": "string"}},
                  "required": ["id", "name", "description"]}


@dataclass
class Discovery:
    inventory: SkillSet
    members: dict[str, list[str]]  # coarse skill -> its fine-grained names, most frequent first
    item_skills: dict[str, tuple[str, ...]]  # item id -> coarse skills
    notes: dict[str, Any] = field(default_factory=dict)


def cluster(names: list[str], n_clusters: int | None, distance: float | None,
            encoder: str = DEFAULT_ENCODER) -> list[int]:
    """Cluster label per name: a fixed number of clusters, or cut at a cosine distance."""
    if len(names) < 2:
        return [0] * len(names)
    from sklearn.cluster import AgglomerativeClustering

    x = embed([n.replace("_", " ") for n in names], encoder)
    if n_clusters is None and distance is None:
        n_clusters = max(2, round(len(names) ** 0.5))
    if n_clusters is not None:
        n_clusters = min(n_clusters, len(names))
    algo = AgglomerativeClustering(n_clusters=n_clusters, distance_threshold=None if n_clusters else distance,
                                   metric="cosine", linkage="average")
    return [int(c) for c in algo.fit_predict(x)]


def discover(items: list[Item], teacher: Teacher, n_clusters: int | None = None, distance: float | None = None,
             per_item: int = 3, progress: Any = None) -> Discovery:
    if not items:
        raise ConfigError("Nothing to discover skills from: no items.")
    chats = [[{"role": "user", "content": NAME_PROMPT.format(problem=item_text(it), hi=per_item)}] for it in items]
    replies = teacher.ask(chats, parse_names(per_item), schema=NAMES_SCHEMA, progress=progress)
    fine = {it.id: r.value for it, r in zip(items, replies) if r.status == "ok"}
    invalid = len(items) - len(fine)
    counts = Counter(n for names in fine.values() for n in names)
    if not counts:
        raise ConfigError(f"The teacher named no valid skill for any of {len(items)} items "
                          f"(last reply: {replies[-1].text[:200]!r}). Use a stronger --teacher.")
    names = sorted(counts, key=lambda n: (-counts[n], n))
    labels = cluster(names, n_clusters, distance)
    groups: dict[int, list[str]] = {}
    for n, c in zip(names, labels):
        groups.setdefault(c, []).append(n)  # names arrive most frequent first
    ordered = sorted(groups.values(), key=lambda g: -sum(counts[n] for n in g))
    prompts = [[{"role": "user", "content": CLUSTER_PROMPT.format(
        members="\n".join(f"- {n} ({counts[n]} items)" for n in g[:30]))}] for g in ordered]
    named = teacher.ask(prompts, parse_cluster, schema=CLUSTER_SCHEMA)
    skills: list[Skill] = []
    members: dict[str, list[str]] = {}
    of_name: dict[str, str] = {}
    fallback = 0
    for g, r in zip(ordered, named):
        d = r.value if r.status == "ok" else {"id": g[0], "name": g[0].replace("_", " ").capitalize(),
                                               "description": "Skills such as " + ", ".join(g[:5]) + "."}
        fallback += r.status != "ok"
        sid, k = d["id"], 2
        while sid in members:  # two clusters named alike stay two skills
            sid, k = f"{d['id']}_{k}", k + 1
        skills.append(Skill(sid, d["name"], d["description"]))
        members[sid] = g
        of_name.update({n: sid for n in g})
    item_skills = {iid: tuple(dict.fromkeys(of_name[n] for n in names)) for iid, names in fine.items()}
    return Discovery(SkillSet(tuple(skills)), members, item_skills,
                     {"items": len(items), "items_without_valid_names": invalid, "fine_names": len(names),
                      "clusters": len(skills), "clusters_named_by_member": fallback,
                      "teacher": teacher.identity})
