"""`stat-syn`: STAT-Syn, from He et al., "Skill-Targeted Adaptive Training" (STAT).

New training items aimed at the missing skills, each skill's share following its profile
count. A suite that can generate items for a given skill (`suite.synthesize`) makes them
exactly, with worked solutions. Otherwise a teacher model writes them, as in the paper: it is
shown pool items labelled with the skill and asked for a new question, then solves it
`n_solutions` times by sampling; the self-consistency filter keeps a question only if at least
`min_agree` solutions reach the same answer, and keeps only those agreeing solutions.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from skillgap.errors import ConfigError
from skillgap.grade import extract_number, format_number
from skillgap.items import Item
from skillgap.target import Mixture, Request, quotas, require_missing

QUESTION_PROMPT = """Here are math problems that need the skill "{name}" ({description}):

{examples}

Write one new problem that needs the same skill, with different numbers and a whole-number answer.
Reply with the problem only."""


def consistency_filter(solutions: Sequence[str], min_agree: int = 2) -> tuple[str, list[str]] | None:
    """The majority answer and the solutions that reach it, if at least `min_agree` agree; else None.

    Solutions with no extractable number never count. Ties between answers go to the answer
    reached first, so the result is deterministic.
    """
    answers = [extract_number(s) for s in solutions]
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return None
    best = max(votes, key=lambda a: (votes[a], -answers.index(a)))
    if votes[best] < min_agree:
        return None
    return format_number(best), [s for s, a in zip(solutions, answers) if a == best]


def stat_syn(req: Request, n_solutions: int = 3, min_agree: int = 2, max_rounds: int = 4) -> Mixture:
    missing = require_missing(req, "stat-syn")
    share = quotas(missing, req.budget)
    rng = random.Random(f"stat-syn/{req.seed}")
    if req.suite is not None and hasattr(req.suite, "synthesize"):
        items = [it for skill, n in share.items() for it in req.suite.synthesize(skill, n, seed=req.seed)]
        rng.shuffle(items)
        return Mixture("stat-syn", items, notes={"source": f"suite:{req.suite.name}", "quotas": share})
    if req.teacher is None:
        raise ConfigError("stat-syn on data without a generator needs a teacher model (--teacher).")
    items, asked = [], 0
    for skill, n in share.items():
        made = _teacher_items(req, skill, n, rng, n_solutions, min_agree, max_rounds)
        asked += made[1]
        items += made[0]
    rng.shuffle(items)
    return Mixture("stat-syn", items, notes={"source": f"teacher:{req.teacher.identity}", "quotas": share,
                                             "questions_asked": asked, "kept": len(items)})


def _teacher_items(req: Request, skill: str, n: int, rng: random.Random, n_solutions: int, min_agree: int,
                   max_rounds: int) -> tuple[list[Item], int]:
    labelled = [it for it in req.pool if skill in it.skills]
    meta = req.skills[skill] if req.skills is not None and skill in req.skills else None
    name, description = (meta.name, meta.description) if meta else (skill, skill)
    kept: list[Item] = []
    asked = 0
    for round_ in range(max_rounds):
        want = n - len(kept)
        if want <= 0:
            break
        chats = []
        for _ in range(want):
            shots = rng.sample(labelled, min(3, len(labelled)))
            examples = "\n\n".join(f"Problem: {it.chat()[-1]['content']}" for it in shots) or "(none)"
            chats.append([{"role": "user", "content": QUESTION_PROMPT.format(
                name=name, description=description, examples=examples)}])
        asked += len(chats)
        seed = rng.randrange(2**31)
        questions = [g.text.strip() for g in req.teacher.generate(chats, 256, temperature=0.8, seed=seed)]
        questions = [q for q in questions if q]
        solve = [[{"role": "user", "content": q}] for q in questions for _ in range(n_solutions)]
        sols = [g.text for g in req.teacher.generate(solve, 384, temperature=0.7, seed=seed + 1)]
        for i, q in enumerate(questions):
            agreed = consistency_filter(sols[i * n_solutions:(i + 1) * n_solutions], min_agree)
            if agreed is None:
                continue
            answer, good = agreed
            kept.append(Item(id=f"syn-{skill}-s{req.seed}-r{round_}-{i:04d}", prompt=q, answer=answer,
                             skills=(skill,), split="train", completion=good[0],
                             metadata={"source": "stat-syn-teacher", "agreeing": len(good)}))
    return kept[:n], asked
