"""`stat-syn`: STAT-Syn, from He, Panigrahi, Lin and Arora, "Skill-Targeted Adaptive Training"
(STAT, arXiv 2510.10023).

New training examples aimed at the missing skills; each skill's share of the budget follows its
Missing-Skill-Profile count (`quotas`).

**From the paper** (its README; the pipeline code is not released):

- the teacher is shown reference questions labelled with a missing skill (the paper: 3 MATH-train
  questions) and asked to write a new question that needs that skill (the paper: 2 per difficult
  question and missing skill, then subsampled to its 9.5k budget);
- it then solves each new question several times (the paper: 3 solutions);
- the self-consistency filter scores a question by how many solutions reach the same final
  answer, keeps it if that score is at least 2, and keeps **every** agreeing solution: each one is a
  training example (same question, a different worked solution). A wrong answer the teacher
  reaches consistently survives; the filter only removes disagreement.

**Ours** (the paper does not say, or we differ):

- the solutions are independent samples: temperature > 0 (default 0.7; the paper gives none) and a
  distinct seed per sample j, derived from (run seed, skill, round, j), one `Teacher.complete` call per
  j. Identical
  requests with one seed get one identical reply from OpenAI-compatible servers (and one cache
  entry), which made the filter vacuous;
- the solve prompt asks for a last line "The answer is <number>" and the answer is read with
  `skillgap.answers.extract_number`, so this path needs numeric answers; a solution with no number
  never votes. The training example's prompt is the question alone (as the student will see it);
- a question whose top answers tie is dropped (its samples single out no answer);
- the budget counts examples: a skill's quota may be filled by fewer questions with several agreeing
  solutions each, and is never exceeded (the last question's solutions are cut at the quota). Instead
  of over-generating and subsampling, questions are asked in rounds until the quota is filled or
  `max_rounds` is spent; round 1 asks quota / `min_agree` questions, later rounds scale by the
  examples per question seen so far;
- the teacher is a `skillgap.teacher.Teacher`, so every reply is cached on disk: a re-run makes no
  model calls and a dead endpoint loses only the chunk in flight. A plain backend (an object with
  `generate`) is wrapped in a Teacher whose cache lives in memory;
- a suite with a generator (`suite.synthesize`) replaces the teacher: fresh items with exact answers
  and worked solutions, no teacher and no filter.

The mixture's notes account for every question asked (asked = kept + dropped + unparsable) and
every example, with the sampling settings and the teacher's identity.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from skillgap.answers import extract_number, format_number
from skillgap.errors import ConfigError
from skillgap.items import Item, Message
from skillgap.label import item_text
from skillgap.models import ModelConfig
from skillgap.target import Mixture, Request, quotas, require_missing
from skillgap.teacher import Cache, Teacher, repeats, seed_for

PAPER = 'He et al., "Skill-Targeted Adaptive Training" (STAT), arXiv 2510.10023'

QUESTION_PROMPT = """Here are math problems that need the skill "{name}" ({description}):

{examples}

Write one new problem that needs the same skill, with different numbers and a whole-number answer.
Reply with the problem only."""

QUESTION_PROMPT_NO_EXAMPLES = """Write one new math problem that needs the skill "{name}" ({description}), \
with a whole-number answer.
Reply with the problem only."""

SOLVE_PROMPT = """{question}

Solve step by step. On the last line, write "The answer is" followed by the final number."""

N_REFERENCES = 3  # reference questions shown per new question (the paper: 3)
_LABELS = ("new problem:", "problem:", "question:", "new question:")
_ENDS = ("solution", "answer:", "final answer", "step 1")


def majority(solutions: Sequence[str], min_agree: int = 2) -> tuple[str, list[int]] | None:
    """The majority answer and the indices of the solutions that reach it; None when the question fails.

    Each solution's answer is `extract_number`'s; a solution with no number never votes. The question
    fails when no solution has a number, when the top answers tie, or when fewer than `min_agree`
    solutions reach the top answer.
    """
    answers = [extract_number(s) for s in solutions]
    votes = Counter(a for a in answers if a is not None).most_common()
    if not votes or (len(votes) > 1 and votes[0][1] == votes[1][1]) or votes[0][1] < min_agree:
        return None
    best = votes[0][0]
    return format_number(best), [i for i, a in enumerate(answers) if a == best]


def consistency_filter(solutions: Sequence[str], min_agree: int = 2) -> tuple[str, list[str]] | None:
    """The majority answer and the solutions that reach it (see `majority`); None when the question fails."""
    got = majority(solutions, min_agree)
    return None if got is None else (got[0], [solutions[i] for i in got[1]])


def parse_question(text: str) -> str | None:
    """The question in a teacher's reply: a leading "Problem:" label and any solution after it removed.

    None when nothing is left (an empty reply, or only a solution).
    """
    lines = text.strip().splitlines()
    first = lines[0].strip().lstrip("*# ") if lines else ""
    if first.casefold().startswith(_LABELS):
        lines[0] = first[first.index(":") + 1:].lstrip("* ")
    kept: list[str] = []
    for line in lines:
        if kept and line.strip().strip("*#").strip().casefold().startswith(_ENDS):
            break
        kept.append(line)
    q = "\n".join(kept).strip().strip("*").strip()
    return q if any(c.isalpha() for c in q) else None


def as_teacher(model: Any) -> Any:
    """A `Teacher` as it is; a plain backend (with `generate`) wrapped in a Teacher with an in-memory cache."""
    if hasattr(model, "complete") and hasattr(model, "identity"):
        return model
    if hasattr(model, "generate"):
        return Teacher(ModelConfig(), Cache(":memory:"), max_new_tokens=384, backend=model)
    raise ConfigError(f"stat-syn: the teacher must be a skillgap.teacher.Teacher or a model backend, "
                      f"got {type(model).__name__}.")


def sample(teacher: Any, chats: Sequence[list[Message]], temperature: float, seed_of: Callable[[int], int],
           max_new_tokens: int | None = None) -> list[str]:
    """One sampled reply per chat. The c-th copy of a chat in `chats` is drawn with seed `seed_of(c)`, so
    repeated chats are independent samples (one `complete` call per copy index), never one reply reused."""
    copy = repeats(chats)
    out: list[str] = [""] * len(chats)
    for c in range(max(copy, default=-1) + 1):
        idx = [i for i, k in enumerate(copy) if k == c]
        texts = teacher.complete([chats[i] for i in idx], temperature, seed_of(c), max_new_tokens=max_new_tokens)
        for i, t in zip(idx, texts):
            out[i] = t
    return out


def solutions(teacher: Any, questions: Sequence[str], n_solutions: int, temperature: float,
              seed_of: Callable[[int], int], max_new_tokens: int | None = None) -> list[list[str]]:
    """`n_solutions` sampled solutions per question (SOLVE_PROMPT); sample j of every question is drawn
    with seed `seed_of(j)`, so a question's solutions are independent samples."""
    chats = [[{"role": "user", "content": SOLVE_PROMPT.format(question=q)}] for q in questions
             for _ in range(n_solutions)]
    flat = sample(teacher, chats, temperature, seed_of, max_new_tokens)
    return [flat[k * n_solutions:(k + 1) * n_solutions] for k in range(len(questions))]


def stat_syn(req: Request, n_solutions: int = 3, min_agree: int = 2, temperature: float = 0.7,
             question_temperature: float = 0.8, max_rounds: int = 4, max_new_tokens: int | None = None) -> Mixture:
    """STAT-Syn's training set for `req` (see the module docstring).

    `n_solutions` sampled solutions per question at `temperature`; a question is kept when at least
    `min_agree` reach the (strict) majority answer. `max_new_tokens`: per reply; None uses the teacher's.
    """
    missing = require_missing(req, "stat-syn")
    share = quotas(missing, req.budget)
    rng = random.Random(f"stat-syn/{req.seed}")
    if req.suite is not None and hasattr(req.suite, "synthesize"):
        items = [it for skill, n in share.items() for it in req.suite.synthesize(skill, n, seed=req.seed)]
        rng.shuffle(items)
        return Mixture("stat-syn", items, notes={
            "method": f"STAT-Syn ({PAPER}), with the suite's generator in place of a teacher",
            "source": f"suite:{req.suite.name}", "teacher": None,
            "filter": "none (exact answers from the generator)", "quotas": share, "examples_kept": len(items)})
    if req.teacher is None:
        raise ConfigError("stat-syn on data without a generator needs a teacher model (--teacher).")
    if not 1 <= min_agree <= n_solutions:
        raise ConfigError(f"stat-syn: min_agree must be between 1 and n_solutions ({n_solutions}), got {min_agree}.")
    if temperature <= 0 and n_solutions > 1:
        raise ConfigError(f"stat-syn: the {n_solutions} solutions per question must be sampled "
                          f"(temperature > 0, got {temperature}); greedy solutions always agree.")
    teacher = as_teacher(req.teacher)
    calls, hits = teacher.calls, teacher.hits
    totals: Counter[str] = Counter()
    by_skill: dict[str, dict[str, int]] = {}
    items: list[Item] = []
    for skill, n in share.items():
        made, counts = _skill_items(req, teacher, skill, n, rng, n_solutions, min_agree, temperature,
                                    question_temperature, max_rounds, max_new_tokens)
        items += made
        by_skill[skill] = dict(counts)
        totals.update(counts)
    rng.shuffle(items)
    short = {s: n - by_skill[s]["examples_kept"] for s, n in share.items() if by_skill[s]["examples_kept"] < n}
    return Mixture("stat-syn", items, notes={
        "method": f"STAT-Syn ({PAPER})", "source": f"teacher:{teacher.identity}", "teacher": teacher.identity,
        "filter": f"self-consistency: a question is kept when at least {min_agree} of its {n_solutions} sampled "
                  "solutions reach the strict-majority answer; every agreeing solution is an example",
        "sampling": {"n_solutions": n_solutions, "min_agree": min_agree, "temperature": temperature,
                     "question_temperature": question_temperature, "max_rounds": max_rounds,
                     "max_new_tokens": max_new_tokens or teacher.max_new_tokens},
        "quotas": share, **{k: totals[k] for k in _COUNTS}, "short": short, "by_skill": by_skill,
        "teacher_calls": teacher.calls - calls, "cache_hits": teacher.hits - hits})


# questions_asked = questions_kept + questions_dropped + questions_unparsable;
# examples_agreeing (the agreeing solutions of kept questions) = examples_kept + examples_over_quota.
_COUNTS = ("questions_asked", "questions_unparsable", "questions_dropped", "questions_kept", "questions_used",
           "examples_agreeing", "examples_kept", "examples_over_quota")


def _question_chat(req: Request, skill: str, rng: random.Random) -> list[Message]:
    meta = req.skills[skill] if req.skills is not None and skill in req.skills else None
    name, description = (meta.name, meta.description) if meta else (skill, skill)
    labelled = [it for it in req.pool if skill in it.skills]
    shots = rng.sample(labelled, min(N_REFERENCES, len(labelled)))
    if not shots:
        return [{"role": "user", "content": QUESTION_PROMPT_NO_EXAMPLES.format(name=name, description=description)}]
    examples = "\n\n".join(f"Problem: {item_text(it)}" for it in shots)  # the question, never a chat's answer
    return [{"role": "user", "content": QUESTION_PROMPT.format(name=name, description=description,
                                                               examples=examples)}]


def _skill_items(req: Request, teacher: Any, skill: str, n: int, rng: random.Random, n_solutions: int,
                 min_agree: int, temperature: float, question_temperature: float, max_rounds: int,
                 max_new_tokens: int | None) -> tuple[list[Item], Counter[str]]:
    kept: list[Item] = []
    counts: Counter[str] = Counter({k: 0 for k in _COUNTS})
    for round_ in range(max_rounds):
        want = n - len(kept)
        if want <= 0:
            break
        per_question = counts["examples_agreeing"] / counts["questions_asked"] if counts["examples_agreeing"] \
            else (min_agree if round_ == 0 else 1.0)
        ask = min(max(1, math.ceil(want / per_question)), 2 * want)
        chats = [_question_chat(req, skill, rng) for _ in range(ask)]
        replies = sample(teacher, chats, question_temperature,
                         lambda c: seed_for("stat-syn", req.seed, skill, round_, "question", c), max_new_tokens)
        counts["questions_asked"] += ask
        questions = [(i, q) for i, q in enumerate(map(parse_question, replies)) if q is not None]
        counts["questions_unparsable"] += ask - len(questions)
        if not questions:
            continue
        sols = solutions(teacher, [q for _, q in questions], n_solutions, temperature,
                         lambda j: seed_for("stat-syn", req.seed, skill, round_, "solve", j), max_new_tokens)
        for (i, q), mine in zip(questions, sols):
            agreed = majority(mine, min_agree)
            if agreed is None:
                counts["questions_dropped"] += 1
                continue
            answer, good = agreed
            votes = [None if a is None else format_number(a) for a in map(extract_number, mine)]
            counts["questions_kept"] += 1
            counts["examples_agreeing"] += len(good)
            qid = f"syn-{skill}-s{req.seed}-r{round_}-q{i:04d}"
            room = max(0, n - len(kept))
            counts["examples_over_quota"] += max(0, len(good) - room)
            counts["questions_used"] += room > 0
            for j in good[:room]:
                kept.append(Item(id=f"{qid}-a{j}", prompt=q, answer=answer, skills=(skill,), split="train",
                                 completion=mine[j].strip(),
                                 metadata={"source": "stat-syn-teacher", "question": qid, "sample": j,
                                           "agreeing": len(good), "answers": votes}))
    counts["examples_kept"] = len(kept)
    return kept, counts
