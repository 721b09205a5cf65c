"""Grading: compare the answer in a model's output (found by `skillgap.answers`) with the reference.

A grader returns a `Grade`, never a bare float. An output with no parsable answer gets
`status="parse_error"` and `score=None`: the profile counts it as wrong for accuracy and shows it as a
format failure beside it, and never blames it on a missing skill.

Graders are plain callables `(output, reference) -> Grade`. Built-in: `auto` (the default for data files: each
item by its reference's kind), `numeric` (the default for arithmetic), `exact`, `math`, and `regex:<pattern>`; any
`module:function` path plugs in another. `judge` (an LLM judge, `skillgap.judge.JudgeGrader`) is built by the profile
recipe from a teacher model. `Grade.rule` names the rule that graded an item, so a profile can say how its items were
graded.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from fractions import Fraction

from skillgap.answers import (  # extract_number, numbers_in, parse_number, format_number: re-exported (grade's API)
    clock_time, extract_clock, extract_number, extract_truth, final_answer, format_number, last_boxed, normalize_math,
    normalize_text, numbers_in, parse_number, reference_number, truth_value)
from skillgap.errors import ConfigError, unknown_name


@dataclass(frozen=True)
class Grade:
    score: float | None  # 1.0 right, 0.0 wrong, None when the output could not be graded
    answer: str | None  # the extracted, normalised answer
    explanation: str
    status: str = "ok"  # "ok" | "parse_error" | "judge_error"
    rule: str = ""  # what compared: numeric | time | boolean | math | exact | regex | judge ("" for plug-ins)

    @property
    def correct(self) -> bool:
        return self.score is not None and self.score >= 1.0


Grader = Callable[[str, str], Grade]


def _numeric_grade(output: str, ref: Fraction) -> Grade:
    got = extract_number(output)
    if got is None:
        return Grade(None, None, "no number in the output", "parse_error", "numeric")
    ok = got == ref
    return Grade(1.0 if ok else 0.0, format_number(got),
                 f"{format_number(got)} {'==' if ok else '!='} {format_number(ref)}", rule="numeric")


def _numeric_reference(reference: str) -> Fraction | None:
    """The number `numeric` compares with: the reference as one number, else its final number ('x = 5', '#### 5');
    never a clock time, whose minutes are not its value."""
    ref = parse_number(reference)
    if ref is None and clock_time(reference) is None:
        ref = extract_number(reference)
    return ref


def numeric(output: str, reference: str) -> Grade:
    """Numeric equality of the extracted answer (see `extract_number`) with the reference number."""
    ref = _numeric_reference(reference)
    if ref is None:
        raise ConfigError(f"Reference answer {reference!r} {reference_problem('numeric', reference)}.")
    return _numeric_grade(output, ref)


def exact(output: str, reference: str) -> Grade:
    """Case- and whitespace-insensitive string equality (of the \\boxed or #### part if present)."""
    got = last_boxed(output) or (output.rsplit("####", 1)[1] if "####" in output else output)
    if not got.strip():
        return Grade(None, None, "empty output", "parse_error", "exact")
    ok = normalize_text(got) == normalize_text(reference)
    return Grade(1.0 if ok else 0.0, normalize_text(got), "exact match" if ok else "no exact match", rule="exact")


def _math_equal(got: str, reference: str, fold: bool = False) -> tuple[bool, str, str]:
    """MATH-style equivalence of two answers (`normalize_math`, or equal as numbers), case-folded with `fold`."""
    a, b = normalize_math(got), normalize_math(reference)
    if fold:
        a, b = a.casefold(), b.casefold()
    x, y = parse_number(a), parse_number(b)
    return a == b or (x is not None and x == y), a, b


def math(output: str, reference: str) -> Grade:
    """MATH-style equivalence: the reply's final answer (`final_answer`: the last \\boxed{} / \\fbox{}, else the last
    'answer is' segment, else what its last sentence asserts), compared after `normalize_math`, or as numbers when
    both sides are one number or fraction ('0.75' == '\\frac34')."""
    got = final_answer(output)
    if got is None:
        return Grade(None, None, "no \\boxed{}, 'answer is' or 'x = ...' in the output", "parse_error", "math")
    ok, a, b = _math_equal(got, reference)
    return Grade(1.0 if ok else 0.0, a, f"{a} {'==' if ok else '!='} {b}", rule="math")


# --- Answers of any kind: the `auto` grader -----------------------------------------------------------------
_OPTION = re.compile(r"^\(([A-Za-z])\)$")  # a multiple-choice letter in brackets: '(b)' is the option 'b'


def _judged(ok: bool, got: str, ref: str, rule: str) -> Grade:
    return Grade(1.0 if ok else 0.0, got, f"{rule}: {got} {'==' if ok else '!='} {ref}", rule=rule)


def auto(output: str, reference: str) -> Grade:
    """Each item by its reference: a number by numeric equality (units dropped), a clock time as a time, True/False or
    yes/no as a truth value (yes == True), anything else as the reply's `final_answer` after MATH's normalisation and
    case folding ('(b)' is 'b'); the whole reply, exactly, only when it states no final answer. `rule` says which."""
    if (number := reference_number(reference)) is not None:
        return _numeric_grade(output, number)
    if (when := clock_time(reference)) is not None:
        got = extract_clock(output)
        if got is None:
            return Grade(None, None, "no clock time in the output", "parse_error", "time")
        return _judged(got.same(when), got.text, when.text, "time")
    if (truth := truth_value(reference)) is not None:
        said = extract_truth(output)
        if said is None:
            return Grade(None, None, "no yes/no or true/false in the output", "parse_error", "boolean")
        return _judged(said == truth, str(said), str(truth), "boolean")
    got = final_answer(output)
    if got is None:  # no final answer stated: the whole reply must be the answer
        if not output.strip():
            return Grade(None, None, "empty output", "parse_error", "exact")
        said, ref = normalize_text(output), normalize_text(reference)
        return _judged(said == ref, said, ref, "exact")
    ok, a, b = _math_equal(_OPTION.sub(r"\1", got.strip()), _OPTION.sub(r"\1", reference.strip()), fold=True)
    return _judged(ok or normalize_text(output) == normalize_text(reference), a, b, "math")


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
        ok = normalize_text(got) == normalize_text(reference)
        return Grade(1.0 if ok else 0.0, normalize_text(got), f"regex extracted {got!r}", rule="regex")


GRADERS: dict[str, Grader] = {"auto": auto, "numeric": numeric, "exact": exact, "math": math}


def reference_problem(spec: str, reference: str) -> str | None:
    """Why the grader `spec` cannot grade against `reference` ('is not a number, ...'; None: it can). Checked for every
    item before a model loads; a judge or a plug-in reads any reference."""
    if spec not in GRADERS and not spec.startswith("regex:"):
        return None
    if not reference.strip():
        return "is empty, so no reply can match it"
    if spec == "numeric" and _numeric_reference(reference) is None:
        return ("is not a number, which --grader numeric needs; --grader auto grades each item by its reference "
                "(numbers, True/False, yes/no, clock times, text)")
    return None


def get_grader(spec: str) -> Grader:
    """'auto', 'numeric', 'exact', 'math', 'regex:<pattern>', or 'package.module:function'."""
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


# The LLM judge lives in `skillgap.judge`, beside the teacher it needs. These old names still reach it, loaded only
# on use and by name, so that grading never imports the model layer.
_JUDGE = ("JudgeGrader", "parse_verdict", "JUDGE_PROMPT", "JUDGE_SCHEMA")


def __getattr__(name: str) -> Any:
    if name in _JUDGE:
        return getattr(importlib.import_module("skillgap.judge"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
