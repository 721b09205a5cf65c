"""Grading: what a careful human reads as the answer of real outputs and reference solutions.

Sources of the table strings: "smollm2 arith" / "smollm2 gsm8k" are verbatim outputs (or their tails) of the
embedded SmolLM2-135M from `skillgap profile --model smollm2-135m --suite arith --limit 48` and
`--data gsm8k/test.jsonl --format gsm8k --limit 16 --max-new-tokens 256`; "gsm8k test N" / "MATH test/..." are
reference solutions from ../shared/data (GSM8K line N, 0-based; MATH by unique_id); "form" rows are the number
forms the grader must read, written by hand.
"""

import json
from fractions import Fraction as F

import pytest
from conftest import shared_data

from skillgap.errors import ConfigError
from skillgap.grade import (exact, extract_number, get_grader, math, normalize_math, numbers_in, numeric,
                            parse_number)

# (output, the answer a careful human reads from it). Real outputs are verbatim or trimmed to their tail.
EXTRACT = [
    # --- smollm2 arith (real outputs of the embedded model) ---
    ("Sofia has 4102 / 100 = 41.", 41),
    ("Tom has 100 - 60 = 20 shells left.", 20),
    ("Tom has 9 - 1/3 = 2.5 stickers now.\nTom has 2.5 stickers now.\nThe answer is 2.5.", F(5, 2)),
    ("Tom has 103 - 72 = 20 beads left.\nTom has 20 - 20 = 0 beads left.\nThe answer is 0", 0),
    ("The total time taken by Kofi to spend 3 minutes is 3 * 1 = 3 seconds.\n#### 3\nThe answer is 3.", 3),
    ("so Ravi has 70 + 70 = 140 more shells now.\n#### 140\nThe answer is: 140", 140),
    ("260 * 100 / 100 = 260\nYusuf has 260 coins now.", 260),
    ("Ben has 230 - 3/10 = 220 shells.", 220),
    ("427 / 130 = 2.5", F(5, 2)),
    ("Kofi has 5 bags with 9 coins in each bag, which is 5 * 9 = 40 coins. Now, Kofi has 40 coins.", 40),
    ("170 - 170 = 0\nLena has 0 coins left over.", 0),
    ("Sofia ends up with 6 times as many coins as she started with, which is 6 × 2 = 12 coins.", 12),
    ("The one with more stamps has 4069 - 4069 = 1.", 1),
    ("Sofia has 55 - 6 × 4 = 20 cards left.", 20),
    ("Ben has 5352 - 100 = 5320 stamps.\nThe one with more stamps has 5320 + 100 = 6320 stamps.\n"
     "The answer is 6320.", 6320),
    ("Rounded to the nearest hundred, 5 x 100 = 500 books.", 500),
    ("Rounded to the nearest ten, Ella has 90 / 10 = 9 pencils.\n#### 9\nThe answer is 9.", 9),
    ("Ben packs 169 * 6 = 970 beads into bags of 6. So, 970 - 169 = 43 beads are left over.", 43),
    ("Kofi has 641 - 367 = 22 shells left over.\nThe number of shells Kofi has now is 22.\n#### 22\n"
     "The answer is: 22", 22),
    # --- smollm2 gsm8k (real outputs; the first three are cut off at 256 tokens) ---
    ("So, 2480 / 4 = 624.\n\nTherefore, Janet makes 624 dollars per day.", 624),
    ("The total profit is $65,000 - $80,000 = $10,000.\n\nThe answer is 10,000.", 10000),
    ("So, 60 * 3 = 180 meters.\nTherefore, James runs 180 meters a week.\n#### 180\nThe answer is: 180", 180),
    ("The total number of sheep is 160 + 320 = 520 sheep.\n\n#### 520\nThe answer is: 520", 520),
    ("This is a classic example of a classic lateral thinking puzzle. We can think of it as a puzzle where the "
     "answer is not a specific number, but rather a combination of numbers.\n\nThe answer is 24 hours * 60 "
     "minutes / 1 hour = 120 minutes.\n\nSo, John spends 120 minutes driving at a speed of 30mph, which is 120 "
     "minutes of his original 4 hours.", 120),  # the value of the expression, not its first number (was 24)
    ("Her earnings for this week are $14.80 * 45 hours = $62.40.\n\nSo, Eliza's earnings for this week are $62.40.",
     F(312, 5)),
    ("The total cost is 128 + 24 + 64 = 400 cents.\n#### 400\nThe answer is: 400", 400),
    ("So, the answer is 7 + 1 = 8 years.\n\nHowever, we can also calculate it more efficiently by using the formula "
     "for compound interest: 1 + (1 + 1) = 2 + 1 = 3 years. This is the total number of years it will take for "
     "the tree to grow 7 lemons, which is 3 years.\n\nSo, the answer is 3 years.", 3),  # the last answer given
    ("(25:1) * 100% = 25%\n\nSo, 25% of the total number of students enrolled in any other type of dance is "
     "hip-hop dance.", 25),
    # --- gsm8k test reference solutions ---
    ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day at the "
     "farmer’s market.\n#### 18", 18),  # line 0
    ("So the total cost was 1,350,000+100,000=$<<1350000+100000=1450000>>1,450,000\n#### 1,450,000",
     1450000),  # line 611
    ("-30/3 = <<-30/3=-10>>-10 degrees\nThe average highest temperature recorded in Southlandia, Northlandia, and "
     "Midlandia is -10 degrees Fahrenheit.\n#### -10", -10),  # line 489
    ("Drop 8 degrees = 2 - 8 = -6 degrees\nIncrease 3 degrees = -6 + 3 = -3 degrees\nIt was -3 degrees Celsius in "
     "the morning.\n#### -3", -3),  # line 1113
    ("In total, that means Johnny picked up 500 + 1500+ 125= <<500+1500+125=2125>>2125 blocks\n#### 2,125",
     2125),  # line 146
    ("The total cost of the truck is $30,000+$7500+$2500+$2000+$1500=$<<30000+7500+2500+2000+1500=43500>>43,500\n"
     "#### 43,500", 43500),  # line 640
    # --- MATH test reference solutions ---
    ("of which $x=\\boxed{-\\frac{1}{8}}$ is the smaller solution.", F(-1, 8)),  # algebra/1019
    ("we find that $x=\\left(\\frac{125}{8}\\right)(12)=\\boxed{187.5}$ calories.", F(375, 2)),  # algebra/104
    ("$$16(\\$2.50)=\\boxed{\\$40}$$", 40),  # algebra/1043
    ("So, her investment is now worth $\\$10,\\!000 + \\$5,\\!000 = \\boxed{\\$15,\\!000}$.", 15000),  # algebra/155
    ("$$\\frac{B}{C}=\\frac{.7}{1.4}=\\frac{1}{2}$$ The ratio is $\\boxed{\\frac12}$.", F(1, 2)),  # algebra/1557
    ("halving one doubles the other, or increases it by $\\boxed{100\\%}$.", 100),  # algebra/2397
    ("we have $\\angle NGA = \\frac12\\cdot 78^\\circ = \\boxed{39^\\circ}$.", 39),  # geometry/102
    ("$598$ by $1.04$ to get $\\boxed{575\\text{ students}}$. Alternatively, we could solve the equation "
     "$x + 0.04x = 598$", 575),  # algebra/137
    ("This yields our solution $\\boxed{x = 4}$", 4),  # algebra/1464
    ("Since we want the largest value of $x$, our answer is $\\boxed 2$.", 2),  # MATH train/algebra/24014
    # --- form: the worked answers of the issue ---
    ("The answer is 10 - 3 = 7", 7),
    ("12 - 5", 5),  # a binary minus: the numbers are 12 and 5, never -5
    ("5-3", 3),
    ("The answer is 7 because 10 - 3 = 8.", 7),  # the expression ends where the commentary begins
    ("The answer is 1,234 apples, not 12.", 1234),
    ("Answer: 42\nThere are 7 ways to check.", 42),
    ("The answer is:\n42", 42),
    ("**Answer:** 42", 42),
    ("The final answer is 6. I hope it is correct.", 6),
    ("so \\boxed{\\frac{3}{4}} and later 7", F(3, 4)),
    ("\\boxed{10 - 3 = 7}", 7),
    ("3/4 of 20 is 15", 15),
    ("no digits here", None),
    # --- form: signs ---
    ("x = -5", -5),
    ("The answer is -5.", -5),
    ("It drops to (-3) degrees", -3),
    ("The answer is \u22125", -5),  # U+2212 MINUS SIGN
    ("The answer is $-5$.", -5),
    ("5-3=2", 2),
    # --- form: decimals, fractions, percents ---
    ("The answer is .5", F(1, 2)),
    ("Total: $12.50", F(25, 2)),
    ("Answer: 5.00", 5),
    ("The answer is 3/4.", F(3, 4)),
    ("The answer is $\\dfrac34$.", F(3, 4)),
    ("The answer is $\\frac12$ of a cake", F(1, 2)),
    ("The answer is $-\\frac{1}{2}$.", F(-1, 2)),
    ("The answer is 25%.", 25),
    ("\\boxed{25\\%}", 25),
    # --- form: separators, currency, TeX, units ---
    ("The answer is 1,234.", 1234),
    ("Answer: 1,234,567.5", F(2469135, 2)),
    ("The numbers are 1,2,3", 3),  # a list, not 123
    ("The answer is $1,000.00.", 1000),
    ("\\boxed{\\$5}", 5),
    ("The answer is $7$.", 7),
    ("The answer is 7 apples.", 7),
    ("Answer: 12 cm", 12),
    ("Each side is 3\\times4=12 cm", 12),
]


@pytest.mark.parametrize("text, value", EXTRACT)
def test_extract_number(text, value):
    assert extract_number(text) == value
    if value is not None:  # and the numeric grader agrees with the human reading
        assert numeric(text, str(value)).correct and not numeric(text, str(value + 1)).correct


@pytest.mark.parametrize("text, numbers", [
    ("12 - 5", [12, 5]),
    ("12 -5", [12, 5]),
    ("10 - 3 = 7", [10, 3, 7]),
    ("<<16-3-4=9>>", [16, 3, 4, 9]),
    ("x = -5, y=-2 and (-3)", [-5, -2, -3]),
    ("from 3-4 to -4", [3, 4, -4]),
    ("1,2,3 and 1, 2, 3", [1, 2, 3, 1, 2, 3]),
    ("1,234,567.5 or 1,2345", [F(2469135, 2), 1, 2345]),
    ("4102 / 100 = 41 and 3/4", [4102, 100, 41, F(3, 4)]),  # a spaced slash divides, 3/4 is one number
    ("$\\frac{3}{4} - \\frac12 = -\\dfrac{1}{4}$", [F(3, 4), F(1, 2), F(-1, 4)]),
    ("3\\times5=15, \\$1,\\!000", [3, 5, 15, 1000]),
    ("4 + 5 = 9. 2/3 of 9 is 5. 50% of 5 is 2.5", [4, 5, 9, F(2, 3), 9, 5, 50, 5, F(5, 2)]),  # test_profile's
    ("x2 + 3y", [3]),  # a digit inside a name is not a number
])
def test_numbers_in(text, numbers):
    assert numbers_in(text) == numbers


@pytest.mark.parametrize("text, value", [
    ("1,234", 1234), ("-3/4", F(-3, 4)), ("2.50", F(5, 2)), ("$7", 7), ("25%", 25), ("25\\%", 25),
    ("\\frac12", F(1, 2)), ("$-5$", -5), (" 0 ", 0), ("114.", 114),
    ("12 - 5", None), ("1,2", None), ("7 apples", None), ("x", None), ("", None),
])
def test_parse_number_reads_one_number_or_nothing(text, value):
    assert parse_number(text) == value


def test_numeric_grade_is_a_result_object_and_parse_failure_is_not_zero():
    g = numeric("so 47 + 38 = 85", "85")
    assert (g.score, g.answer, g.status) == (1.0, "85", "ok") and "85 == 85" in g.explanation
    assert numeric("It is 86.", "85").score == 0.0
    assert numeric("#### 0", "0").correct and numeric("The answer is 1,000.", "1,000").correct
    bad = numeric("I cannot tell.", "85")
    assert bad.score is None and bad.answer is None and bad.status == "parse_error" and not bad.correct
    with pytest.raises(ConfigError, match="not a number"):
        numeric("7", "seven")


# --- math: Hendrycks et al.'s normalisation, step by step ---
@pytest.mark.parametrize("raw, normal", [
    ("1\n000", "1000"),                          # linebreaks
    ("10\\!000", "10000"),                       # \!
    ("\\\\frac{1}{2}", "\\frac{1}{2}"),          # \\ -> \
    ("\\tfrac{1}{2}", "\\frac{1}{2}"), ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("\\left( 3, 4 \\right)", "(3,4)"),          # \left, \right, spaces
    ("90^{\\circ}", "90"), ("90^\\circ", "90"),  # degrees
    ("\\$40", "40"), ("$40$", "40"),             # dollar signs
    ("575\\text{ students}", "575"),             # _remove_right_units
    ("10\\%", "10"),
    ("x = .5", "\\frac{1}{2}"), ("\\{.5\\}", "\\{0.5\\}"), (".25", "0.25"),  # .5 -> 0.5 (then 0.5 -> 1/2)
    ("x = 4", "4"), ("k=15", "15"), ("y = 2x + 3", "2x+3"),  # a left side of at most 2 characters goes
    ("4x-5y=-50", "4x-5y=-50"),                   # a longer one stays
    ("\\sqrt3", "\\sqrt{3}"), ("\\sqrt 3", "\\sqrt{3}"), ("\\sqrt{3}", "\\sqrt{3}"),  # _fix_sqrt
    ("\\frac12", "\\frac{1}{2}"), ("\\frac1{72}", "\\frac{1}{72}"),                  # _fix_fracs
    ("\\frac{\\sqrt7}{14}", "\\frac{\\sqrt{7}}{14}"), ("\\tfrac{8\\pi}5", "\\frac{8\\pi}{5}"),
    ("0.5", "\\frac{1}{2}"),
    ("3/4", "\\frac{3}{4}"), ("-3/4", "\\frac{-3}{4}"), ("x/4", "x/4"),             # _fix_a_slash_b
    (" \\dfrac{1}{2}. ", "\\frac{1}{2}"),        # extra: a trailing full stop
    ("\\text{(A)}", "(A)"),                      # extra: \text{} unwrapped
])
def test_normalize_math(raw, normal):
    assert normalize_math(raw) == normal


@pytest.mark.parametrize("answer, reference, equal", [
    ("\\frac12", "\\frac{1}{2}", True),
    ("0.5", "\\frac{1}{2}", True),
    ("10\\text{ cm}", "10", True),
    ("x = 5", "5", True),
    ("\\sqrt3", "\\sqrt{3}", True),
    ("3/4", "\\frac34", True),
    ("90^\\circ", "90", True),
    ("\\dfrac{9}{7}", "\\frac97", True),
    ("0.75", "\\frac{3}{4}", True),               # numbers: both sides are one number
    ("1,000", "1000", True),
    ("\\$15,\\!000", "15,000", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
    ("2\\sqrt{2}", "2 \\sqrt 2", True),
    ("\\frac{1}{3}", "\\frac{1}{2}", False),
    ("0.5", "\\frac{1}{3}", False),
    ("1,2", "12", False),                         # a pair is not a number
    ("x+1", "x-1", False),
    ("\\sqrt{3}", "3", False),
    ("-5", "5", False),
    ("(1,2)", "(2,1)", False),
    ("x=5, y=3", "5", False),                     # two '=': no variable is dropped
    ("\\frac{3}{4}", "\\frac{4}{3}", False),
    ("90", "9", False),
    ("\\text{(A)}", "(B)", False),
])
def test_math_equivalence(answer, reference, equal):
    assert math(f"so $\\boxed{{{answer}}}$.", reference).correct is equal


def test_math_extraction():
    assert math("\\boxed{1} first, then \\boxed{2}", "2").correct  # the last box
    assert math("so \\fbox{7}.", "7").correct
    assert math("our answer is $\\boxed 2$.", "2").correct  # TeX without braces (MATH train/algebra/24014)
    assert math("The answer is $\\frac{\\pi}{2}$.\nDone.", "\\frac{\\pi}{2}").correct
    assert math("The answer is 0.5", "\\frac{1}{2}").correct
    assert math("The answer is 3.", "4").score == 0.0
    for unparsed in ("no answer here", "there are $\\boxed{}$ primes"):  # an empty box is no answer
        g = math(unparsed, "2")
        assert (g.score, g.answer, g.status) == (None, None, "parse_error")


def test_exact_and_regex_and_plugins():
    assert exact("  Paris. ", "paris").correct
    r = get_grader(r"regex:ANSWER:\s*(\w+)")
    assert r("blah ANSWER: yes", "Yes").correct
    assert r("nothing", "yes").status == "parse_error"
    assert get_grader("skillgap.grade:numeric") is numeric
    with pytest.raises(ConfigError, match="Did you mean 'numeric'"):
        get_grader("numerc")


# --- every reference solution of the real test sets grades as right ---
def test_gsm8k_reference_solutions_grade_correct():
    rows = [json.loads(line) for line in (shared_data() / "gsm8k" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 1319
    refs = [r["answer"].rsplit("####", 1)[1].strip() for r in rows]
    wrong = [(i, ref) for i, (r, ref) in enumerate(zip(rows, refs)) if not numeric(r["answer"], ref).correct]
    assert wrong == []
    # and the grader can say no: each solution against the next problem's answer is wrong (15 share one)
    assert sum(numeric(r["answer"], ref).correct for r, ref in zip(rows, refs[1:])) < 30


def test_math_reference_solutions_grade_correct():
    from skillgap.formats import read_items

    items, grader = read_items(shared_data() / "math" / "test.jsonl", "math")
    assert grader == "math" and len(items) == 5000
    wrong = [it.id for it in items if not math(it.completion, it.answer).correct]
    assert wrong == []
    assert sum(math(a.completion, b.answer).correct for a, b in zip(items, items[1:])) < 100
