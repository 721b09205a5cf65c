"""Diagnose wrong answers: the teacher names the skills the student failed to apply. Their counts are
the Missing-Skill-Profile of STAT (He, Panigrahi, Lin, Arora, "Skill-Targeted Adaptive Training",
arXiv 2510.10023):

    MSP(s) = #{wrong answers q : s in missing(q)}

For each wrong (graded, incorrect) record the teacher sees the inventory, the question, the reference
answer and the student's output, and answers `{"skills": [1-3 ids], "reason": "..."}`, validated
against the inventory. A diagnosis that stays invalid after the retries is counted and shown, and
adds nothing to the profile. Items with skill traces can instead use the programmatic rule in
`skillgap.profile.attribute`; this is the route for data without them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from skillgap.label import choose_skills, item_text, skill_menu, skills_schema
from skillgap.profile import Record
from skillgap.skills import SkillSet
from skillgap.teacher import Teacher

PROMPT = """You are a teacher. A student answered this problem wrongly; find which skills the student failed to apply.

Skills:
{menu}

Problem:
{problem}

Correct answer: {answer}

Student's answer:
{output}

Name 1 to {hi} skills from the list that the student is missing, the most important first, and say why in one sentence.
Reply with JSON only, in this form: {{"skills": ["<skill id>", ...], "reason": "<one sentence>"}}"""


@dataclass(frozen=True)
class Diagnosis:
    item_id: str
    skills: tuple[str, ...]  # the missing skills; empty when the teacher's answer stayed invalid
    reason: str
    status: str  # "ok" | "invalid"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"skills": list(self.skills)}


def wrong(records: list[Record]) -> list[Record]:
    """Graded and incorrect: ungradable outputs are a format problem, not a missing skill."""
    return [r for r in records if r.grade.score is not None and not r.grade.correct]


def diagnose(records: list[Record], inventory: SkillSet, teacher: Teacher, hi: int = 3,
             progress: Any = None) -> list[Diagnosis]:
    menu = skill_menu(inventory)
    todo = wrong(records)
    chats = [[{"role": "user", "content": PROMPT.format(menu=menu, problem=item_text(r.item), answer=r.item.answer,
                                                        output=r.output.strip()[:2000], hi=hi)}] for r in todo]
    pick = choose_skills(inventory, 1, hi)

    def parse(text: str) -> tuple[tuple[str, ...], str]:
        from skillgap.teacher import json_in

        d = json_in(text)
        return pick(text), str(d.get("reason") or "") if isinstance(d, dict) else ""

    schema = skills_schema(inventory, 1, hi, {"reason": {"type": "string"}})
    replies = teacher.ask(chats, parse, schema=schema, progress=progress)
    return [Diagnosis(r.item.id, rep.value[0], rep.value[1], "ok") if rep.status == "ok"
            else Diagnosis(r.item.id, (), f"invalid: {rep.error}", "invalid") for r, rep in zip(todo, replies)]


def missing_skill_profile(diagnoses: list[Diagnosis]) -> dict[str, int]:
    """MSP(s): how many wrong answers name s as missing, most frequent first."""
    return dict(Counter(s for d in diagnoses for s in d.skills).most_common())
