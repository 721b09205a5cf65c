"""`arith`: procedural arithmetic word problems whose skills and exact answers are known by construction.

Thirteen fine-grained skills with a prerequisite graph. An item composes k = 1..4 of them as a
short story about one quantity: the first skill introduces it ("Mia has 47 shells and gets 38
more."), middle skills transform it ("Then she keeps 3/4 of them."), and the last one either
transforms it too (followed by "How many shells does Mia have now?") or asks a closing question
about it (rounding, place value, comparison, unit conversion). Every step's value is stored in
`metadata.steps`, which lets the profile stage find the first step a model got wrong.

Each skill is one `SkillSpec` in `SPECS` (its inventory entry, how its steps are drawn, computed
and explained): adding a skill is adding one entry.

Train, validation and test never share an item: a problem's split is a hash of its *mathematics*
(skills and operands, not the names or nouns), so the same computation cannot land in two
streams, whatever the seeds. 20% of problems are test, 10% validation (the held-out losses that
steer an online mixture and draw the training curves), the rest train. Streams are deterministic
given (split, seed) and unlimited.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.skills import Skill, SkillSet

NAMES = ("Mia", "Omar", "Lena", "Ravi", "Sofia", "Tom", "Aiko", "Ben", "Nora", "Yusuf", "Ella", "Kofi")
OBJECTS = ("shells", "stamps", "marbles", "stickers", "apples", "coins", "books", "pencils", "cards", "beads")


@dataclass(frozen=True)
class Step:
    skill: str
    text: str
    value: int
    operands: tuple[int, ...]


@dataclass(frozen=True)
class Ctx:
    """Surface details of one story; they never enter the split hash."""

    name: str
    obj: str
    other: str


# ---------------------------------------------------------------------------------------------
# digit helpers

def _digits(n: int) -> list[int]:
    return [int(c) for c in reversed(str(n))]


def _carries(a: int, b: int) -> bool:
    da, db = _digits(a), _digits(b)
    return any((da[i] if i < len(da) else 0) + (db[i] if i < len(db) else 0) >= 10
               for i in range(max(len(da), len(db))))


def _borrows(a: int, b: int) -> bool:
    da, db = _digits(a), _digits(b)
    return any(da[i] < db[i] for i in range(len(db)))


def _round_half_up(x: int, base: int) -> int:
    return (x + base // 2) // base * base


# ---------------------------------------------------------------------------------------------
# How steps are drawn. start(r, c) opens a story; then(x, r, c) transforms the running quantity x;
# ask(x, r, c) closes it with a question; alone(r, c) is a skill's own k = 1 problem. Each returns
# the step's words and operands (its SkillSpec computes the value), or None when it does not apply
# to x (the chain sampler then tries another skill).

Operands = tuple[int, ...]
Drawn = tuple[str, Operands]


def _add1_start(r: random.Random, c: Ctx) -> Drawn:
    a, b = r.randint(1, 9), r.randint(1, 9)
    return f"{c.name} has {a} {c.obj} and finds {b} more.", (a, b)


def _add1_then(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    if not 1 <= x <= 9:
        return None
    b = r.randint(1, 9)
    return f"Then {c.name} finds {b} more.", (x, b)


def _operand(x: int, r: random.Random, lo: int, hi: int, ok: Callable[[int, int], bool]) -> int | None:
    """A second operand in [lo, hi] for which ok(x, b) holds (a carry, a borrow), if one turns up."""
    for _ in range(20):
        b = r.randint(lo, hi)
        if ok(x, b):
            return b
    return None


def _addm_operand(x: int, r: random.Random) -> int | None:
    return _operand(x, r, 10, 999 if x >= 100 else 99, _carries)


def _addm_start(r: random.Random, c: Ctx) -> Drawn | None:
    a = r.randint(10, 999)
    b = _addm_operand(a, r)
    return None if b is None else (f"{c.name} has {a} {c.obj} and gets {b} more.", (a, b))


def _addm_then(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    b = _addm_operand(x, r) if 10 <= x <= 9999 else None
    return None if b is None else (f"Then {c.name} gets {b} more.", (x, b))


def _sub_operand(x: int, r: random.Random) -> int | None:
    return _operand(x, r, 10, x - 1, _borrows)


def _sub_start(r: random.Random, c: Ctx) -> Drawn | None:
    a = r.randint(30, 999)
    b = _sub_operand(a, r)
    return None if b is None else (f"{c.name} has {a} {c.obj} and gives away {b}.", (a, b))


def _sub_then(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    b = _sub_operand(x, r) if x >= 20 else None
    return None if b is None else (f"Then {c.name} gives away {b} of them.", (x, b))


def _mulf_start(r: random.Random, c: Ctx) -> Drawn:
    a, b = r.randint(2, 9), r.randint(2, 9)
    return f"{c.name} has {a} bags with {b} {c.obj} in each bag.", (a, b)


def _times_then(lo: int, hi: int) -> Callable[[int, random.Random, Ctx], Drawn | None]:
    def then(x: int, r: random.Random, c: Ctx) -> Drawn | None:
        if not lo <= x <= hi:
            return None
        b = r.randint(2, 9)
        return f"Then {c.name} ends up with {b} times as many.", (x, b)
    return then


def _mul1_start(r: random.Random, c: Ctx) -> Drawn:
    a, b = r.randint(2, 9), r.randint(12, 999)
    return f"{c.name} has {a} bags with {b} {c.obj} in each bag.", (a, b)


def _div_pick(x: int, r: random.Random) -> int | None:
    divisors = [b for b in range(3, 10) if x % b and x // b >= 1]
    return r.choice(divisors) if divisors else None


def _div_then(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    b = _div_pick(x, r) if x >= 10 else None
    if b is None:
        return None
    return (f"Then {c.name} packs them into bags of {b} and keeps only the {c.obj} left over that do not fill a bag.",
            (x, b))


def _div_alone(r: random.Random, c: Ctx) -> Drawn:
    """Division alone asks for the quotient (operands x, b, 0) or the remainder (x, b, 1), so both halves of the
    skill are measured."""
    while True:
        x = r.randint(20, 999)
        b = _div_pick(x, r)
        if b is not None:
            break
    if r.random() < 0.5:
        return f"{c.name} packs {x} {c.obj} into bags of {b}. How many full bags does {c.name} get?", (x, b, 0)
    return f"{c.name} packs {x} {c.obj} into bags of {b}. How many {c.obj} are left over?", (x, b, 1)


FRACTIONS = ((1, 2), (1, 3), (2, 3), (1, 4), (3, 4), (1, 5), (2, 5), (3, 5), (4, 5), (3, 10), (7, 10))


def _frac_pick(x: int, r: random.Random) -> tuple[int, int] | None:
    ok = [(n, d) for n, d in FRACTIONS if x % d == 0 and x >= d]
    return r.choice(ok) if ok else None


def _frac_start(r: random.Random, c: Ctx) -> Drawn:
    n, d = r.choice(FRACTIONS)
    x = d * r.randint(2, 40)
    return f"{c.name} has {x} {c.obj} and keeps {n}/{d} of them.", (x, n, d)


def _frac_then(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    nd = _frac_pick(x, r) if x >= 2 else None
    if nd is None:
        return None
    n, d = nd
    return f"Then {c.name} keeps {n}/{d} of them.", (x, n, d)


PERCENTS = (10, 20, 25, 30, 40, 50, 60, 75, 80, 90)


def _pct_start(r: random.Random, c: Ctx) -> Drawn:
    p = r.choice(PERCENTS)
    x = 20 * r.randint(1, 40)  # every percent in PERCENTS of a multiple of 20 is whole
    return f"{c.name} has {x} {c.obj} and keeps {p}% of them.", (x, p)


def _pct_then(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    ok = [p for p in PERCENTS if x * p % 100 == 0]
    if not ok or x < 10:
        return None
    p = r.choice(ok)
    return f"Then {c.name} keeps {p}% of them.", (x, p)


def _ops_start(r: random.Random, c: Ctx) -> Drawn:
    """a + b × d (operands a, b, d, 0) or a - b × d (a, b, d, 1)."""
    b, d = r.randint(2, 9), r.randint(2, 9)
    if r.random() < 0.5:
        a = r.randint(2, 40)
        return f"The number of {c.obj} {c.name} has is {a} + {b} × {d}.", (a, b, d, 0)
    a = r.randint(b * d + 1, b * d + 60)
    return f"The number of {c.obj} {c.name} has is {a} - {b} × {d}.", (a, b, d, 1)


def _cmp_ask(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    """The other number is close (digits swapped or a small change) so the comparison is not obvious."""
    if x < 10:
        return None
    s = str(x)
    swapped = int(s[:-2] + s[-1] + s[-2]) if len(s) >= 2 and s[-1] != s[-2] else x
    y = swapped if swapped != x and len(str(swapped)) == len(s) and r.random() < 0.5 else x + r.choice(
        [d for d in range(-9, 10) if d and x + d > 0])
    return f"{c.other} has {y} {c.obj}. How many {c.obj} does the one with more {c.obj} have?", (x, y)


def _round_ask(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    if x < 10:
        return None
    base = 100 if x >= 150 and r.random() < 0.5 else 10
    place = "hundred" if base == 100 else "ten"
    return f"Rounded to the nearest {place}, how many {c.obj} does {c.name} have?", (x, base)


PLACES = ("ones", "tens", "hundreds", "thousands")


def _place_ask(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    if x < 10:
        return None
    places = PLACES[: len(str(x))]
    i = r.randrange(1, len(places)) if len(places) > 1 else 0  # never "ones": too easy to guess
    return f"What digit is in the {places[i]} place of the number of {c.obj} {c.name} has?", (x, i)


UNITS = (("meters", "centimeters", 100), ("kilometers", "meters", 1000), ("hours", "minutes", 60),
         ("minutes", "seconds", 60), ("kilograms", "grams", 1000), ("liters", "milliliters", 1000))
UNIT_QUESTIONS = (
    ("If each of {name}'s {obj} is 1 meter long, how many centimeters long are they laid end to end?", 100),
    ("If each of {name}'s {obj} weighs 1 kilogram, how many grams do they weigh together?", 1000),
    ("If {name} spends 1 hour on each of the {obj}, how many minutes does that take in total?", 60),
    ("If {name} spends 1 minute on each of the {obj}, how many seconds does that take in total?", 60),
)


def _unit_ask(x: int, r: random.Random, c: Ctx) -> Drawn | None:
    if not 1 <= x <= 999:
        return None
    q, f = r.choice(UNIT_QUESTIONS)
    return q.format(name=c.name, obj=c.obj), (x, f)


def _unit_alone(r: random.Random, c: Ctx) -> Drawn:
    """Big to small units (operands x, factor, 0) or small to big (x, factor, 1)."""
    big, small, f = r.choice(UNITS)
    if r.random() < 0.7:
        x = r.randint(2, 99)
        return f"A trip takes {x} {big}. How many {small} is that?", (x, f, 0)
    x = r.randint(2, 20)
    return f"A trip takes {x * f} {small}. How many {big} is that?", (x * f, f, 1)


# ---------------------------------------------------------------------------------------------
# How steps are worked: one line a student would write down, from the step's operands and value.

def _explain_div(o: Operands, value: int) -> str:
    x, b = o[0], o[1]
    what = "full bags" if len(o) == 3 and o[2] == 0 else "left over"
    return f"{x} ÷ {b} = {x // b} remainder {x % b}, so {value} {what}"


def _explain_fraction(o: Operands, value: int) -> str:
    x, n, d = o
    return f"{x} ÷ {d} = {x // d}, and {x // d} × {n} = {value}"


def _explain_order_ops(o: Operands, value: int) -> str:
    a, b, d, minus = o
    return f"{b} × {d} = {b * d} first, then {a} {'-' if minus else '+'} {b * d} = {value}"


def _explain_compare(o: Operands, value: int) -> str:
    x, y = o
    return f"{x} and {y} are equal" if x == y else f"{max(x, y)} is more than {min(x, y)}"


def _explain_unit(o: Operands, value: int) -> str:
    return f"{o[0]} {'÷' if len(o) == 3 and o[2] == 1 else '×'} {o[1]} = {value}"


def _explain_plus(o: Operands, value: int) -> str:
    return f"{o[0]} + {o[1]} = {value}"


def _explain_times(o: Operands, value: int) -> str:
    return f"{o[0]} × {o[1]} = {value}"


def _plus(o: Operands) -> int:
    return o[0] + o[1]


def _times(o: Operands) -> int:
    return o[0] * o[1]


# ---------------------------------------------------------------------------------------------
# The skills: one SkillSpec each, in inventory order. Adding a skill is adding one entry.

@dataclass(frozen=True)
class SkillSpec:
    """One arith skill whole: its inventory entry, how its steps are drawn, and how a step is computed and explained.

    A skill draws with at least one of `draw_start`, `draw_ask` (its k = 1 problem is a plain quantity and that
    question) and `draw_alone`; `draw_then` lets it sit in the middle of a story.
    """

    skill: Skill
    compute: Callable[[Operands], int]  # the step's value from its operands
    explain: Callable[[Operands, int], str]  # the step's line of worked solution
    draw_start: Callable[[random.Random, Ctx], Drawn | None] | None = None
    draw_then: Callable[[int, random.Random, Ctx], Drawn | None] | None = None
    draw_ask: Callable[[int, random.Random, Ctx], Drawn | None] | None = None
    draw_alone: Callable[[random.Random, Ctx], Drawn] | None = None

    def _step(self, drawn: Drawn | None) -> Step | None:
        return None if drawn is None else Step(self.skill.id, drawn[0], self.compute(drawn[1]), drawn[1])

    def start(self, r: random.Random, c: Ctx) -> Step | None:
        return self._step(self.draw_start(r, c)) if self.draw_start else None

    def then(self, x: int, r: random.Random, c: Ctx) -> Step | None:
        return self._step(self.draw_then(x, r, c)) if self.draw_then else None

    def ask(self, x: int, r: random.Random, c: Ctx) -> Step | None:
        return self._step(self.draw_ask(x, r, c)) if self.draw_ask else None

    def alone(self, r: random.Random, c: Ctx) -> Step | None:
        return self._step(self.draw_alone(r, c)) if self.draw_alone else None


SPECS = (
    SkillSpec(Skill("add_1digit", "Single-digit addition", "Add two numbers below 10.", "addition"),
              _plus, _explain_plus, draw_start=_add1_start, draw_then=_add1_then),
    SkillSpec(Skill("place_value", "Place value", "Name the digit in a given place of a whole number.",
                    "number_sense"),
              lambda o: _digits(o[0])[o[1]], lambda o, v: f"The {PLACES[o[1]]} digit of {o[0]} is {v}",
              draw_ask=_place_ask),
    SkillSpec(Skill("add_multi", "Multi-digit addition with carry", "Add multi-digit numbers where a column carries.",
                    "addition", ("add_1digit", "place_value")),
              _plus, _explain_plus, draw_start=_addm_start, draw_then=_addm_then),
    SkillSpec(Skill("sub_borrow", "Subtraction with borrow", "Subtract multi-digit numbers where a column borrows.",
                    "subtraction", ("add_1digit", "place_value")),
              lambda o: o[0] - o[1], lambda o, v: f"{o[0]} - {o[1]} = {v}", draw_start=_sub_start,
              draw_then=_sub_then),
    SkillSpec(Skill("mul_facts", "Multiplication facts", "Multiply two one-digit numbers.", "multiplication",
                    ("add_1digit",)),
              _times, _explain_times, draw_start=_mulf_start, draw_then=_times_then(2, 9)),
    SkillSpec(Skill("mul_1digit", "Multi-digit times one digit", "Multiply a multi-digit number by a one-digit number.",
                    "multiplication", ("mul_facts", "add_multi")),
              _times, _explain_times, draw_start=_mul1_start, draw_then=_times_then(10, 999)),
    SkillSpec(Skill("div_remainder", "Division with remainder", "Divide and find the quotient or the remainder.",
                    "division", ("mul_facts", "sub_borrow")),
              lambda o: o[0] // o[1] if len(o) == 3 and o[2] == 0 else o[0] % o[1], _explain_div,
              draw_then=_div_then, draw_alone=_div_alone),
    SkillSpec(Skill("compare", "Comparison", "Decide which of two close whole numbers is larger.", "number_sense",
                    ("place_value",)),
              max, _explain_compare, draw_ask=_cmp_ask),
    SkillSpec(Skill("round", "Rounding", "Round a whole number to the nearest ten or hundred.", "number_sense",
                    ("place_value", "compare")),
              lambda o: _round_half_up(o[0], o[1]),
              lambda o, v: f"{o[0]} rounded to the nearest {'hundred' if o[1] == 100 else 'ten'} is {v}",
              draw_ask=_round_ask),
    SkillSpec(Skill("fraction_of", "Fraction of a quantity", "Take n/d of a whole number.", "fractions",
                    ("mul_facts", "div_remainder")),
              lambda o: o[0] * o[1] // o[2], _explain_fraction, draw_start=_frac_start, draw_then=_frac_then),
    SkillSpec(Skill("percent", "Percent of a quantity", "Take p% of a whole number.", "fractions", ("fraction_of",)),
              lambda o: o[0] * o[1] // 100, lambda o, v: f"{o[1]}% of {o[0]} = {o[0]} × {o[1]} ÷ 100 = {v}",
              draw_start=_pct_start, draw_then=_pct_then),
    SkillSpec(Skill("unit_convert", "Unit conversion", "Convert between metric or time units.", "measurement",
                    ("mul_1digit",)),
              lambda o: o[0] // o[1] if len(o) == 3 and o[2] == 1 else o[0] * o[1], _explain_unit,
              draw_ask=_unit_ask, draw_alone=_unit_alone),
    SkillSpec(Skill("order_ops", "Order of operations", "Evaluate an expression with + or - and x, multiplying first.",
                    "expressions", ("add_multi", "mul_facts")),
              lambda o: o[0] - o[1] * o[2] if o[3] else o[0] + o[1] * o[2], _explain_order_ops,
              draw_start=_ops_start),
)
SKILLS = SkillSet(tuple(s.skill for s in SPECS))
OPS: dict[str, SkillSpec] = {s.skill.id: s for s in SPECS}

# The k of successive items: 40% k=1, 30% k=2, 20% k=3, 10% k=4 when max_k is 4.
K_PATTERN = (1, 1, 2, 1, 2, 3, 1, 2, 3, 4)
INSTRUCTION = "Give the final answer as a number on the last line."


# ---------------------------------------------------------------------------------------------
# Item assembly

def _ctx(r: random.Random) -> Ctx:
    name, other = r.sample(NAMES, 2)
    return Ctx(name, r.choice(OBJECTS), other)


def _how_many(c: Ctx) -> str:
    return f"How many {c.obj} does {c.name} have now?"


Problem = tuple[str, list[Step]]  # the story's text and its steps


def _single(skill: str, r: random.Random) -> Problem | None:
    c, spec = _ctx(r), OPS[skill]
    if spec.draw_alone:
        s = spec.alone(r, c)
        return None if s is None else (s.text, [s])
    if spec.draw_start:
        s = spec.start(r, c)
        return None if s is None else (f"{s.text} {_how_many(c)}", [s])
    x = r.randint(10, 9999)  # closing-question skills get a plain given quantity
    s = spec.ask(x, r, c)
    return None if s is None else (f"{c.name} has {x} {c.obj}. {s.text}", [s])


def _chain(k: int, r: random.Random, allowed: tuple[str, ...] = SKILLS.ids) -> Problem | None:
    """A story of k distinct skills of `allowed`: start, k-2 transforms, then a transform or a closing question."""
    c = _ctx(r)
    starters = [s for s in allowed if OPS[s].draw_start]
    first = OPS[r.choice(starters)].start(r, c)
    if first is None:
        return None
    steps = [first]
    for pos in range(1, k):
        last = pos == k - 1
        used = {s.skill for s in steps}
        cands = [s for s in allowed if s not in used]
        r.shuffle(cands)
        nxt = None
        for s in cands:
            spec = OPS[s]
            fns = [f for f, ok in ((spec.then, spec.draw_then), (spec.ask, last and spec.draw_ask)) if ok]
            r.shuffle(fns)
            for f in fns:
                nxt = f(steps[-1].value, r, c)
                if nxt is not None:
                    break
            if nxt is not None:
                break
        if nxt is None:
            return None
        steps.append(nxt)
    # A closing question already ends the story; a transform needs the how-many question after it.
    text = " ".join(s.text for s in steps)
    if not text.endswith("?"):
        text += " " + _how_many(c)
    return text, steps


SPLITS = ("train", "validation", "test")


def split_of(steps: list[Step], test_percent: int = 20, validation_percent: int = 10) -> str:
    """Which stream a problem belongs to, from its mathematics alone: 'test', 'validation' or 'train'."""
    sig = "|".join(f"{s.skill}:{','.join(map(str, s.operands))}" for s in steps)
    h = int.from_bytes(hashlib.sha256(sig.encode()).digest()[:8], "big") % 100
    return "test" if h < test_percent else "validation" if h < test_percent + validation_percent else "train"


def explain(skill: str, operands: list[int] | tuple[int, ...], value: int) -> str:
    """One line of worked solution for one step: what a student would write down."""
    return OPS[skill].explain(tuple(operands), value)


def solution(steps: list[Step]) -> str:
    """The SFT target: one worked line per step, then the answer alone on the last line."""
    lines = [explain(s.skill, s.operands, s.value) for s in steps]
    return "\n".join(lines + [f"The answer is {steps[-1].value}."])


def _item(item_id: str, split: str, text: str, steps: list[Step]) -> Item:
    return Item(
        id=item_id,
        prompt=f"{text}\n{INSTRUCTION}",
        answer=str(steps[-1].value),
        skills=tuple(s.skill for s in steps),
        split=split,
        metadata={"suite": "arith", "steps": [{"skill": s.skill, "value": s.value, "operands": list(s.operands)}
                                              for s in steps]},
        completion=solution(steps),
    )


def _signature(steps: list[Step]) -> str:
    return "|".join(f"{s.skill}:{s.operands}" for s in steps)


@dataclass(frozen=True)
class ArithSuite:
    """The built-in arithmetic suite. `generate` is deterministic in (split, n, seed).

    `item_skills` restricts the skills an item may exercise, composed items included (`--exclude-skills`):
    the stories are drawn from those skills alone, so the k pattern holds, and a problem keeps its split.
    `k_values` keeps the k pattern's items of those k only (`--k 1,2`: train on compositions of at most 2), and
    `hold_out_pairs` rejects any item that composes both skills of a pair (`--hold-out-pairs`), so those
    combinations stay unseen; a problem keeps its split either way.
    """

    name: str = "arith"
    max_k: int = 4
    test_percent: int = 20
    grader: str = "numeric"
    skills: SkillSet = SKILLS
    item_skills: tuple[str, ...] | None = None  # None: all thirteen
    k_values: tuple[int, ...] | None = None  # only items composing this many skills (--k); None: 1..max_k
    hold_out_pairs: tuple[tuple[str, str], ...] = ()  # no item composing both skills of a pair (--hold-out-pairs)

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(s for s in SKILLS.ids if s in self.item_skills) if self.item_skills else SKILLS.ids

    @property
    def _tag(self) -> str:
        """Part of every item id of a restricted suite: its items differ from the whole suite's at the same place."""
        tag = ""
        if self.allowed != SKILLS.ids:
            left_out = [s for s in SKILLS.ids if s not in self.allowed]
            tag = f"no.{'.'.join(left_out)}-" if len(left_out) <= len(self.allowed) \
                else f"only.{'.'.join(self.allowed)}-"
        if self.k_values:
            tag += f"k{''.join(map(str, self.k_values))}-"
        if self.hold_out_pairs:
            tag += f"hp.{'.'.join('+'.join(p) for p in self.hold_out_pairs)}-"
        return tag

    def _too_few(self, what: str, made: int, asked: int, flags: str) -> ConfigError:
        """The suite's restriction leaves fewer distinct problems than asked for: say which, how many, what to do."""
        scope = [f"skill{'s' * (len(self.allowed) > 1)} {','.join(self.allowed)}"] if self.allowed != SKILLS.ids else []
        scope += [f"k = {','.join(map(str, self.k_values))}"] if self.k_values else []
        scope += [f"without {','.join('+'.join(p) for p in self.hold_out_pairs)}"] if self.hold_out_pairs else []
        return ConfigError(f"arith{' restricted to ' + '; '.join(scope) if scope else ''} has only {made} distinct "
                           f"{what}, and {asked} were asked for: ask for at most {made} ({flags}), or widen "
                           "--skills/--k.")

    def _kept(self, steps: list[Step]) -> bool:
        """No held-out pair of skills composed in one item."""
        used = {s.skill for s in steps}
        return not any(a in used and b in used for a, b in self.hold_out_pairs)

    def _distinct(self, n: int, split: str, draw: Callable[[int, int], Problem | None], give_up: int,
                  too_few: Callable[[int], ConfigError], after: Callable[[int, bool, int], None] | None = None,
                  ) -> list[Problem]:
        """Rejection sampling: draw until `n` distinct problems of `split` that compose no held-out pair are kept.

        `draw(kept, misses)` sees how many are kept and how many draws in a row were rejected; `after(kept, ok,
        misses)` hears each verdict. More than `give_up` rejections in a row: the restriction leaves too few.
        """
        seen: set[str] = set()
        problems: list[Problem] = []
        misses = 0  # consecutive rejected draws
        while len(problems) < n:
            i = len(problems)
            made = draw(i, misses)
            sig = "" if made is None else _signature(made[1])
            ok = made is not None and sig not in seen and split_of(made[1], self.test_percent) == split \
                and self._kept(made[1])
            if ok:
                misses = 0
                seen.add(sig)
                problems.append(made)  # type: ignore[arg-type]
            else:
                misses += 1
                if misses > give_up:
                    raise too_few(len(problems))
            if after:
                after(i, ok, misses)
        return problems

    def generate(self, split: str, n: int, seed: int = 0) -> list[Item]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        r = random.Random(f"arith/{split}/{seed}")
        allowed = self.allowed
        # a story of k skills needs k distinct skills and one of them to open it
        chains = any(OPS[s].draw_start for s in allowed)
        pattern = [k for k in K_PATTERN if k <= self.max_k and (k == 1 or (chains and k <= len(allowed)))
                   and (self.k_values is None or k in self.k_values)]
        if not pattern:
            raise ValueError(f"arith: no item can compose k = {','.join(map(str, self.k_values or ()))} of "
                             f"the {len(allowed)} skills left (and max_k {self.max_k}).")
        singles: list[str] = []  # the k = 1 skills still to come in this cycle; the last one is drawn next

        def draw(kept: int, misses: int) -> Problem | None:
            k = pattern[kept % len(pattern)]
            if k == 1 and not singles:  # cycle through every skill before repeating one
                singles.extend(allowed)
                r.shuffle(singles)
            return _single(singles[-1], r) if k == 1 else _chain(k, r, allowed)

        def after(kept: int, ok: bool, misses: int) -> None:
            # a kept single is done; 200 rejections in a row: its finite domain (e.g. 9x9 facts) is used up here
            if pattern[kept % len(pattern)] == 1 and (ok or misses % 200 == 0):
                singles.pop()

        problems = self._distinct(n, split, draw, 10_000, lambda made: self._too_few(
            f"{split} items", made, n, "--limit, --pool-size or --diagnose-limit"), after)
        return [_item(f"arith-{split}-s{seed}-{self._tag}{i:05d}", split, *p) for i, p in enumerate(problems)]

    def synthesize(self, skill: str, n: int, seed: int = 0, split: str = "train") -> list[Item]:
        """`n` new items of `split` that exercise `skill`: every third one alone, the rest composed with others.

        The generator behind STAT-Syn for this suite: new problems aimed at one skill, never
        a test problem (the split hash still applies), distinct within the call. With
        split="validation", held-out items of one skill that no training stream can produce.
        """
        if skill not in OPS:
            raise KeyError(skill)
        if skill not in self.allowed:
            raise ValueError(f"arith: {skill!r} is left out of this suite's items (--skills/--exclude-skills); "
                             "no item of it can be made.")
        allowed = self.allowed
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        r = random.Random(f"arith/syn/{skill}/{seed}" + ("" if split == "train" else f"/{split}"))
        ks = [k for k in (2, 3) if k <= min(self.max_k, len(allowed)) and (self.k_values is None or k in self.k_values)]
        singles_ok = self.k_values is None or 1 in self.k_values
        if not ks and not singles_ok:
            raise ValueError(f"arith: --k {','.join(map(str, self.k_values or ()))} leaves no item to synthesize "
                             f"for {skill!r} (its items are alone, or composed of 2 or 3 skills).")

        def draw(kept: int, misses: int) -> Problem | None:
            alone = singles_ok and ((kept % 3 == 0 and misses < 500) or not ks)  # a used-up single domain
            made = _single(skill, r) if alone else _chain(r.choice(ks), r, allowed)  # falls back to chains
            return made if made is not None and skill in {s.skill for s in made[1]} else None

        problems = self._distinct(n, split, draw, 50_000, lambda made: self._too_few(
            f"new {split} items for {skill}", made, n, "--budget or --val-per-skill"))
        tag = "syn" if split == "train" else split[:3]
        return [_item(f"arith-{tag}-{skill}-s{seed}-{self._tag}{i:05d}", split, *p) for i, p in enumerate(problems)]
