"""Label items with skills from an inventory: the "metacognition" step of Didolkar et al. (2024),
"Metacognitive Capabilities of LLMs: An Exploration in Mathematical Problem Solving".

Two labellers, one interface (`label_items`):

- `embed` (offline, the default): each item is scored against every skill by
  (a) the cosine similarity of its embedding to the skill's name and description, turned into a
      distribution with a softmax at temperature `temperature`, and
  (b) the similarity-weighted votes of its `neighbours` nearest already-labelled examples
      (an item never votes for itself: examples with the same text are skipped);
  score = weight * votes + (1 - weight) * description, or the description part alone without examples.
  The weight is fitted on the examples themselves (leave one out) unless given.
  The best skill is always kept; further ones need `min_score` times the best score, up to `max_skills`.
- `teacher`: a model is shown the inventory and the item and answers `{"skills": [ids]}`; the reply
  is validated against the inventory (retried with the reason on a malformed answer) and, on
  OpenAI-compatible servers, constrained by a JSON schema with the ids as an enum.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from skillgap.embed import DEFAULT_ENCODER, embed
from skillgap.errors import ConfigError, DataError, unknown_name
from skillgap.formats import records
from skillgap.items import Item
from skillgap.skills import SkillSet
from skillgap.teacher import Invalid, Teacher, json_in

LABELERS = ("embed", "teacher")


@dataclass(frozen=True)
class LabelConfig:
    labeler: str = field(default="embed", metadata={"help": "embed (offline) | teacher"})
    max_skills: int = field(default=1, metadata={  # as in the released GSM8K/MATH labels
        "help": "skills per item at most"})
    min_score: float = field(default=0.5, metadata={
        "help": "embed: a further skill needs this fraction of the best score"})
    neighbours: int = field(default=30, metadata={"help": "embed: labelled neighbours that vote"})
    weight: float | None = field(default=None, metadata={  # None: fitted on the examples
        "flag": "--neighbour-weight",
        "help": "embed: weight of the neighbour votes against the description similarity, 0-1 (default: fitted on "
                "the labelled examples, each left out of its own vote)"})
    temperature: float = 0.05  # embed: softmax temperature over description similarities
    encoder: str = DEFAULT_ENCODER  # embed: sentence-transformers model

@dataclass(frozen=True)
class Labels:
    """One item's labels and how they were reached."""

    skills: tuple[str, ...]
    scores: dict[str, float]  # embed: the top scores; teacher: 1.0 per chosen skill
    status: str = "ok"  # "ok" | "invalid" (the teacher never gave a valid answer)
    detail: str = ""


def item_text(item: Item) -> str:
    """What is labelled: the prompt, or the last user turn of a chat."""
    if item.prompt is not None:
        return item.prompt
    users = [m["content"] for m in item.chat() if m["role"] == "user"]
    return users[-1] if users else item.chat()[-1]["content"]


def skill_text(inventory: SkillSet, sid: str) -> str:
    s = inventory[sid]
    return f"{s.name}: {s.description}" if s.description else s.name


def labelled_examples(path: str | Path) -> list[tuple[str, tuple[str, ...]]]:
    """(text, skills) of every line of a labelled JSONL: a `skills` list and a `question`, `prompt`,
    `problem` or `messages` field (the released AdaptMI labels, or a file `skillgap label` wrote)."""
    path = Path(path)
    out: list[tuple[str, tuple[str, ...]]] = []
    for n, d in records(path):  # file:line errors for a missing file or a bad line come from there
        if not isinstance(d, dict) or not isinstance(d.get("skills"), list):
            raise DataError(path, n, "skills", "expected a list of skill ids")
        text = d.get("question") or d.get("prompt") or d.get("problem")
        if text is None and isinstance(d.get("messages"), list):
            text = next((m.get("content") for m in reversed(d["messages"]) if m.get("role") == "user"), None)
        if not isinstance(text, str):
            raise DataError(path, n, "question", "no text to compare with (question, prompt, problem or messages)")
        out.append((text, tuple(map(str, d["skills"]))))
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def neighbour_votes(x: np.ndarray, texts: list[str], e: np.ndarray, ex_texts: list[str], votes: np.ndarray,
                    k: int, fallback: np.ndarray) -> np.ndarray:
    """(items, skills): the similarity-weighted label shares of each item's k nearest examples.

    An example with the item's own text never votes (leave one out). `votes` is (skills, examples):
    an example's labels, each worth 1/len(labels). Rows with no positive vote take `fallback`."""
    same: dict[str, list[int]] = {}
    for i, t in enumerate(ex_texts):
        same.setdefault(_key(t), []).append(i)
    k = min(k, len(ex_texts))
    out = np.zeros((len(texts), votes.shape[0]), dtype=np.float32)
    for lo in range(0, len(texts), 1024):  # rows in chunks: items x examples stays small
        sims = x[lo:lo + 1024] @ e.T
        for r, t in enumerate(texts[lo:lo + 1024]):
            sims[r, same.get(_key(t), [])] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.clip(np.take_along_axis(sims, top, axis=1), 0, None)
        v = np.einsum("sik,ik->is", votes[:, top], w)
        total = v.sum(axis=1, keepdims=True)
        out[lo:lo + len(v)] = np.where(total > 0, v / np.maximum(total, 1e-12), fallback[lo:lo + len(v)])
    return out


WEIGHTS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)


def fit_weight(knn: np.ndarray, desc: np.ndarray, gold: np.ndarray) -> float:
    """The neighbour weight that best reproduces the examples' own labels (each left out of its vote).

    Whether names and descriptions or neighbours are the better evidence depends on the inventory:
    bare names such as 'problem_solving' say little, MATH's 'quadratic_equation_skills' a lot."""
    hits = [float((gold[np.arange(len(gold)), (w * knn + (1 - w) * desc).argmax(axis=1)] > 0).mean())
            for w in WEIGHTS]
    return WEIGHTS[int(np.argmax(hits))]  # ties: the smaller weight, the one that leans less on the labels


def embed_scores(texts: list[str], inventory: SkillSet, examples: list[tuple[str, tuple[str, ...]]] | None,
                 cfg: LabelConfig) -> tuple[np.ndarray, float]:
    """(items, skills) scores in [0, 1], each row summing to 1, and the neighbour weight used."""
    ids = inventory.ids
    x = embed(texts, cfg.encoder)
    s_emb = embed([skill_text(inventory, s) for s in ids], cfg.encoder)
    desc = _softmax(x @ s_emb.T / cfg.temperature)
    examples = [(t, tuple(s for s in sk if s in inventory)) for t, sk in examples or []]
    examples = [(t, sk) for t, sk in examples if sk]
    if not examples or cfg.weight == 0:
        return desc, 0.0
    ex_texts = [t for t, _ in examples]
    e = embed(ex_texts, cfg.encoder)
    votes = np.zeros((len(ids), len(examples)), dtype=np.float32)
    col = {s: j for j, s in enumerate(ids)}
    for i, (_, sk) in enumerate(examples):
        for s in sk:
            votes[col[s], i] = 1.0 / len(sk)
    weight = cfg.weight
    if weight is None:  # calibrate on (up to 2000, evenly spaced) examples, each left out of its own vote
        q = np.linspace(0, len(examples) - 1, min(len(examples), 2000)).round().astype(int)
        q = np.unique(q)
        e_desc = _softmax(e[q] @ s_emb.T / cfg.temperature)
        e_knn = neighbour_votes(e[q], [ex_texts[i] for i in q], e, ex_texts, votes, cfg.neighbours, e_desc)
        weight = fit_weight(e_knn, e_desc, votes[:, q].T)
    knn = neighbour_votes(x, texts, e, ex_texts, votes, cfg.neighbours, desc)
    return weight * knn + (1 - weight) * desc, weight


def pick(row: np.ndarray, ids: list[str], cfg: LabelConfig) -> Labels:
    order = np.argsort(-row, kind="stable")
    best = row[order[0]]
    chosen = [ids[order[0]]] + [ids[j] for j in order[1:cfg.max_skills] if row[j] >= cfg.min_score * best]
    return Labels(tuple(chosen), {ids[j]: round(float(row[j]), 4) for j in order[:3]})


# --- teacher -----------------------------------------------------------------------------------------------

def skill_menu(inventory: SkillSet) -> str:
    """The inventory as the teacher sees it: one `id: name, description` line per skill."""
    lines = []
    for s in inventory:
        extra = f" ({s.description})" if s.description else ""
        lines.append(f"- {s.id}: {s.name}{extra}")
    return "\n".join(lines)


def skills_schema(inventory: SkillSet, lo: int, hi: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {"skills": {"type": "array", "items": {"type": "string", "enum": inventory.ids},
                        "minItems": lo, "maxItems": hi}} | (extra or {})
    return {"type": "object", "properties": props, "required": list(props)}


def choose_skills(inventory: SkillSet, lo: int, hi: int):
    """A parser for `{"skills": [...]}` replies: every name must resolve to an inventory id
    (exactly, by case, by its display name, or by a close spelling); lo..hi of them."""
    by_name = {s.id.casefold(): s.id for s in inventory} | {s.name.casefold(): s.id for s in inventory}

    def resolve(name: Any) -> str:
        if not isinstance(name, str):
            raise Invalid(f"{name!r} is not a skill id")
        key = name.strip().casefold()
        if key in by_name:
            return by_name[key]
        close = difflib.get_close_matches(key, list(by_name), n=1, cutoff=0.85)
        if close:
            return by_name[close[0]]
        raise Invalid(f"{name!r} is not in the skill list; use ids from the list only")

    def parse(text: str) -> tuple[str, ...]:
        d = json_in(text)
        names = d.get("skills") if isinstance(d, dict) else None
        if not isinstance(names, list):
            raise Invalid('expected {"skills": [...]}')
        out = tuple(dict.fromkeys(resolve(n) for n in names))
        if len(out) < lo:
            raise Invalid(f"name at least {lo} skill{'s' if lo > 1 else ''}")
        return out[:hi]

    return parse


LABEL_PROMPT = """You label problems with the skills needed to solve them.

Skills:
{menu}

Problem:
{problem}

Which skills from the list does solving this problem need? Choose 1 to {hi} skill ids, the most important first.
Reply with JSON only, in this form: {{"skills": ["<skill id>", ...]}}"""


def teacher_labels(texts: list[str], inventory: SkillSet, teacher: Teacher, cfg: LabelConfig,
                   progress: Any = None) -> list[Labels]:
    menu = skill_menu(inventory)
    chats = [[{"role": "user", "content": LABEL_PROMPT.format(menu=menu, problem=t, hi=cfg.max_skills)}] for t in texts]
    replies = teacher.ask(chats, choose_skills(inventory, 1, cfg.max_skills),
                          schema=skills_schema(inventory, 1, cfg.max_skills), progress=progress)
    return [Labels(r.value, {s: 1.0 for s in r.value}) if r.status == "ok"
            else Labels((), {}, "invalid", f"{r.error}; last reply: {r.text[:200]!r}") for r in replies]


# --- both --------------------------------------------------------------------------------------------------

def label_items(items: list[Item], inventory: SkillSet, cfg: LabelConfig,
                examples: list[tuple[str, tuple[str, ...]]] | None = None, teacher: Teacher | None = None,
                progress: Any = None) -> list[Item]:
    """The items with `skills` replaced by their labels; `metadata.labels` says how each was reached."""
    if cfg.labeler not in LABELERS:
        raise unknown_name("labeller", cfg.labeler, list(LABELERS))
    if cfg.max_skills < 1:
        raise ConfigError(f"--max-skills must be at least 1, got {cfg.max_skills}.")
    texts = [item_text(it) for it in items]
    weight: float | None = None
    if cfg.labeler == "embed":
        rows, weight = embed_scores(texts, inventory, examples, cfg)
        labels = [pick(r, inventory.ids, cfg) for r in rows]
        if progress:
            progress(len(items))
    else:
        if teacher is None:
            raise ConfigError("The teacher labeller needs a teacher model (--teacher).")
        labels = teacher_labels(texts, inventory, teacher, cfg, progress)
    out = []
    for it, lab in zip(items, labels):
        meta = {"labeler": cfg.labeler, "status": lab.status, "scores": lab.scores}
        if cfg.labeler == "embed":
            meta["neighbour_weight"] = weight
        if lab.detail:
            meta["detail"] = lab.detail
        if it.skills:
            meta["previous"] = list(it.skills)
        out.append(replace(it, skills=lab.skills, metadata=it.metadata | {"labels": meta}))
    return out


def label_counts(items: list[Item]) -> dict[str, int]:
    return dict(Counter(s for it in items for s in it.skills).most_common())
