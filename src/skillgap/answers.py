"""Answer extraction: what a model's reply states as its answer, and the reference in canonical form.

Pure text functions (numbers, the last \\boxed{}, 'answer is' segments, MATH's normalisation, clock times, yes/no),
used by the graders (`skillgap.grade`) and, without grading, by formats, profiles and synthetic targeting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

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


def last_boxed(text: str) -> str | None:
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
    boxed = last_boxed(output)
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
    boxed = last_boxed(output)
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


def normalize_text(s: str) -> str:
    """Text as `exact` compares it: case-folded, single-spaced, without an outer full stop."""
    return " ".join(s.strip().strip(".").casefold().split())


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


# --- Answers of any kind -------------------------------------------------------------------------------
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
    return _TRUTH.get(normalize_text(text))


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

