"""Grading: extract an answer from a model's output and compare it with the reference.

A grader returns a `Grade`, never a bare float. An output with no parsable answer gets
`status="parse_error"` and `score=None`: it is counted and shown, and left out of accuracy, so a
formatting failure is never mistaken for a missing skill.

Graders are plain callables `(output, reference) -> Grade`. Built-in: `numeric` (the default for
arithmetic), `exact`, `math`, and `regex:<pattern>`; any `module:function` path plugs in another.
`judge` (an LLM judge, `JudgeGrader`) is built by the profile recipe from a teacher model.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from fractions import Fraction

from skillgap.errors import ConfigError, unknown_name


@dataclass(frozen=True)
class Grade:
    score: float | None  # 1.0 right, 0.0 wrong, None when the output could not be graded
    answer: str | None  # the extracted, normalised answer
    explanation: str
    status: str = "ok"  # "ok" | "parse_error" | "judge_error"

    @property
    def correct(self) -> bool:
        return self.score is not None and self.score >= 1.0


Grader = Callable[[str, str], Grade]

# A number: optional sign (not a binary minus: "5-3" is not "-3"), thousands separators, decimals,
# or a simple fraction a/b.
_NUM = re.compile(r"(?<![\w.)])(?:-\s?)?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?(?![\d,]*\d)")
_FRAC_TEX = re.compile(r"\\[dt]?frac\{\s*(-?\d+)\s*\}\{\s*(-?\d+)\s*\}")
_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is|:|=)\s*([^\n]*)", re.IGNORECASE)


def parse_number(text: str) -> Fraction | None:
    """The value of a single number token: '1,234' -> 1234, '-3/4', '2.50' -> 5/2, '$7' -> 7."""
    t = text.replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    try:
        if "/" in t:
            a, b = t.split("/")
            return Fraction(int(a), int(b)) if int(b) else None
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


def numbers_in(text: str) -> list[Fraction]:
    """Every number in a text, in order (LaTeX fractions included)."""
    text = _FRAC_TEX.sub(lambda m: f" {m.group(1)}/{m.group(2)} ", text)
    return [v for v in (parse_number(m.group(0)) for m in _NUM.finditer(text)) if v is not None]


def _boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, with nested braces."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def extract_number(output: str) -> Fraction | None:
    """The model's final numeric answer.

    Looks, in order, at: the last \\boxed{}, the text after '####' (GSM8K), the text after
    'answer is' / 'Answer:', and finally the last number anywhere in the output.
    """
    # (text, take the first number?) — after a marker the answer comes first; elsewhere, last.
    candidates: list[tuple[str | None, bool]] = [(_boxed(output), False)]
    if "####" in output:
        candidates.append((output.rsplit("####", 1)[1], True))
    m = list(_ANSWER_IS.finditer(output))
    if m:
        candidates.append((m[-1].group(1), True))
    candidates.append((output, False))
    for text, first in candidates:
        nums = numbers_in(text) if text else []
        if nums:
            return nums[0] if first else nums[-1]
    return None


def format_number(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def numeric(output: str, reference: str) -> Grade:
    """Numeric equality after normalisation (separators, fractions, decimals, \\boxed, ####)."""
    ref = parse_number(reference.strip()) or extract_number(reference)
    if ref is None:
        raise ConfigError(f"Reference answer {reference!r} is not a number; use the 'exact' grader.")
    got = extract_number(output)
    if got is None:
        return Grade(None, None, "no number in the output", "parse_error")
    ok = got == ref
    return Grade(1.0 if ok else 0.0, format_number(got),
                 f"{format_number(got)} {'==' if ok else '!='} {format_number(ref)}")


def _norm_text(s: str) -> str:
    return " ".join(s.strip().strip(".").casefold().split())


def exact(output: str, reference: str) -> Grade:
    """Case- and whitespace-insensitive string equality (of the \\boxed or #### part if present)."""
    got = _boxed(output) or (output.rsplit("####", 1)[1] if "####" in output else output)
    if not got.strip():
        return Grade(None, None, "empty output", "parse_error")
    ok = _norm_text(got) == _norm_text(reference)
    return Grade(1.0 if ok else 0.0, _norm_text(got), "exact match" if ok else "no exact match")


_MATH_DROP = ("\\left", "\\right", "\\!", "\\,", "\\;", "\\ ", "^\\circ", "^{\\circ}", "\\%", "%", "\\$", "$", " ")


def normalize_math(s: str) -> str:
    """A MATH answer in canonical form (after Hendrycks et al.'s `is_equiv`): no spacing, sizing or unit marks,
    \\dfrac and \\tfrac as \\frac, \\text{...} unwrapped, no trailing period."""
    s = re.sub(r"\\text\{\s*([^}]*)\}", r"\1", s.strip())
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    for mark in _MATH_DROP:
        s = s.replace(mark, "")
    return s.rstrip(".")


def math(output: str, reference: str) -> Grade:
    """MATH-style equivalence: the last \\boxed{} (or what follows 'answer is'), compared after `normalize_math`,
    or as numbers when both sides are one number or fraction."""
    got = _boxed(output)
    if got is None:
        m = list(_ANSWER_IS.finditer(output))
        got = m[-1].group(1).strip().rstrip(".") if m else None
    if not got:
        return Grade(None, None, "no \\boxed{} or 'answer is' in the output", "parse_error")
    a, b = normalize_math(got), normalize_math(reference)
    if a == b:
        return Grade(1.0, a, f"{a} == {b}")
    x, y = numbers_in(a), numbers_in(b)
    single = len(x) == len(y) == 1 and re.fullmatch(r"-?[\d.,]+|-?\\frac\{-?\d+\}\{-?\d+\}|-?\d+/\d+", a) \
        and re.fullmatch(r"-?[\d.,]+|-?\\frac\{-?\d+\}\{-?\d+\}|-?\d+/\d+", b)
    ok = bool(single) and x[0] == y[0]
    return Grade(1.0 if ok else 0.0, a, f"{a} {'==' if ok else '!='} {b}")


@dataclass(frozen=True)
class RegexGrader:
    """Extract with a regex (the first group of the last match) and compare as text."""

    pattern: str

    def __call__(self, output: str, reference: str) -> Grade:
        found = list(re.finditer(self.pattern, output))
        if not found:
            return Grade(None, None, f"no match for /{self.pattern}/", "parse_error")
        m = found[-1]
        got = m.group(1) if m.groups() else m.group(0)
        ok = _norm_text(got) == _norm_text(reference)
        return Grade(1.0 if ok else 0.0, _norm_text(got), f"regex extracted {got!r}")


GRADERS: dict[str, Grader] = {"numeric": numeric, "exact": exact, "math": math}


def get_grader(spec: str) -> Grader:
    """'numeric', 'exact', 'regex:<pattern>', or 'package.module:function'."""
    if spec in GRADERS:
        return GRADERS[spec]
    if spec.startswith("regex:"):
        try:
            re.compile(spec[len("regex:"):])
        except re.error as e:
            raise ConfigError(f"Bad grader regex {spec[6:]!r}: {e}.") from None
        return RegexGrader(spec[len("regex:"):])
    if ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"Cannot load grader {spec!r}: {e}.") from None
    raise unknown_name("grader", spec, [*GRADERS, "regex:<pattern>", "module:function"])


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
    from skillgap.teacher import Invalid, json_in

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

    teacher: Any  # skillgap.teacher.Teacher

    def grade_batch(self, questions: list[str], outputs: list[str], references: list[str]) -> list[Grade]:
        chats = [[{"role": "user", "content": JUDGE_PROMPT.format(question=q, reference=r, output=o.strip()[:4000])}]
                 for q, o, r in zip(questions, outputs, references)]
        replies = self.teacher.ask(chats, parse_verdict, schema=JUDGE_SCHEMA, max_new_tokens=160)
        return [Grade(1.0 if rep.value[0] else 0.0, None, f"judge: {rep.value[1]}") if rep.status == "ok"
                else Grade(None, None, f"judge reply invalid: {rep.error}", "judge_error") for rep in replies]

    def __call__(self, output: str, reference: str) -> Grade:
        return self.grade_batch([""], [output], [reference])[0]
