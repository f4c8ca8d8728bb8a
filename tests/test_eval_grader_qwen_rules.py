"""The ``qwen`` grader's rules, one hand-worked case per behaviour of Qwen2.5-Math's toolkit that our former
grader did not share (parser.py ``extract_answer``/``strip_string``, grader.py ``math_equal``, math_eval.py's
second normalisation of predictions). Each expected value is worked out from the toolkit's rules in the comment.
"""

import pytest

from openrlhf_steer_eval.graders.math import grade_answer
from openrlhf_steer_eval.graders.math_number_words import convert_number_words
from openrlhf_steer_eval.graders.math_qwen import choice_letter, math_equal, parse_number
from openrlhf_steer_eval.graders.math_text import extract_answer, normalize_answer


@pytest.mark.parametrize(
    "response,expected",
    [
        # Minerva pattern: the FIRST "final answer is $", cut at the first "$. I hope" after it
        ("The final answer is $3$. I hope it is correct. Later: the final answer is $4$. I hope so.", "3"),
        # only "boxed" counts: an \fbox is no box, so the last number ("1" of "x+1") is taken
        ("so we get \\fbox{x+1}", "1"),
        # an unclosed box: everything after "boxed{" is the answer
        ("therefore \\boxed{12", "12"),
        # "\boxed 5$": up to the next "$"
        ("thus $\\boxed 5$.", "5"),
        # "boxed" at the very end: "" at once
        ("the answer should be boxed", ""),
        # "the answer is": after the LAST occurrence; ":" and one "." trimmed
        ("the answer is 3. So the answer is: 7.", "7"),
        # last number: commas removed first, so "1,234" is 1234
        ("we get 3, and 1,234 in total", "1234"),
    ],
)
def test_extraction(response, expected):
    assert extract_answer(response) == expected


@pytest.mark.parametrize(
    "raw,expected,keep_units",
    [
        ("a+b", "+b", False),  # "a" is a MathQA unit word: removed where it stands alone
        ("a+b", "a+b", True),  # Minerva Math skips the unit list
        ("5 m", "5", False),
        ("two", "2", False),  # number words (word2number)
        ("007", "7", False),  # word2number reads an all-digit string as int
        ("1 and 2", "12", False),  # every "and" goes, then the spaces
        ("2x+y=3", "2x+3", False),  # "y=" is deleted wherever it is
        ("x = 1, y = 2", "x=1,y=2", False),  # "x =" with a space survives the first pass ...
        ("x=1,y=2", "1,2", False),  # ... and goes in the second
        ("(-\\infty, \\infty)", "(-\\infty,\\infty)", False),  # the R rule needs the spaceless form
        ("x \\in [0, 1]", "x\\in[0,1]", False),  # likewise "x\\in"
        ("10{,}000", "10{,}000", False),  # no rule for "{,}"
        ("\\sqrt23", "\\sqrt{23}", False),  # \sqrt takes the whole word
        ("01/2", "01/2", False),  # a/b only when the integers print back the same
        ("-1/2", "\\frac{-1}{2}", False),
        ("\\dfrac12", "\\frac{1}{2}", False),
        ("2.50", "2.50", False),  # only trailing zeros right after the point go ...
        ("2.00", "2", False),  # ... i.e. all of them
        ("\\text{Evelyn}", "Evelyn", False),  # a \text{} that is the whole answer stays (as its content)
        ("5\\text{ cm}", "5", False),
        ("k =3", "3", False),  # a left side of <= 2 characters, spaces counted, is dropped
        ("\\emptyset", "{}", False),
        ("infinity", "\\infty", False),
    ],
)
def test_normalisation(raw, expected, keep_units):
    assert normalize_answer(raw, keep_units=keep_units) == expected


@pytest.mark.parametrize(
    "gold,prediction,expected",
    [
        ("10{,}000", "9999", False),  # the gold is no number; sympy's LaTeX parser reads it as 10
        ("10{,}000", "10000", False),
        ("10{,}000", "10", True),  # ... which this prediction equals
        ("C", "C) 12", True),  # a letter gold: the last stand-alone capital A-E of the prediction
        ("C", "c", True),  # case-insensitive text equality comes first
        ("27", "0.27", True),  # percentage leniency: gold/100
        ("27", "2700", True),  # gold*100
        ("1", "1.0001", True),  # |diff| <= 1e-4 * max
        ("1", "1.00011", False),
        ("5%", "0.05", True),  # "5%" reads as 0.05
        ("[0,1)", "[0,1]", True),  # bracket leniency: outer brackets stripped from both
        ("(0,1)", "[0,1]", True),  # no stripping here ("(" gold), but element-wise 0=0, 1=1
        ("(1,2)", "(2,1)", False),
        ("\\frac{1}{2}", "0.5", True),  # symbolic: simplify(1/2 - 0.5) == 0
        ("x=2", "2", True),  # a short left side against a plain value
        ("2x+y=3", "y+2x=3", True),  # equations as a - (b)
    ],
)
def test_math_equal(gold, prediction, expected):
    assert math_equal(prediction, gold) is expected


def test_choice_and_number_readers():
    assert choice_letter("The answer is (B) or maybe D") == "D"
    assert choice_letter("12") == "12"
    assert parse_number("1,234") == 1234.0 and parse_number("5\\%") == 0.05 and parse_number("\\frac{1}{2}") is None


def test_prediction_is_normalised_twice_gold_once():
    # extraction gives "x=1,y=2" (spaces made the first pass keep "x="); run_execute's second pass gives "1,2";
    # the gold "(1,2)" is normalised once. Bracket leniency then compares "1,2" with "1,2".
    v = grade_answer("So \\boxed{x = 1, y = 2}.", "(1,2)", "qwen")
    assert v.correct and v.extracted == "1,2"
    # A gold is normalised only once: "x = 1, y = 2" stays "x=1,y=2", which "(1,2)" does not equal.
    assert not grade_answer("So \\boxed{(1,2)}.", "x = 1, y = 2", "qwen").correct


def test_minerva_keeps_units_in_both():
    # Minerva Math: no unit list, so "5 m" stays "5m" and is no number; the text "5m" equals the gold.
    assert grade_answer("\\boxed{5 m}", "5 m", "qwen", keep_units=True).correct
    assert not grade_answer("\\boxed{5}", "5 m", "qwen", keep_units=True).correct
    assert grade_answer("\\boxed{5}", "5 m", "qwen", keep_units=False).correct  # units stripped elsewhere


def test_choice_gold_reads_the_letter_from_the_response():
    # a gold letter and a non-letter prediction: math_eval.py re-reads the response with choice_answer_clean
    # (the first letter after the last "answer is")
    assert grade_answer("I think the answer is (B), not C.", "B", "qwen").correct


@pytest.mark.parametrize(
    "text,expected",
    [
        ("twenty-one", "21"),
        ("007", "7"),
        ("point", "0"),
        ("three point one four", "3.14"),
        ("two apples", "2"),
        ("thousand million", "thousand million"),
        ("one hundred twenty three thousand four hundred five", "123405"),
        ("-5", "-5"),
        ("x plus one", "1"),
        ("seven seven", "14"),
    ],
)
def test_number_words(text, expected):
    assert convert_number_words(text) == expected


def test_number_words_match_word2number_when_installed():
    w2n = pytest.importorskip("word2number.w2n")
    import itertools

    vocab = ["one", "two", "twenty", "hundred", "thousand", "million", "billion", "point", "five", "x", "and", "7"]
    for n in (1, 2, 3):
        for words in itertools.product(vocab, repeat=n):
            text = " ".join(words)
            try:
                expected = str(w2n.word_to_num(text))
            except Exception:
                expected = text
            assert convert_number_words(text) == expected, text
