"""`arith`: procedural arithmetic word problems whose skills and exact answers are known by construction.

Thirteen fine-grained skills with a prerequisite graph. An item composes k = 1..4 of them as a
short story about one quantity: the first skill introduces it ("Mia has 47 shells and gets 38
more."), middle skills transform it ("Then she keeps 3/4 of them."), and the last one either
transforms it too (followed by "How many shells does Mia have now?") or asks a closing question
about it (rounding, place value, comparison, unit conversion). Every step's value is stored in
`metadata.steps`, which lets the profile stage find the first step a model got wrong.

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

SKILLS = SkillSet((
    Skill("add_1digit", "Single-digit addition", "Add two numbers below 10.", "addition"),
    Skill("place_value", "Place value", "Name the digit in a given place of a whole number.", "number_sense"),
    Skill("add_multi", "Multi-digit addition with carry", "Add multi-digit numbers where a column carries.",
          "addition", ("add_1digit", "place_value")),
    Skill("sub_borrow", "Subtraction with borrow", "Subtract multi-digit numbers where a column borrows.",
          "subtraction", ("add_1digit", "place_value")),
    Skill("mul_facts", "Multiplication facts", "Multiply two one-digit numbers.", "multiplication",
          ("add_1digit",)),
    Skill("mul_1digit", "Multi-digit times one digit", "Multiply a multi-digit number by a one-digit number.",
          "multiplication", ("mul_facts", "add_multi")),
    Skill("div_remainder", "Division with remainder", "Divide and find the quotient or the remainder.",
          "division", ("mul_facts", "sub_borrow")),
    Skill("compare", "Comparison", "Decide which of two close whole numbers is larger.", "number_sense",
          ("place_value",)),
    Skill("round", "Rounding", "Round a whole number to the nearest ten or hundred.", "number_sense",
          ("place_value", "compare")),
    Skill("fraction_of", "Fraction of a quantity", "Take n/d of a whole number.", "fractions",
          ("mul_facts", "div_remainder")),
    Skill("percent", "Percent of a quantity", "Take p% of a whole number.", "fractions", ("fraction_of",)),
    Skill("unit_convert", "Unit conversion", "Convert between metric or time units.", "measurement",
          ("mul_1digit",)),
    Skill("order_ops", "Order of operations", "Evaluate an expression with + or - and x, multiplying first.",
          "expressions", ("add_multi", "mul_facts")),
))


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
# The skills. start(rng, c) opens a story; then(x, rng, c) transforms the running quantity x;
# ask(x, rng, c) closes it with a question. Each returns a Step, or None when it does not apply
# to x (the chain sampler then tries another skill).

def _add1_start(r: random.Random, c: Ctx) -> Step:
    a, b = r.randint(1, 9), r.randint(1, 9)
    return Step("add_1digit", f"{c.name} has {a} {c.obj} and finds {b} more.", a + b, (a, b))


def _add1_then(x: int, r: random.Random, c: Ctx) -> Step | None:
    if not 1 <= x <= 9:
        return None
    b = r.randint(1, 9)
    return Step("add_1digit", f"Then {c.name} finds {b} more.", x + b, (x, b))


def _operand(x: int, r: random.Random, lo: int, hi: int, ok: Callable[[int, int], bool]) -> int | None:
    """A second operand in [lo, hi] for which ok(x, b) holds (a carry, a borrow), if one turns up."""
    for _ in range(20):
        b = r.randint(lo, hi)
        if ok(x, b):
            return b
    return None


def _addm_operand(x: int, r: random.Random) -> int | None:
    return _operand(x, r, 10, 999 if x >= 100 else 99, _carries)


def _addm_start(r: random.Random, c: Ctx) -> Step | None:
    a = r.randint(10, 999)
    b = _addm_operand(a, r)
    return None if b is None else Step("add_multi", f"{c.name} has {a} {c.obj} and gets {b} more.", a + b, (a, b))


def _addm_then(x: int, r: random.Random, c: Ctx) -> Step | None:
    b = _addm_operand(x, r) if 10 <= x <= 9999 else None
    return None if b is None else Step("add_multi", f"Then {c.name} gets {b} more.", x + b, (x, b))


def _sub_operand(x: int, r: random.Random) -> int | None:
    return _operand(x, r, 10, x - 1, _borrows)


def _sub_start(r: random.Random, c: Ctx) -> Step | None:
    a = r.randint(30, 999)
    b = _sub_operand(a, r)
    return None if b is None else Step("sub_borrow", f"{c.name} has {a} {c.obj} and gives away {b}.", a - b, (a, b))


def _sub_then(x: int, r: random.Random, c: Ctx) -> Step | None:
    b = _sub_operand(x, r) if x >= 20 else None
    return None if b is None else Step("sub_borrow", f"Then {c.name} gives away {b} of them.", x - b, (x, b))


def _mulf_start(r: random.Random, c: Ctx) -> Step:
    a, b = r.randint(2, 9), r.randint(2, 9)
    return Step("mul_facts", f"{c.name} has {a} bags with {b} {c.obj} in each bag.", a * b, (a, b))


def _times_then(skill: str, lo: int, hi: int) -> Callable[[int, random.Random, Ctx], Step | None]:
    def then(x: int, r: random.Random, c: Ctx) -> Step | None:
        if not lo <= x <= hi:
            return None
        b = r.randint(2, 9)
        return Step(skill, f"Then {c.name} ends up with {b} times as many.", x * b, (x, b))
    return then


def _mul1_start(r: random.Random, c: Ctx) -> Step:
    a, b = r.randint(2, 9), r.randint(12, 999)
    return Step("mul_1digit", f"{c.name} has {a} bags with {b} {c.obj} in each bag.", a * b, (a, b))


def _div_pick(x: int, r: random.Random) -> int | None:
    divisors = [b for b in range(3, 10) if x % b and x // b >= 1]
    return r.choice(divisors) if divisors else None


def _div_then(x: int, r: random.Random, c: Ctx) -> Step | None:
    b = _div_pick(x, r) if x >= 10 else None
    if b is None:
        return None
    return Step("div_remainder", f"Then {c.name} packs them into bags of {b} and keeps only the "
                f"{c.obj} left over that do not fill a bag.", x % b, (x, b))


def _div_alone(r: random.Random, c: Ctx) -> tuple[str, int, tuple[int, ...]]:
    """Division alone asks for the quotient or the remainder, so both halves of the skill are measured."""
    while True:
        x = r.randint(20, 999)
        b = _div_pick(x, r)
        if b is not None:
            break
    if r.random() < 0.5:
        q = f"{c.name} packs {x} {c.obj} into bags of {b}. How many full bags does {c.name} get?"
        return q, x // b, (x, b, 0)
    q = f"{c.name} packs {x} {c.obj} into bags of {b}. How many {c.obj} are left over?"
    return q, x % b, (x, b, 1)


FRACTIONS = ((1, 2), (1, 3), (2, 3), (1, 4), (3, 4), (1, 5), (2, 5), (3, 5), (4, 5), (3, 10), (7, 10))


def _frac_pick(x: int, r: random.Random) -> tuple[int, int] | None:
    ok = [(n, d) for n, d in FRACTIONS if x % d == 0 and x >= d]
    return r.choice(ok) if ok else None


def _frac_start(r: random.Random, c: Ctx) -> Step:
    n, d = r.choice(FRACTIONS)
    x = d * r.randint(2, 40)
    return Step("fraction_of", f"{c.name} has {x} {c.obj} and keeps {n}/{d} of them.", x * n // d, (x, n, d))


def _frac_then(x: int, r: random.Random, c: Ctx) -> Step | None:
    nd = _frac_pick(x, r) if x >= 2 else None
    if nd is None:
        return None
    n, d = nd
    return Step("fraction_of", f"Then {c.name} keeps {n}/{d} of them.", x * n // d, (x, n, d))


PERCENTS = (10, 20, 25, 30, 40, 50, 60, 75, 80, 90)


def _pct_start(r: random.Random, c: Ctx) -> Step:
    p = r.choice(PERCENTS)
    x = 20 * r.randint(1, 40)  # every percent in PERCENTS of a multiple of 20 is whole
    return Step("percent", f"{c.name} has {x} {c.obj} and keeps {p}% of them.", x * p // 100, (x, p))


def _pct_then(x: int, r: random.Random, c: Ctx) -> Step | None:
    ok = [p for p in PERCENTS if x * p % 100 == 0]
    if not ok or x < 10:
        return None
    p = r.choice(ok)
    return Step("percent", f"Then {c.name} keeps {p}% of them.", x * p // 100, (x, p))


def _ops_start(r: random.Random, c: Ctx) -> Step:
    b, d = r.randint(2, 9), r.randint(2, 9)
    if r.random() < 0.5:
        a = r.randint(2, 40)
        return Step("order_ops", f"The number of {c.obj} {c.name} has is {a} + {b} × {d}.", a + b * d, (a, b, d, 0))
    a = r.randint(b * d + 1, b * d + 60)
    return Step("order_ops", f"The number of {c.obj} {c.name} has is {a} - {b} × {d}.", a - b * d, (a, b, d, 1))


def _cmp_ask(x: int, r: random.Random, c: Ctx) -> Step | None:
    """The other number is close (digits swapped or a small change) so the comparison is not obvious."""
    if x < 10:
        return None
    s = str(x)
    swapped = int(s[:-2] + s[-1] + s[-2]) if len(s) >= 2 and s[-1] != s[-2] else x
    y = swapped if swapped != x and len(str(swapped)) == len(s) and r.random() < 0.5 else x + r.choice(
        [d for d in range(-9, 10) if d and x + d > 0])
    q = f"{c.other} has {y} {c.obj}. How many {c.obj} does the one with more {c.obj} have?"
    return Step("compare", q, max(x, y), (x, y))


def _round_ask(x: int, r: random.Random, c: Ctx) -> Step | None:
    if x < 10:
        return None
    base = 100 if x >= 150 and r.random() < 0.5 else 10
    q = f"Rounded to the nearest {'hundred' if base == 100 else 'ten'}, how many {c.obj} does {c.name} have?"
    return Step("round", q, _round_half_up(x, base), (x, base))


def _place_ask(x: int, r: random.Random, c: Ctx) -> Step | None:
    if x < 10:
        return None
    places = ["ones", "tens", "hundreds", "thousands"][: len(str(x))]
    i = r.randrange(1, len(places)) if len(places) > 1 else 0  # never "ones": too easy to guess
    q = f"What digit is in the {places[i]} place of the number of {c.obj} {c.name} has?"
    return Step("place_value", q, _digits(x)[i], (x, i))


UNITS = (("meters", "centimeters", 100), ("kilometers", "meters", 1000), ("hours", "minutes", 60),
         ("minutes", "seconds", 60), ("kilograms", "grams", 1000), ("liters", "milliliters", 1000))
UNIT_QUESTIONS = (
    ("If each of {name}'s {obj} is 1 meter long, how many centimeters long are they laid end to end?", 100),
    ("If each of {name}'s {obj} weighs 1 kilogram, how many grams do they weigh together?", 1000),
    ("If {name} spends 1 hour on each of the {obj}, how many minutes does that take in total?", 60),
    ("If {name} spends 1 minute on each of the {obj}, how many seconds does that take in total?", 60),
)


def _unit_ask(x: int, r: random.Random, c: Ctx) -> Step | None:
    if not 1 <= x <= 999:
        return None
    q, f = r.choice(UNIT_QUESTIONS)
    return Step("unit_convert", q.format(name=c.name, obj=c.obj), x * f, (x, f))


def _unit_alone(r: random.Random, c: Ctx) -> tuple[str, int, tuple[int, ...]]:
    big, small, f = r.choice(UNITS)
    if r.random() < 0.7:
        x = r.randint(2, 99)
        return f"A trip takes {x} {big}. How many {small} is that?", x * f, (x, f, 0)
    x = r.randint(2, 20)
    return f"A trip takes {x * f} {small}. How many {big} is that?", x, (x * f, f, 1)


@dataclass(frozen=True)
class Ops:
    start: Callable[[random.Random, Ctx], Step | None] | None = None
    then: Callable[[int, random.Random, Ctx], Step | None] | None = None
    ask: Callable[[int, random.Random, Ctx], Step | None] | None = None
    alone: Callable[[random.Random, Ctx], tuple[str, int, tuple[int, ...]]] | None = None


OPS: dict[str, Ops] = {
    "add_1digit": Ops(start=_add1_start, then=_add1_then),
    "place_value": Ops(ask=_place_ask),
    "add_multi": Ops(start=_addm_start, then=_addm_then),
    "sub_borrow": Ops(start=_sub_start, then=_sub_then),
    "mul_facts": Ops(start=_mulf_start, then=_times_then("mul_facts", 2, 9)),
    "mul_1digit": Ops(start=_mul1_start, then=_times_then("mul_1digit", 10, 999)),
    "div_remainder": Ops(then=_div_then, alone=_div_alone),
    "compare": Ops(ask=_cmp_ask),
    "round": Ops(ask=_round_ask),
    "fraction_of": Ops(start=_frac_start, then=_frac_then),
    "percent": Ops(start=_pct_start, then=_pct_then),
    "unit_convert": Ops(ask=_unit_ask, alone=_unit_alone),
    "order_ops": Ops(start=_ops_start),
}
assert set(OPS) == set(SKILLS.ids)

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


def _single(skill: str, r: random.Random) -> tuple[str, list[Step]] | None:
    c, ops = _ctx(r), OPS[skill]
    if ops.alone is not None:
        q, v, operands = ops.alone(r, c)
        return q, [Step(skill, q, v, operands)]
    if ops.start is not None:
        s = ops.start(r, c)
        return None if s is None else (f"{s.text} {_how_many(c)}", [s])
    x = r.randint(10, 9999)  # closing-question skills get a plain given quantity
    s = ops.ask(x, r, c) if ops.ask else None
    return None if s is None else (f"{c.name} has {x} {c.obj}. {s.text}", [s])


def _chain(k: int, r: random.Random, allowed: tuple[str, ...] = SKILLS.ids) -> tuple[str, list[Step]] | None:
    """A story of k distinct skills of `allowed`: start, k-2 transforms, then a transform or a closing question."""
    c = _ctx(r)
    starters = [s for s in allowed if OPS[s].start]
    first = OPS[r.choice(starters)].start(r, c)  # type: ignore[misc]
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
            fns = [f for f in (OPS[s].then, OPS[s].ask if last else None) if f]
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


PLACES = ("ones", "tens", "hundreds", "thousands")


def explain(skill: str, operands: list[int] | tuple[int, ...], value: int) -> str:
    """One line of worked solution for one step: what a student would write down."""
    o = list(operands)
    if skill in ("add_1digit", "add_multi"):
        return f"{o[0]} + {o[1]} = {value}"
    if skill == "sub_borrow":
        return f"{o[0]} - {o[1]} = {value}"
    if skill in ("mul_facts", "mul_1digit"):
        return f"{o[0]} × {o[1]} = {value}"
    if skill == "div_remainder":
        x, b = o[0], o[1]
        what = "full bags" if len(o) == 3 and o[2] == 0 else "left over"
        return f"{x} ÷ {b} = {x // b} remainder {x % b}, so {value} {what}"
    if skill == "fraction_of":
        x, n, d = o
        return f"{x} ÷ {d} = {x // d}, and {x // d} × {n} = {value}"
    if skill == "percent":
        x, p = o
        return f"{p}% of {x} = {x} × {p} ÷ 100 = {value}"
    if skill == "order_ops":
        a, b, d, minus = o
        return f"{b} × {d} = {b * d} first, then {a} {'-' if minus else '+'} {b * d} = {value}"
    if skill == "compare":
        x, y = o
        return f"{x} and {y} are equal" if x == y else f"{max(x, y)} is more than {min(x, y)}"
    if skill == "round":
        x, base = o
        return f"{x} rounded to the nearest {'hundred' if base == 100 else 'ten'} is {value}"
    if skill == "place_value":
        x, i = o
        return f"The {PLACES[i]} digit of {x} is {value}"
    if skill == "unit_convert":
        if len(o) == 3 and o[2] == 1:
            return f"{o[0]} ÷ {o[1]} = {value}"
        return f"{o[0]} × {o[1]} = {value}"
    raise KeyError(skill)


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

    def generate(self, split: str, n: int, seed: int = 0) -> list[Item]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        r = random.Random(f"arith/{split}/{seed}")
        allowed = self.allowed
        # a story of k skills needs k distinct skills and one of them to open it
        chains = any(OPS[s].start for s in allowed)
        pattern = [k for k in K_PATTERN if k <= self.max_k and (k == 1 or (chains and k <= len(allowed)))
                   and (self.k_values is None or k in self.k_values)]
        if not pattern:
            raise ValueError(f"arith: no item can compose k = {','.join(map(str, self.k_values or ()))} of "
                             f"the {len(allowed)} skills left (and max_k {self.max_k}).")
        singles: list[str] = []
        seen: set[str] = set()
        items: list[Item] = []
        misses = 0  # consecutive rejected draws
        while len(items) < n:
            k = pattern[len(items) % len(pattern)]
            if k == 1 and not singles:  # cycle through every skill before repeating one
                singles = list(allowed)
                r.shuffle(singles)
            made = _single(singles[-1], r) if k == 1 else _chain(k, r, allowed)
            sig = "" if made is None else _signature(made[1])
            if made is None or sig in seen or split_of(made[1], self.test_percent) != split \
                    or not self._kept(made[1]):
                misses += 1
                if misses > 10_000:
                    raise self._too_few(f"{split} items", len(items), n, "--limit, --pool-size or --diagnose-limit")
                if k == 1 and misses % 200 == 0:
                    singles.pop()  # this skill's finite domain (e.g. 9x9 facts) is used up here
                continue
            misses = 0
            seen.add(sig)
            if k == 1:
                singles.pop()
            items.append(_item(f"arith-{split}-s{seed}-{self._tag}{len(items):05d}", split, *made))
        return items

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
        seen: set[str] = set()
        items: list[Item] = []
        misses = 0
        ks = [k for k in (2, 3) if k <= min(self.max_k, len(allowed)) and (self.k_values is None or k in self.k_values)]
        singles_ok = self.k_values is None or 1 in self.k_values
        if not ks and not singles_ok:
            raise ValueError(f"arith: --k {','.join(map(str, self.k_values or ()))} leaves no item to synthesize "
                             f"for {skill!r} (its items are alone, or composed of 2 or 3 skills).")
        while len(items) < n:
            alone = singles_ok and ((len(items) % 3 == 0 and misses < 500) or not ks)  # a used-up single domain
            made = _single(skill, r) if alone else _chain(r.choice(ks), r, allowed)  # falls back to chains
            ok = made is not None and skill in {s.skill for s in made[1]} and self._kept(made[1]) \
                and _signature(made[1]) not in seen and split_of(made[1], self.test_percent) == split
            if not ok:
                misses += 1
                if misses > 50_000:
                    raise self._too_few(f"new {split} items for {skill}", len(items), n, "--budget or --val-per-skill")
                continue
            misses = 0
            seen.add(_signature(made[1]))  # type: ignore[index]
            tag = "syn" if split == "train" else split[:3]
            items.append(_item(f"arith-{tag}-{skill}-s{seed}-{self._tag}{len(items):05d}", split, *made))  # type: ignore[misc]
        return items
