"""Grading: extract an answer from a model's output and compare it with the reference.

A grader returns a `Grade`, never a bare float. An output with no parsable answer gets
`status="parse_error"` and `score=None`: the profile counts it as wrong for accuracy and shows it as a
format failure beside it, and never blames it on a missing skill.

Graders are plain callables `(output, reference) -> Grade`. Built-in: `auto` (the default for data files: each
item by its reference's kind), `numeric` (the default for arithmetic), `exact`, `math`, and `regex:<pattern>`; any
`module:function` path plugs in another. `judge` (an LLM judge, `JudgeGrader`) is built by the profile recipe from a
teacher model. `Grade.rule` names the rule that graded an item, so a profile can say how its items were graded.
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
    rule: str = ""  # what compared: numeric | time | boolean | math | exact | regex | judge ("" for plug-ins)

    @property
    def correct(self) -> bool:
        return self.score is not None and self.score >= 1.0


Grader = Callable[[str, str], Grade]

# --- Numbers -------------------------------------------------------------------------------------------
# One number as models and datasets write it. A '-' is a sign only when it cannot be a binary minus:
# not right after an operand ("5-3", "x-1", "(2)-1") nor spaced after a number ("12 - 5", "12 -5").
_NUM = re.compile(r"""
    (?P<minus>(?<![\w.)\]}])(?<![0-9)]\s)-)?
    (?:\\?\$\s?)?                                                       # currency: $5, \$5
    (?:
        \\[dt]?frac\s*(?P<fn>\{\s*-?[0-9]+\s*\}|[0-9])\s*(?P<fd>\{\s*-?[0-9]+\s*\}|[0-9])   # \frac{3}{4}, \frac12
      | (?<![\w.])(?P<n>[0-9]+)/(?P<d>[0-9]+)(?![0-9/]|\.[0-9])                          # 3/4 (unspaced)
      | (?<![\w.])(?P<dec>(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)  # 1,234.5  7  .5
    )""", re.VERBOSE)


def _clean(text: str) -> str:
    """Undo typography that hides numbers: the Unicode minus, TeX's '1,\\!000' and '1{,}000', '\\times5'."""
    text = text.replace("\u2212", "-").replace("\\!", "").replace("{,}", ",")
    return re.sub(r"(\\[A-Za-z]+)(?=[0-9])", r"\1 ", text)


def _value(m: re.Match[str]) -> Fraction | None:
    if m["fn"]:
        n, d = int(m["fn"].strip("{} ")), int(m["fd"].strip("{} "))
    elif m["n"]:
        n, d = int(m["n"]), int(m["d"])
    else:
        n, d = Fraction(m["dec"].replace(",", "")), 1
    if d == 0:
        return None
    return -Fraction(n, d) if m["minus"] else Fraction(n, d)


def parse_number(text: str) -> Fraction | None:
    """The value of a text that is one number and nothing else: '1,234', '-3/4', '2.50', '$7', '25%',
    '\\frac12', '$-5$'. Anything more ('12 - 5', '1,2', '7 apples') is None."""
    t = text.strip().rstrip(".").strip().strip("$").strip()
    t = re.sub(r"\s*\\?%$", "", t)
    m = _NUM.fullmatch(_clean(t))
    return _value(m) if m else None


def numbers_in(text: str) -> list[Fraction]:
    """Every number in a text, in order: '12 - 5 = 7' is 12, 5, 7; 'x = -5' is -5; '1,2,3' is 1, 2, 3."""
    return [v for v in map(_value, _NUM.finditer(_clean(text))) if v is not None]


# --- Where the answer is -------------------------------------------------------------------------------
_MARKER = re.compile(r"\bfinal\s+answer\b[\s*]*(?:is\b|:|=)?|\banswer\b[\s*]*(?:is\b|:|=)|####", re.IGNORECASE)
_SEGMENT_END = re.compile(r"\n|\.(?=\s|$)")  # a line break or a full stop, never a decimal point
# Where an answer's own expression ends and commentary begins: "7, since 3 + 4 = 7", "7 because ...".
_CLAUSE_END = re.compile(r",\s|;|\(|\b(?:because|since|so|but|and|as|which|if|when|while|or|not)\b", re.IGNORECASE)


def _group(text: str, i: int) -> tuple[str, int] | None:
    """The {balanced group} starting at text[i] (its content, the index after it), or None."""
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j], j + 1
    return None


_BOX = re.compile(r"\\(?:boxed|fbox)\s*(?=\{)|\\boxed\s+")


def _boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} or \\fbox{...} (nested braces included), or of '\\boxed 2$' (a TeX
    argument without braces, up to the closing '$', as MATH's own `last_boxed_only_string` reads it)."""
    found = list(_BOX.finditer(text))
    if not found:
        return None
    i = found[-1].end()
    if text.startswith("{", i):
        got = _group(text, i)
        return got[0] if got else None
    return re.split(r"[$\n]", text[i:], maxsplit=1)[0].strip()


def _segments(output: str) -> list[str]:
    """What follows each 'answer is' / 'Answer:' / 'final answer' / '####', up to the end of its line or
    sentence; the last one first."""
    return [_SEGMENT_END.split(output[m.end():].lstrip(), maxsplit=1)[0]
            for m in reversed(list(_MARKER.finditer(output)))]


def _marked(output: str) -> list[str]:
    """Where a reply marks its final answer, most telling first: the last \\boxed{}, then each 'answer is' segment."""
    boxed = _boxed(output)
    return ([boxed] if boxed is not None else []) + _segments(output)


def _final_value(segment: str) -> Fraction | None:
    """The value an answer segment states: the result of its expression, i.e. the first number after the
    last '=' of the clause that starts at its first number ('10 - 3 = 7 apples, not 8' -> 7)."""
    s = _clean(segment)
    first = _NUM.search(s)
    if first is None:
        return None
    clause = s[first.start():]
    if end := _CLAUSE_END.search(clause):
        clause = clause[:end.start()]
    nums = numbers_in(clause.rsplit("=", 1)[-1]) or numbers_in(clause)
    return nums[0] if nums else None


def extract_number(output: str) -> Fraction | None:
    """The model's final numeric answer.

    The last \\boxed{} first, then the last 'answer is' / 'Answer:' / 'final answer' / '####' segment that
    states a number (read as the final value of its expression), else the last number anywhere.
    """
    for segment in _marked(output):
        if (v := _final_value(segment)) is not None:
            return v
    nums = numbers_in(output)
    return nums[-1] if nums else None


# What a last sentence asserts comes after its first 'is' or '=': 'x = 3', 'The biggest value is 0.3.'
_ASSERTS = re.compile(r"=|\b(?:is|are|equals|was|were)\b", re.IGNORECASE)


def final_answer(output: str) -> str | None:
    """The final answer a reply states, as text: the last \\boxed{}, else the last 'answer is' segment, else what its
    last sentence asserts ('x = 3' -> '3', 'The biggest value is 0.3.' -> '0.3'). None when it states none."""
    boxed = _boxed(output)
    if boxed is not None:  # an empty box is no answer, whatever else the reply says
        return boxed.strip() or None
    if got := next((s.strip() for s in _segments(output) if s.strip()), None):
        return got
    sentences = [t for t in _SEGMENT_END.split(output) if t.strip()]
    said = _ASSERTS.search(sentences[-1]) if sentences else None
    if said is None:
        return None
    tail = sentences[-1][said.end():].strip()
    if end := _CLAUSE_END.search(tail, 1):  # '8, which is right' -> '8'; a leading '(A)' stays whole
        tail = tail[:end.start()]
    return tail.rsplit("=", 1)[-1].strip() or None


def format_number(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


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


def _norm_text(s: str) -> str:
    return " ".join(s.strip().strip(".").casefold().split())


def exact(output: str, reference: str) -> Grade:
    """Case- and whitespace-insensitive string equality (of the \\boxed or #### part if present)."""
    got = _boxed(output) or (output.rsplit("####", 1)[1] if "####" in output else output)
    if not got.strip():
        return Grade(None, None, "empty output", "parse_error", "exact")
    ok = _norm_text(got) == _norm_text(reference)
    return Grade(1.0 if ok else 0.0, _norm_text(got), "exact match" if ok else "no exact match", rule="exact")


# --- MATH answers --------------------------------------------------------------------------------------
# Hendrycks et al., "Measuring Mathematical Problem Solving With the MATH Dataset" (NeurIPS 2021),
# `math_equivalence.py`: `is_equiv(a, b)` is `_strip_string(a) == _strip_string(b)`. Its steps below, in
# its order, each as a small function; the extras (marked) only remove more typography.

def _remove_right_units(s: str) -> str:
    """'10\\text{ cm}' -> '10': a unit is a \\text{ ...} that starts with a space, and all after it goes."""
    i = s.find("\\text{ ")
    return s[:i] if i > 0 else s


def _fix_decimals(s: str) -> str:
    """' .5' / '{.5' / '.5' -> '0.5'."""
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    return "0" + s if s.startswith(".") else s


def _drop_variable(s: str) -> str:
    """'x = 5' / 'k=5' -> '5': one '=' whose left side is at most two characters."""
    left, eq, right = s.partition("=")
    return right if eq and "=" not in right and len(left.strip()) <= 2 else s


def _fix_sqrt(s: str) -> str:
    """'\\sqrt3' -> '\\sqrt{3}' (TeX takes one character as the argument)."""
    return re.sub(r"\\sqrt(?![{\[\\])(.)", r"\\sqrt{\1}", s)


def _fix_fracs(s: str) -> str:
    """'\\frac12' -> '\\frac{1}{2}', '\\frac1{72}' -> '\\frac{1}{72}': brace both arguments of every \\frac."""
    out, i = [], 0
    while (j := s.find("\\frac", i)) >= 0:
        out.append(s[i:j + 5])
        i = j + 5
        for _ in range(2):  # numerator, denominator: a {group}, a \command or one character
            if i < len(s) and s[i] == "{" and (got := _group(s, i)):
                arg, i = got
            elif cmd := re.match(r"\\[A-Za-z]+|[^{}\\]", s[i:]):
                arg, i = cmd.group(0), i + cmd.end()
            else:
                break
            out.append("{" + arg + "}")
    return "".join(out) + s[i:]


def _fix_a_slash_b(s: str) -> str:
    """'3/4' -> '\\frac{3}{4}' when the whole answer is integer/integer."""
    m = re.fullmatch(r"(-?[0-9]+)/(-?[0-9]+)", s)
    return f"\\frac{{{m[1]}}}{{{m[2]}}}" if m else s


def normalize_math(s: str) -> str:
    """A MATH answer in canonical form: Hendrycks et al.'s `_strip_string` (see above), plus extras."""
    s = s.strip().rstrip(".")  # extra: a sentence's full stop
    for mark in ("\n", "\\!"):
        s = s.replace(mark, "")
    s = s.replace("\\\\", "\\").replace("tfrac", "frac").replace("dfrac", "frac")
    for mark in ("\\left", "\\right", "^{\\circ}", "^\\circ", "\\$", "$"):  # extra: plain '$' (math mode)
        s = s.replace(mark, "")
    s = _remove_right_units(s)
    for mark in ("\\%", "%", "\\,", "\\;", "\\ "):  # extras: '%', TeX spaces
        s = s.replace(mark, "")
    s = re.sub(r"\\(?:text|textbf|mbox)\{([^{}]*)\}", r"\1", s)  # extra: '\text{(A)}' -> '(A)'
    s = _drop_variable(_fix_decimals(s.strip().rstrip(".")))
    s = _fix_fracs(_fix_sqrt(s.replace(" ", "")))
    return "\\frac{1}{2}" if s == "0.5" else _fix_a_slash_b(s)


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
# trailing words after a number: '5 cm', '45 minutes', '3 kg.' (words apart by spaces: no backtracking blow-up)
_UNITS = re.compile(r"\s*[^\W\d_]+\.?(?:\s+[^\W\d_]+\.?)*$")


def reference_number(reference: str) -> Fraction | None:
    """The number a reference is, units dropped: '85', '1,000', '-3/4', '$7', '25%', '5 cm'; None for anything
    else ('3:45', 'True', 'x + 1')."""
    value = parse_number(reference)
    return value if value is not None else parse_number(_UNITS.sub("", reference.strip()))


_CLOCK = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::\d{2})?(?![\d:])(?:\s*([AaPp])\.?\s?[Mm]\b\.?)?")


@dataclass(frozen=True)
class Clock:
    """A time of day, in minutes after midnight; `twelve_hour` when it was written with AM/PM."""

    minutes: int
    twelve_hour: bool
    text: str  # as '3:45 PM' or '15:45'

    def same(self, other: Clock) -> bool:
        """'3:45 PM' is '15:45'; a time written without AM/PM matches either half of the day only when its hour could
        be read either way ('3:45'), never when it is a 24-hour time ('15:45' is not '3:45 AM')."""
        if self.twelve_hour == other.twelve_hour:
            return self.minutes == other.minutes
        plain = other if self.twelve_hour else self
        if 60 <= plain.minutes < 13 * 60:  # hours 1 to 12: AM or PM
            return self.minutes % 720 == other.minutes % 720
        return self.minutes == other.minutes


def _clock(m: re.Match[str]) -> Clock | None:
    hour, minute = int(m[1]), int(m[2])
    if m[3]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m[3] in "Pp" else 0)
    if hour > 23 or minute > 59:
        return None
    half = f" {'AM' if hour < 12 else 'PM'}" if m[3] else ""
    return Clock(60 * hour + minute, bool(m[3]), f"{(hour - 1) % 12 + 1 if m[3] else hour}:{minute:02d}{half}")


def clock_time(text: str) -> Clock | None:
    """A text that is one time of day: '3:45', '15:45', '3:45 PM', '9:05 a.m.'; None for anything else."""
    m = _CLOCK.fullmatch(text.strip())
    return _clock(m) if m else None


def _clocks(text: str) -> list[Clock]:
    return [c for m in _CLOCK.finditer(text) if (c := _clock(m))]


def extract_clock(output: str) -> Clock | None:
    """The time a reply answers: the first in its final answer (\\boxed{}, 'answer is'), else the last anywhere."""
    for text in _marked(output):
        if found := _clocks(text):
            return found[0]
    found = _clocks(output)
    return found[-1] if found else None


_TRUTH = {"true": True, "yes": True, "false": False, "no": False}
_TRUTH_WORD = re.compile(r"\b(?:true|false|yes|no)\b", re.IGNORECASE)


def truth_value(text: str) -> bool | None:
    """What a one-word answer 'True', 'yes.', 'NO' states; None for anything else."""
    return _TRUTH.get(_norm_text(text))


def extract_truth(output: str) -> bool | None:
    """The yes/no or true/false a reply answers: the first in its final answer (\\boxed{}, 'answer is'), else its
    first word ('No, 7 is less than 9'), else the last it says ('... so the statement is true')."""
    for text in _marked(output):
        if m := _TRUTH_WORD.search(text):
            return _TRUTH[m[0].casefold()]
    said = _TRUTH_WORD.findall(output)
    if not said:
        return None
    lead = re.match(r"\W*(\w+)", output)
    return _TRUTH.get(lead[1].casefold() if lead else "", _TRUTH[said[-1].casefold()])


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
        return _judged(_norm_text(output) == _norm_text(reference), _norm_text(output), _norm_text(reference), "exact")
    ok, a, b = _math_equal(_OPTION.sub(r"\1", got.strip()), _OPTION.sub(r"\1", reference.strip()), fold=True)
    return _judged(ok or _norm_text(output) == _norm_text(reference), a, b, "math")


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
        return Grade(1.0 if ok else 0.0, _norm_text(got), f"regex extracted {got!r}", rule="regex")


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
        return [Grade(1.0 if rep.value[0] else 0.0, None, f"judge: {rep.value[1]}", rule="judge") if rep.status == "ok"
                else Grade(None, None, f"judge reply invalid: {rep.error}", "judge_error", "judge") for rep in replies]

    def __call__(self, output: str, reference: str) -> Grade:
        return self.grade_batch([""], [output], [reference])[0]
