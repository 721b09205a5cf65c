"""Skill-Mix (Yu, Kaur, Gupta, Brown-Cohen, Goyal, Arora; ICLR 2024): can a model compose k skills at once?

Draw k skills and a topic, ask the model for a short text on the topic that shows all k (two turns: write,
then improve within k - 1 sentences), and have a judge grade it on k + 3 binary points: one per skill, then
"pertains to the topic", "makes sense" and "at most N sentences". As the reference code does
(LeoYu/skill-mix, `task.py` and `aggregate_metrics.py`):

- a draw shuffles the skill list and takes the first k (draws are independent, so a tuple can repeat),
  and picks one topic; the skills are shuffled again for the prompt;
- the sentence point is overwritten by a count of the text's sentences, not the judge's opinion;
- optionally a skill's point is zeroed when its name appears verbatim in the text (`filter_names`);
- each point is a majority vote over grading runs; over generation rounds each metric takes the best;
- three aggregates: Ratio of Full Marks (all k + 3 points), Ratio of All Skills (all k skill points and at
  least 2 of the 3 others) and Skill Fraction (skill points / k, 0 unless all 3 others are earned).

One deliberate difference: the reference pads a judge reply it cannot parse with zeros. Here such a reply is
a `judge_error`, left out of the vote; a text none of whose grading runs parsed is counted and shown, never
scored 0. The prompts and rubric live here; `recipes/skillmix.py` runs them.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError
from skillgap.profile import wilson
from skillgap.teacher import Invalid, json_in


@dataclass(frozen=True)
class MixSkill:
    """A skill as Skill-Mix needs it: a name the text must show, a definition and an example for the prompt."""

    name: str
    definition: str
    example: str
    category: str = ""


@dataclass(frozen=True)
class MixTask:
    """One draw: k skills (in prompt order) and a topic."""

    id: str
    k: int
    skills: tuple[str, ...]
    topic: str


@dataclass(frozen=True)
class MixGrade:
    """A graded text: `score` is its Skill Fraction, `points` the voted k + 3 points (None: no run parsed)."""

    score: float | None
    answer: str  # the graded text
    explanation: str  # the judge's reply (the first that parsed)
    status: str = "ok"  # "ok" | "judge_error"
    points: tuple[int, ...] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    runs_parsed: int = 0


# ------------------------------------------------------------------ inventory

def load_skills(path: str | Path) -> list[MixSkill]:
    """Skills with a definition and an example, from JSONL (one object a line) or CSV (the reference's
    `skills.csv`); the name is `skill`, `name` or `id`, the definition `definition` or `description`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--skills {path}: no such file (the released Skill-Mix list is skills.csv of "
                          "LeoYu/skill-mix; a JSONL of {skill, definition, example} works too).")
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(i + 2, r) for i, r in enumerate(csv.DictReader(f))]
    else:
        rows = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((i, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{path}:{i}: not a JSON object ({e.msg}).") from None
    skills: list[MixSkill] = []
    for line, r in rows:
        name = str(r.get("skill") or r.get("name") or r.get("id") or "").strip()
        definition = str(r.get("definition") or r.get("description") or "").strip()
        example = str(r.get("example") or "").strip()
        for value, fld in ((name, "skill"), (definition, "definition"), (example, "example")):
            if not value:
                raise ConfigError(f"{path}:{line}: field {fld!r} is missing or empty; every Skill-Mix skill needs "
                                  "a name, a definition and an example.")
        skills.append(MixSkill(name, definition, example, str(r.get("category") or "")))
    names = [s.name for s in skills]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: skill {next(n for n in names if names.count(n) > 1)!r} is listed twice.")
    if not skills:
        raise ConfigError(f"{path}: no skills.")
    return skills


def load_topics(path: str | Path) -> list[str]:
    """One topic a line, as the reference's `topics.txt`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--topics {path}: no such file (one topic a line, as topics.txt of LeoYu/skill-mix).")
    topics = [t.strip() for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    if not topics:
        raise ConfigError(f"--topics {path}: no topics.")
    return topics


# ------------------------------------------------------------------ draws and prompts

def sample_tasks(skills: list[str], topics: list[str], k: int, n: int, seed: int) -> list[MixTask]:
    """`n` independent draws of k skills and one topic (the reference's `query_random.py`)."""
    if not 1 <= k <= len(skills):
        raise ConfigError(f"--k {k}: must be between 1 and the {len(skills)} skills of the inventory.")
    r = random.Random(f"skillmix/{seed}/{k}")
    tasks = []
    for i in range(n):
        pool = list(skills)
        r.shuffle(pool)
        chosen = pool[:k]
        topic = r.choice(topics)
        r.shuffle(chosen)
        tasks.append(MixTask(f"skillmix-k{k}-s{seed}-{i:04d}", k, tuple(chosen), topic))
    return tasks


def max_sentences(k: int) -> int:
    """The sentence limit: k - 1 (two sentences for three skills), at least one."""
    return max(1, k - 1)


_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def sentences_str(k: int) -> str:
    n = max_sentences(k)
    return f"{_WORDS[n] if n < len(_WORDS) else n} sentence{'s' if n > 1 else ''}"


def _defs(task: MixTask, by_name: dict[str, MixSkill]) -> str:
    return "\n".join(f"**{s}**: {by_name[s].definition} For example, {by_name[s].example}" for s in task.skills)


def generation_turns(task: MixTask, by_name: dict[str, MixSkill]) -> tuple[str, str]:
    """The two user turns of the reference's default generation prompt: write, then improve within the limit."""
    first = ("Greetings! I am interested in natural language processing and I was wondering if you could help me "
             "generate an example of text that illustrates multiple skills in semantics or syntax. The example "
             f"should be a minimal natural piece of text with up to a few lines in the context of {task.topic} that "
             f"illustrates all of the following skills: {', '.join(task.skills)}. Please keep the text as short as "
             "possible, and make sure the concepts can be found fully from the text. \n\nFor reference, here are "
             f"the definitions and examples for the concepts:\n{_defs(task, by_name)}\n\nPlease start the minimal "
             "natural piece of text with 'Answer:' and start the explanation with 'Explanation:'.\n\nThanks very much!")
    second = ("Thanks very much. Could you please look over your answer and improve it? Please make sure that the new "
              "answer better illustrates all skills and remains on topic. On top of that, please also make sure the "
              f"new answer only contains up to {sentences_str(task.k)}. \nAgain, please start the improved minimal "
              "natural piece of text with 'Answer:' and start the explanation with 'Explanation:'.\n\nThanks very much!")
    return first, second


def answer_text(reply: str) -> str:
    """The text to grade: after the last 'Answer:', before 'Explanation' (the whole reply if neither is there)."""
    return reply.split("Answer:")[-1].split("Explanation")[0].strip()


def rubric(task: MixTask) -> list[str]:
    """The k + 3 criteria, in order: the skills, then topic, sense, length."""
    return ([f"Correctly illustrates {s.lower()}" for s in task.skills]
            + [f"Pertains to {task.topic}", "Text makes sense", f"At most {sentences_str(task.k)}"])


def grading_prompt(task: MixTask, text: str, by_name: dict[str, MixSkill], fmt: str = "table") -> str:
    """The reference's GPT-4 grading prompt: the question, the student's text, the definitions, the rubric table.
    `fmt="json"` asks for the points as a JSON list instead, which a server can enforce (`points_schema`)."""
    if fmt == "json":
        crit = "; ".join(f"({i}) {c}" for i, c in enumerate(rubric(task), 1))
        return (grading_prompt(task, text, by_name).split("Using a rubric table format")[0]
                + f"Please grade the student's answer with positive scoring. Each criterion is worth 1 point. The "
                  f"criteria are: {crit}. Reply with only a JSON object {{\"points\": [...]}} listing the points "
                  f"earned (0 or 1) for the {len(rubric(task))} criteria, in this order.")
    return ("Greetings! I was wondering if you could help me grade the following answer given by a student.\n\n"
            "I'll first describe the question that was given to the student, and then give you the student's answer, "
            "and the grading rubric.\n\nThe question given to the student was as follows: \"Give a single piece of "
            f"text with up to {sentences_str(task.k)} in the context of {task.topic}. This single piece of text should "
            f"illustrate all of the following skills: {', '.join(task.skills)}.\"\n\nThe student's answer was: "
            f"\"{text}\"\n\nFor reference, here are the definitions for the skills:\n{_defs(task, by_name)}\n\n"
            "Using a rubric table format, please grade the student's answer with positive scoring. Each criterion is "
            f"worth 1 point. The criteria are: {', '.join(rubric(task))}. The table should only have the following "
            "columns: 'Criteria', 'Points Earned'. In the 'Points Earned' column, please provide only numerical values "
            "with no additional formatting. Please introduce the table with 'Here's the grading table:' and please "
            "include a row for 'Total Points Earned' at the end of the table. Finally, please start your grading "
            "explanation with 'Explanation':")


# ------------------------------------------------------------------ grading

_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|vs|etc|e\.g|i\.e|approx|No)\.", re.IGNORECASE)


def count_sentences(text: str) -> int:
    """Sentences in `text`: runs ending in . ! ? (or the end) that contain a letter or digit; common
    abbreviations (Dr., e.g.) and decimals do not end one. The reference's counter is not released."""
    text = _ABBREV.sub(lambda m: m.group(0).replace(".", "<dot>"), text)
    text = re.sub(r"(?<=\d)\.(?=\d)", "<dot>", text)
    parts = re.split(r"[.!?]+[\"'\u201d\u2019)\]]*(?:\s+|$)", text)
    return sum(bool(re.search(r"\w", p)) for p in parts)


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def parse_points(reply: str, task: MixTask) -> list[int]:
    """The judge's k + 3 points from its table, in rubric order; Invalid when a criterion has no 0/1 row.

    A row is `| criterion | points |`. A criterion's row is the one whose label is the criterion, or contains
    it, or, for a skill, contains the skill's name (judges shorten "Correctly illustrates X" to "X")."""
    body = reply.split("Here's the grading table:")[-1].split("Explanation")[0]
    rows: list[tuple[str, str]] = []
    for line in body.splitlines():
        cells = [c.strip(" *`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] and not set(cells[0]) <= set("-: "):
            rows.append((_norm(cells[0]), cells[-1]))
    crit = rubric(task)
    keys = [_norm(c) for c in crit]
    short = [_norm(s.split("(")[0]) for s in task.skills] + [_norm(task.topic), "makes sense", "at most"]
    points: list[int] = []
    for key, alt, label in zip(keys, short, crit):
        row = next((v for name, v in rows if name == key), None)
        if row is None:
            row = next((v for name, v in rows if key in name or (alt and alt in name)), None)
        if row is None:
            raise Invalid(f"the table has no row for the criterion {label!r}")
        m = re.fullmatch(r"\s*([01])(?:\.0+)?\s*(?:/\s*1)?\s*", row)
        if not m:
            raise Invalid(f"the points for {label!r} are {row!r}, not 0 or 1")
        points.append(int(m.group(1)))
    return points


def points_schema(k: int) -> dict[str, Any]:
    """The JSON a judge replies with under `--judge-format json`: exactly k + 3 points of 0 or 1."""
    return {"type": "object", "required": ["points"], "properties": {"points": {
        "type": "array", "items": {"type": "integer", "enum": [0, 1]}, "minItems": k + 3, "maxItems": k + 3}}}


def parse_points_json(reply: str, task: MixTask) -> list[int]:
    """The k + 3 points of a `--judge-format json` reply; Invalid unless it is exactly that."""
    got = json_in(reply)
    points = got.get("points") if isinstance(got, dict) else None
    if not isinstance(points, list) or len(points) != task.k + 3 or any(p not in (0, 1) for p in points):
        raise Invalid(f"expected {{\"points\": [...]}} with {task.k + 3} values of 0 or 1, got {json.dumps(got)[:120]}")
    return [int(p) for p in points]


def vote(runs: list[list[int] | None]) -> list[int] | None:
    """Each point by majority over the grading runs that parsed (a tie is not a majority: 0); None if none did."""
    ok = [r for r in runs if r is not None]
    if not ok:
        return None
    return [int(2 * sum(col) > len(ok)) for col in zip(*ok)]


def finalize(points: list[int], task: MixTask, text: str, filter_names: bool) -> list[int]:
    """The sentence point from the count, and (optionally) a skill's point zeroed when its name is in the text."""
    points = list(points)
    points[-1] = int(count_sentences(text) <= max_sentences(task.k))
    if filter_names:
        low = text.lower()
        for i, s in enumerate(task.skills):
            if s.split("(")[0].strip().lower() in low:
                points[i] = 0
    return points


def metrics(points: list[int], k: int) -> dict[str, float]:
    """The paper's three aggregates for one graded text (`aggregate_metrics.py`)."""
    skills, rest = sum(points[:k]), sum(points[k:])
    return {"full_marks": float(skills + rest == k + 3),
            "all_skills": float(skills == k and rest >= 2),
            "skill_fraction": skills / k if rest == 3 else 0.0}


def best_of(rounds: list[MixGrade]) -> MixGrade:
    """Best of the generation rounds, metric by metric (the reference's `max`), so the three need not come from
    one round; the points and text kept are the best round's. A judge error only if every round is one."""
    ok = [g for g in rounds if g.status == "ok"]
    if not ok:
        return rounds[0]
    best = {m: max(g.metrics[m] for g in ok) for m in ok[0].metrics}
    # the text and points shown (and counted per skill) are one real round's: the best by the same measures
    top = max(ok, key=lambda g: (g.metrics["full_marks"], g.metrics["skill_fraction"], g.metrics["all_skills"],
                                 sum(g.points or ())))
    return MixGrade(best["skill_fraction"], top.answer, top.explanation, "ok", top.points, best,
                    sum(g.runs_parsed for g in ok))


# ------------------------------------------------------------------ aggregates

METRICS = ("full_marks", "all_skills", "skill_fraction")


def _interval(xs: list[float]) -> list[float | None]:
    """Mean and 95% interval: Wilson for a 0/1 metric, the t interval for Skill Fraction (None: no texts)."""
    if not xs:
        return [None, None, None]
    m = statistics.fmean(xs)
    if all(x in (0.0, 1.0) for x in xs):
        lo, hi = wilson(int(sum(xs)), len(xs))
        return [m, lo, hi]
    if len(xs) < 2:
        return [m, None, None]
    from scipy import stats

    h = stats.t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return [m, max(0.0, m - h), min(1.0, m + h)]


def aggregate(tasks: list[MixTask], grades: list[MixGrade]) -> dict[str, Any]:
    """By k: the three metrics with intervals over the texts graded, and how many could not be; by skill:
    how often its point was earned (best round) among the graded texts that needed it."""
    by_k: dict[int, list[tuple[MixTask, MixGrade]]] = {}
    for t, g in zip(tasks, grades):
        by_k.setdefault(t.k, []).append((t, g))
    rows = []
    for k, pairs in sorted(by_k.items()):
        ok = [g for _, g in pairs if g.status == "ok"]
        rows.append({"k": k, "n": len(pairs), "graded": len(ok), "judge_errors": len(pairs) - len(ok)}
                    | {m: _interval([g.metrics[m] for g in ok]) for m in METRICS})
    per_skill: dict[str, list[int]] = {}
    for t, g in zip(tasks, grades):
        if g.status == "ok" and g.points:
            for i, s in enumerate(t.skills):
                per_skill.setdefault(s, []).append(g.points[i])

    skills = [{"skill": s, "n": len(v), "earned": sum(v), "rate": sum(v) / len(v), "ci": list(wilson(sum(v), len(v)))}
              for s, v in sorted(per_skill.items())]
    return {"by_k": rows, "skills": skills}
