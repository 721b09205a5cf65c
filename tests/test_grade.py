from fractions import Fraction

import pytest

from skillgap.errors import ConfigError
from skillgap.grade import exact, extract_number, get_grader, numeric


@pytest.mark.parametrize("text, value", [
    ("47 + 38 = 114.", 114),
    ("The answer is 1,234 apples, not 12.", 1234),
    (r"so \boxed{\frac{3}{4}} and later 7", Fraction(3, 4)),
    ("Natalia sold 72 clips.\n#### 72", 72),
    ("5-3=2", 2),
    ("It drops to -7", -7),
    ("Total: $12.50", Fraction(25, 2)),
    ("3/4 of 20 is 15", 15),
    ("Answer: 42\nThere are 7 ways to check.", 42),
    ("no digits here", None),
])
def test_extract_number(text, value):
    assert extract_number(text) == value


def test_numeric_grade_is_a_result_object_and_parse_failure_is_not_zero():
    g = numeric("so 47 + 38 = 85", "85")
    assert (g.score, g.answer, g.status) == (1.0, "85", "ok") and "85 == 85" in g.explanation
    assert numeric("It is 86.", "85").score == 0.0
    bad = numeric("I cannot tell.", "85")
    assert bad.score is None and bad.status == "parse_error" and not bad.correct


def test_exact_and_regex_and_plugins():
    assert exact("  Paris. ", "paris").correct
    r = get_grader(r"regex:ANSWER:\s*(\w+)")
    assert r("blah ANSWER: yes", "Yes").correct
    assert r("nothing", "yes").status == "parse_error"
    assert get_grader("skillgap.grade:numeric") is numeric
    with pytest.raises(ConfigError, match="Did you mean 'numeric'"):
        get_grader("numerc")
