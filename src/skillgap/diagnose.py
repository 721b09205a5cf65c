"""Diagnose wrong answers: the teacher names the skills the student failed to apply. Their counts are
the Missing-Skill-Profile of STAT (He, Panigrahi, Lin, Arora, "Skill-Targeted Adaptive Training",
arXiv 2510.10023):

    MSP(s) = #{wrong answers q : s in missing(q)}

For each wrong (graded, incorrect) record the teacher sees the inventory, the question and the
student's solution, as in STAT and AdaptMI (the teacher judges the reasoning, it is not handed the
answer key; `with_reference=True` adds the gold answer), and answers `{"skills": [1-3 ids],
"reason": "..."}`, validated against the inventory. A diagnosis that stays invalid after the
retries is counted and shown, and adds nothing to the profile. An output with no gradable answer
is a *format failure*: recorded as such, never blamed on a skill. Items with skill traces can
instead use the programmatic rule in `skillgap.profile.first_broken_step`; this is the route for data
without them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from skillgap.items import Record
from skillgap.label import choose_skills, item_text, skill_menu, skills_schema
from skillgap.skills import SkillSet
from skillgap.teacher import Teacher, json_in

PROMPT = """You are a teacher. A student answered this problem wrongly; find which skills the student failed to apply.

Skills:
{menu}

Problem:
{problem}
{reference}
Student's answer:
{output}

Name 1 to {hi} skills from the list that the student is missing, the most important first, and say why in one sentence.
Reply with JSON only, in this form: {{"skills": ["<skill id>", ...], "reason": "<one sentence>"}}"""


@dataclass(frozen=True)
class Diagnosis:
    item_id: str
    skills: tuple[str, ...]  # the missing skills; empty when the teacher's answer stayed invalid
    reason: str
    status: str  # "ok" | "invalid" | "format_failure" (no gradable answer: not a missing skill)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"skills": list(self.skills)}


def wrong(records: list[Record]) -> list[Record]:
    """Graded and incorrect: ungradable outputs are a format problem, not a missing skill."""
    return [r for r in records if r.grade.score is not None and not r.grade.correct]


def format_failures(records: list[Record]) -> list[Diagnosis]:
    """The outputs with no gradable answer, each diagnosed as what it is."""
    return [Diagnosis(r.item.id, (), f"format failure: {r.grade.explanation}", "format_failure")
            for r in records if r.grade.score is None]


def diagnosis_chat(r: Record, menu: str, hi: int = 3, with_reference: bool = False) -> list[dict[str, str]]:
    """What the teacher sees of one wrong answer: the question and the student's solution (and the key, if asked)."""
    reference = f"\nCorrect answer: {r.item.answer}\n" if with_reference else ""
    return [{"role": "user", "content": PROMPT.format(menu=menu, problem=item_text(r.item), reference=reference,
                                                      output=r.output.strip()[:2000], hi=hi)}]


def diagnose(records: list[Record], inventory: SkillSet, teacher: Teacher, hi: int = 3,
             progress: Any = None, with_reference: bool = False) -> list[Diagnosis]:
    """One Diagnosis per wrong answer (the teacher's), then one per format failure (no teacher call)."""
    menu = skill_menu(inventory)
    todo = wrong(records)
    chats = [diagnosis_chat(r, menu, hi, with_reference) for r in todo]
    pick = choose_skills(inventory, 1, hi)

    def parse(text: str) -> tuple[tuple[str, ...], str]:
        d = json_in(text)
        return pick(text), str(d.get("reason") or "") if isinstance(d, dict) else ""

    schema = skills_schema(inventory, 1, hi, {"reason": {"type": "string"}})
    replies = teacher.ask(chats, parse, schema=schema, progress=progress)
    return [Diagnosis(r.item.id, rep.value[0], rep.value[1], "ok") if rep.status == "ok"
            else Diagnosis(r.item.id, (), f"invalid: {rep.error}", "invalid")
            for r, rep in zip(todo, replies)] + format_failures(records)


def missing_skill_profile(diagnoses: list[Diagnosis]) -> dict[str, int]:
    """MSP(s): how many wrong answers name s as missing, most frequent first."""
    return dict(Counter(s for d in diagnoses for s in d.skills).most_common())
