"""`skillmix`: Instruct-SkillMix, from Kaur, Park, Goyal and Arora, "Instruct-SkillMix: A Powerful Pipeline for
LLM Instruction Tuning" (ICLR 2025, arXiv 2408.14774): training data for skills in combination, written by a
teacher, for data without a generator.

**From the paper** (princeton-pli/Instruct-SkillMix, `src/data_generation/1_generate_data.py`):

- each example draws k random skills (shuffle and take k; the paper's default k = 2) and one query type
  (the list cycled, shuffled each pass);
- the teacher writes a query a person might plausibly ask whose answer needs *all* k skills, of that
  type, and a good-length, concrete answer; then, as the asker, lists the answer's strengths and
  weaknesses ("it looks generic: add concrete examples and details"); then refines both, in a strict
  `### Instruction: / ### Response:` format (the 3-turn version the repository uses for Claude);
- each example keeps its provenance: the skills, the query type, the generator.

**Ours** (the paper does not say, or we differ):

- the skills come from the missing-skill profile when one is given (`--profile`, or the diagnosis of
  `skillgap run`), otherwise from the whole inventory (the suite's, or the pool's labels). The paper
  draws from a skill list that a strong model extracted once;
- the first prompt is shorter than the reference's, which carries three long worked examples: a
  teacher with a 2k context could not take it. It has one short example of the format instead;
- replies are sampled (T = 0.7) with a seed derived from the run's seed and the round; a draw that repeats
  an earlier draw of its round (same skills and query type) gets its own seed (`Teacher.complete`), so it is a
  separate sample, not the same reply dropped as a duplicate. Every call goes through the teacher's cache, so a
  re-run makes no call;
- a refined reply that lost the format falls back to the first draft (`stage: draft`; the reference
  retries the whole conversation instead); with neither it is unparsable. An instruction seen before (case
  and spaces ignored) is a duplicate. Both are dropped and counted. Draws continue in rounds until the budget is met
  or `max_rounds` is spent. The notes account for every draw: asked = kept + unparsable + duplicates.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.target import Mixture, Request
from skillgap.target.stat_syn import as_teacher
from skillgap.teacher import seed_for

PAPER = 'Kaur et al., "Instruct-SkillMix" (ICLR 2025, arXiv 2408.14774)'

# The paper's query types (its GPT-4-Turbo list, names only), each with a one-line definition of ours.
QUERY_TYPES: tuple[tuple[str, str], ...] = (
    ("Information-Seeking", "the person wants facts, explanations or to learn about a topic"),
    ("Help-Seeking", "the person needs help solving a problem or doing something"),
    ("Instructional", "the person wants step-by-step instructions for a task"),
    ("Feedback-Seeking", "the person shares their own work or idea and asks for feedback on it"),
    ("Comparative", "the person asks how two or more options differ and which suits them"),
    ("Planning", "the person wants a plan or schedule for a goal"),
    ("Decision-Making", "the person weighs a choice and wants help deciding"),
    ("Error Detection", "the person gives something that may hold mistakes and asks to find and fix them"),
)

FIRST = """I am creating a dataset of engaging human-AI interactions that show the value of AI models across \
diverse skills. Write one example that uses all of these {k} skills: {skills}.

The example has a task type: {query_type} ({query_def}). Write an instruction that a person might plausibly \
ask of that type whose answer needs every one of the skills, then a good-length answer with your best \
helpfulness: concrete details and examples, not generic, not verbose.

Use exactly this format:
### Instruction: [the instruction]
### Response: [the answer]

For example, for the skills "unit_conversion, budgeting" and the type Help-Seeking:
### Instruction: I'm buying paint for a 4 m by 3 m wall in the US, where cans are sold by the gallon at $38. \
How many cans do I need for two coats, and what will it cost?
### Response: One coat covers about 35 m² per gallon (roughly 375 sq ft). Your wall is 12 m², so two coats \
are 24 m², about 0.7 gallon: one can is enough, for $38. Buy a quart extra only if the wall is rough."""

CRITIQUE = ("Pretend you are the person asking the question, and make a list of weaknesses and strengths of the "
            "response. Currently the response looks a bit generic. Perhaps it could benefit from some concrete "
            "examples and details.")

REFINE = ("Now, please refine your instruction and response (keep the strong parts and work on the weak parts). "
          "Make sure to follow the following format:\n### Instruction: [refined instruction]\n"
          "### Response: [refined response]\nNo need to include verbose or extraneous information.")

_MARK = r"(?:#+\s*)?\**{}\**\s*:"  # "### Instruction:", "Instruction:", "**Instruction**:"
_SECTIONS = re.compile(_MARK.format("Instruction") + r"\s*(?P<instruction>.*?)\s*" + _MARK.format("Response")
                       + r"\s*(?P<response>.*)\Z", re.DOTALL | re.IGNORECASE)


def parse_example(reply: str) -> tuple[str, str] | None:
    """(instruction, response) from the last `### Instruction:` ... `### Response:` pair (the `###` may be left
    out); None if either is empty."""
    starts = [m.start() for m in re.finditer(_MARK.format("Instruction"), reply, re.IGNORECASE)]
    if not starts:
        return None
    m = _SECTIONS.search(reply[starts[-1]:])
    if not m:
        return None
    instruction, response = m["instruction"].strip(), m["response"].strip()
    return (instruction, response) if instruction and response else None


def load_query_types(path: str | Path) -> tuple[tuple[str, str], ...]:
    """Query types from a file: the reference's markdown (`### 1. **Name**` then its description) or one per
    line (`Name: definition`, or a bare name)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--query-types {path}: no such file.")
    text = path.read_text(encoding="utf-8")
    heads = list(re.finditer(r"^#+\s*(?:\d+\.\s*)?\**(?P<name>[^*\n]+?)\**\s*$", text, re.MULTILINE))
    if heads:
        out = []
        for h, nxt in zip(heads, [*heads[1:], None]):
            body = text[h.end(): nxt.start() if nxt else len(text)].strip().split("\n")[0]
            out.append((h["name"].strip(), body.split(". ")[0].strip().rstrip(".:")))
        return tuple(out)
    rows = [line.partition(":") for line in text.splitlines() if line.strip()]
    if not rows:
        raise ConfigError(f"--query-types {path}: no query types.")
    return tuple((name.strip(), definition.strip() or name.strip()) for name, _, definition in rows)


def skill_pool(req: Request) -> list[str]:
    """The missing skills when the profile names any, else the inventory (the suite's, or the pool's labels)."""
    missing = [s for s, c in req.missing.items() if c > 0]
    if missing:
        return sorted(missing)
    if req.skills is not None:
        return list(req.skills.ids)
    return sorted({s for it in req.pool for s in it.skills})


def skillmix(req: Request, temperature: float = 0.7, max_rounds: int = 3, max_new_tokens: int | None = None) -> Mixture:
    """`req.budget` teacher-written examples, each for `req.skillmix_k` skills drawn together and a query type."""
    k, query_types = req.skillmix_k, req.query_types or QUERY_TYPES
    if req.teacher is None:
        raise ConfigError("--strategy skillmix has a teacher write every example: give --teacher MODEL (and "
                          "--teacher-base-url for an endpoint).")

    teacher = as_teacher(req.teacher)
    skills = skill_pool(req)
    if len(skills) < k:
        raise ConfigError(f"--strategy skillmix draws {k} skills at a time, but only {len(skills)} are there "
                          f"({', '.join(skills) or 'none'}); lower --skillmix-k or give a larger inventory.")
    names = {s: (req.skills[s].name if req.skills is not None and s in req.skills else s) for s in skills}
    rng = random.Random(f"skillmix/{req.seed}")
    calls, hits = teacher.calls, teacher.hits
    kept: list[Item] = []
    seen: set[str] = set()
    counts = {"asked": 0, "kept": 0, "kept_refined": 0, "kept_draft": 0, "unparsable": 0, "duplicates": 0}
    types: list[tuple[str, str]] = []
    for round_no in range(max_rounds):
        need = req.budget - len(kept)
        if need <= 0:
            break
        draws = []
        for _ in range(need):
            if not types:
                types = list(query_types)
                rng.shuffle(types)
            pool = list(skills)
            rng.shuffle(pool)
            draws.append((tuple(pool[:k]), types.pop()))
        counts["asked"] += len(draws)
        chats = [[{"role": "user", "content": FIRST.format(k=k, skills=", ".join(names[s] for s in tup),
                                                           query_type=qt, query_def=qd)}] for tup, (qt, qd) in draws]
        seed = seed_for("instruct-skillmix", req.seed, round_no)  # a repeated draw is sampled with its own seed
        for turn in (CRITIQUE, REFINE):
            replies = teacher.complete(chats, temperature, seed, max_new_tokens=max_new_tokens)
            chats = [c + [{"role": "assistant", "content": r}, {"role": "user", "content": turn}]
                     for c, r in zip(chats, replies)]
        finals = teacher.complete(chats, temperature, seed, max_new_tokens=max_new_tokens)
        for (tup, (qt, _)), chat, final in zip(draws, chats, finals):
            got, stage = parse_example(final), "refined"
            if got is None:  # the refinement lost the format: the first draft, if it has it
                got, stage = parse_example(chat[1]["content"]), "draft"
            if got is None:
                counts["unparsable"] += 1
                continue
            instruction, response = got
            key = " ".join(instruction.lower().split())
            if key in seen:
                counts["duplicates"] += 1
                continue
            seen.add(key)
            uid = hashlib.sha256(f"{teacher.identity}|{key}".encode()).hexdigest()[:12]
            kept.append(Item(f"skillmix-{uid}", "", tup, instruction, split="train", completion=response,
                             metadata={"source": "skillmix", "query_type": qt, "generator": teacher.identity,
                                       "round": round_no, "stage": stage}))
            counts["kept"] += 1
            counts[f"kept_{stage}"] += 1
            if len(kept) == req.budget:
                break
    return Mixture("skillmix", kept, notes={
        "method": f"Instruct-SkillMix ({PAPER})", "source": f"teacher:{teacher.identity}",
        "teacher": teacher.identity, "k": k, "skills_drawn_from": skills,
        "query_types": [q for q, _ in query_types], "budget": req.budget, "shortfall": req.budget - len(kept),
        "sampling": {"temperature": temperature, "max_rounds": max_rounds,
                     "max_new_tokens": max_new_tokens or teacher.max_new_tokens},
        "counts": counts, "teacher_calls": teacher.calls - calls, "cache_hits": teacher.hits - hits})
