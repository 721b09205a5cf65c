"""The LLM judge (`--grader judge`): a teacher model decides whether a free-form answer matches the reference.

It sits beside the teacher, not in `skillgap.grade`, because it needs a model; the rule-based graders do not.
"""

from __future__ import annotations

from dataclasses import dataclass

from skillgap.grade import Grade
from skillgap.teacher import Invalid, Teacher, json_in


JUDGE_PROMPT = """You are grading a student's answer against a reference answer.

Question:
{question}

Reference answer:
{reference}

Student's answer:
{output}

Is the student's final answer correct, that is equivalent in meaning to the reference? Ignore style and length.
Reply with JSON only: {{"correct": true or false, "reason": "one sentence"}}"""

JUDGE_SCHEMA = {"type": "object", "properties": {"correct": {"type": "boolean"}, "reason": {"type": "string"}},
                "required": ["correct", "reason"]}


def parse_verdict(text: str) -> tuple[bool, str]:
    """The judge's (correct, reason), or `Invalid` so that the teacher asks again."""
    d = json_in(text)
    if not isinstance(d, dict) or not isinstance(d.get("correct"), bool):
        raise Invalid('expected {"correct": true or false, "reason": "..."}')
    return d["correct"], str(d.get("reason") or "")


@dataclass
class JudgeGrader:
    """An LLM judge for free-form answers (the `judge` grader), through a cached, validated teacher.

    It needs the question, so it grades batches (`grade_batch(items, outputs)`); a verdict that stays
    malformed after the teacher's retries is `status="judge_error"` with no score, never a 0.
    """

    teacher: Teacher

    def grade_batch(self, questions: list[str], outputs: list[str], references: list[str]) -> list[Grade]:
        chats = [[{"role": "user", "content": JUDGE_PROMPT.format(question=q, reference=r, output=o.strip()[:4000])}]
                 for q, o, r in zip(questions, outputs, references)]
        replies = self.teacher.ask(chats, parse_verdict, schema=JUDGE_SCHEMA, max_new_tokens=160)
        return [Grade(1.0 if rep.value[0] else 0.0, None, f"judge: {rep.value[1]}", rule="judge") if rep.status == "ok"
                else Grade(None, None, f"judge reply invalid: {rep.error}", "judge_error", "judge") for rep in replies]

    def __call__(self, output: str, reference: str) -> Grade:
        return self.grade_batch([""], [output], [reference])[0]
