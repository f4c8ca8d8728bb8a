"""``steer_both``: the STEER authors' validation (zz-haooo/STEER @ b31df71, multi_datasets_eval.compute_score(
eval_method="both")). Verdicts worked out by hand from their code: the last 300 characters; DAPO's strict box
(last \\boxed{} in the last 100 characters == gold, character for character) OR their copy of the Qwen toolkit
(text cut at the first stop word, answer extracted and normalised once as for "math", compared with the gold as
given by ``math_equal``, whose symbolic step parses with ``parse_expr`` and then ``latex2sympy2_extended``: sympy's
``parse_latex`` refuses their antlr 4.9). The same cases run through their code in
tests/test_eval_grader_steer_oracle.py."""

import pytest

from openrlhf_steer_eval.graders.base import GraderConfig
from openrlhf_steer_eval.graders.math import MATH_GRADERS, grade_answer
from openrlhf_steer_eval.graders.math_qwen import math_equal
from openrlhf_steer_eval.graders.math_steer import qwen_side_prediction, steer_math_equal, too_expensive

FILLER = "z" * 150  # no digits, no "boxed": moves text out of the 100-character box window only
LONG_FILLER = "z" * 400  # moves text out of the 300-character tail

# The classes where the authors' parser chain (parse_expr, then latex2sympy2_extended with its default
# normalisation) decides otherwise than Qwen2.5-Math's (sympy parse_latex first). (response, gold, dapo, qwen).
STEER_CASES = [
    # degrees: the gold "48^\circ" is compared as given; latex2sympy2_extended drops "^\circ" -> 48
    ("\\boxed{48}", "48^\\circ", False, True),
    # dollars: the gold's "\$" is dropped by latex2sympy2_extended -> 6
    ("\\boxed{6}", "\\$6", False, True),
    # thousands "{,}": the gold is no float ("10{}000"), latex2sympy2_extended reads 10000; 9999 is within the
    # numeric step's rel. 1e-4 of it (|9999-10000| = 1 <= 1e-4 * 10000), 10002 is not
    ("\\boxed{9999}", "10{,}000", False, True),
    ("\\boxed{10002}", "10{,}000", False, False),
    ("\\boxed{14916}", "14{,}916", False, True),
    # \cfrac: parse_expr cannot read it, latex2sympy2_extended reads 1/3; parse_expr reads the gold "1/3"
    ("\\boxed{\\cfrac{1}{3}}", "1/3", False, True),
    # mixed numbers: latex2sympy2_extended reads "2\frac{1}{2}" as 5/2 (sympy's parser as 2*(1/2) = 1)
    ("\\boxed{2\\frac{1}{2}}", "\\frac{5}{2}", False, True),
    # \left( \right): the gold is an open interval for latex2sympy2_extended. The prediction "(1,2)" is a Python
    # tuple for parse_expr (not equal); "(3,\frac{\pi}{2})" is no Python, so latex2sympy2_extended reads it too
    ("\\boxed{(1,2)}", "\\left( 1, 2 \\right)", False, False),
    ("\\boxed{(3, \\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)", False, True),
    # sets: the prediction "{1,2,3}" (after strip_string) is a Python set whose str equals that of the gold's FiniteSet
    ("\\boxed{\\{1,2,3\\}}", "\\{3,2,1\\}", False, True),
    ("\\boxed{\\{1,2\\}}", "\\{1,2,3\\}", False, False),
    # ";"-lists: latex2sympy2_extended reads both as the set {1, 2}; a ";" list is not a "," list
    ("\\boxed{1;2}", "2;1", False, True),
    ("\\boxed{1;2;3}", "1,2,3", False, False),
    # chained inequalities: parse_expr fails on them (a Relational has no truth value), latex2sympy2_extended
    # reads both as (1 < x) & (x < 3); but an inequality is not the interval (1,3)
    ("\\boxed{1<x<3}", "1 < x < 3", False, True),
    ("\\boxed{1<x<3}", "(1,3)", False, False),
    # 2^{1024}: computed (no exponent guard below 10^7 digits), equal to 2^{1023}*2, not to 2^{1023}
    ("\\boxed{2^{1024}}", "2^{1023}\\cdot 2", False, True),
    ("\\boxed{2^{1024}}", "2^{1023}", False, False),
    ("\\boxed{2^{2^{10}}}", "2^{1024}", False, True),  # a tower, computed too
    # 9^(9^9) has 370 million digits: their subprocess is killed at 10 s, ours does not compute it; both wrong
    ("\\boxed{9^{9^{9}}}", "9^{387420489}", False, False),
    # equation chains: the extracted "3+3=2" and the gold (two "=") skip the equation rules; both are parsed as
    # equations (Eq(6, 2) evaluates to False) and differ
    ("\\boxed{z=3+3=2}", "z=1+1=2", False, False),
    # logs: strip_string removes spaces, "\log_2 8" becomes "\log_28", which latex2sympy2_extended refuses;
    # with braces it is log(8, 2) = 3
    ("\\boxed{\\log_2 8}", "3", False, False),
    ("\\boxed{\\log_{2} 8}", "3", False, True),
]


# (response, gold, dapo, qwen): the rule's parts
VERDICT_CASES = [
    ("so the result is \\boxed{42}", "42", True, True),
    ("\\boxed{42.0}", "42", False, True),  # DAPO needs "42"; Qwen normalises "42.0" to "42"
    ("\\boxed{41}", "42", False, False),
    ("\\boxed{0.27}", "27", False, True),  # Qwen's percentage leniency: 0.27 = 27/100
    # DAPO compares text; latex2sympy2_extended reads the gold's "{,}" as a thousands separator
    ("\\boxed{10000}", "10{,}000", False, True),
    ("\\boxed{10{,}000}", "10{,}000", True, True),  # the same text
    ("\\boxed{7}" + FILLER, "7", False, True),  # box outside DAPO's 100 characters, inside Qwen's 300
    ("\\boxed{7}" + LONG_FILLER, "7", False, False),  # outside both: Qwen finds no box and no number
    ("\\boxed{3}<|im_end|>then \\boxed{4}", "3", False, True),  # Qwen cuts at the stop word; DAPO sees "4"
    # the gold is not normalised: parse_expr reads the prediction as the symbol Evelyn, latex2sympy2_extended the
    # gold "\text{Evelyn}" as "evelyn" (lower case); their str() differ
    ("\\boxed{Evelyn}", "\\text{Evelyn}", False, False),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", True, False),  # Qwen's prediction loses its \text{}
    ("\\boxed{5 m}", "5", False, True),  # units stripped as for "math", on every set
]


@pytest.mark.parametrize("response,gold,dapo,qwen", VERDICT_CASES + STEER_CASES)
def test_verdicts(response, gold, dapo, qwen):
    v = grade_answer(response, gold, "steer_both")
    assert v.detail["dapo_correct"] is dapo
    assert v.detail["qwen_correct"] is (None if dapo else qwen)  # not computed once DAPO has decided
    assert v.correct is (dapo or qwen)
    assert steer_math_equal(qwen_side_prediction(response[-300:]), gold) is qwen  # the Qwen side on its own


def test_differs_from_the_qwen_grader_where_the_authors_code_does():
    # whole response vs last 300 characters
    assert grade_answer("\\boxed{7}" + LONG_FILLER, "7", "qwen").correct
    # the qwen grader normalises the gold ("\text{Evelyn}" -> "Evelyn"); the authors' code does not
    assert grade_answer("\\boxed{Evelyn}", "\\text{Evelyn}", "qwen").correct
    # Minerva Math keeps units in the qwen grader; the authors read every set as "math"
    assert not grade_answer("\\boxed{5 m}", "5", "qwen", keep_units=True).correct
    assert grade_answer("\\boxed{5 m}", "5", "steer_both", keep_units=True).correct


def test_the_qwen_step_differs_from_qwen_toolkits_only_in_parsing():
    # the same math_equal with Qwen2.5-Math's parser chain (sympy's parse_latex first) decides otherwise
    assert math_equal("9999", "10{,}000") is False and steer_math_equal("9999", "10{,}000") is True
    assert math_equal("\\log_28", "3") is True and steer_math_equal("\\log_28", "3") is False
    # cheap steps are shared: text, numbers with percentages, bracket leniency
    assert steer_math_equal("0.27", "27") and steer_math_equal("[1,2]", "(1,2)")


def test_huge_powers_count_as_the_authors_timeout():
    # their subprocess is killed after 10 s; a power with more than 10^7 digits is not computed, and is wrong
    assert too_expensive("9^{9^{9}}") and too_expensive("10^{10000001}")
    assert not too_expensive("2^{2^{10}}") and not too_expensive("10^{1000000}")
    assert steer_math_equal("9^{9^{9}}", "9^{9^{9}}")  # text equality comes first, as in theirs
    assert not steer_math_equal("9^{9^{9}}", "9^{387420489}")
    assert steer_math_equal("2^{2^{10}}", "2^{1024}")


def test_registered_as_a_grader_plugin():
    from openrlhf_steer_eval.benchmarks import make_grader

    assert "steer_both" in MATH_GRADERS
    grader = make_grader("steer_both", GraderConfig(workers=0))
    try:
        problems = [{"gold_answer": "27"}, {"gold_answer": "\\frac{1}{2}"}]
        verdicts = grader.grade(problems, [["\\boxed{27}", "\\boxed{26}"], ["\\boxed{0.5}"]])
        assert [[v.correct for v in row] for row in verdicts] == [[True, False], [True]]
    finally:
        grader.close()
