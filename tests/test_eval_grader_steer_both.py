"""``steer_both``: the STEER authors' validation (multi_datasets_eval.compute_score(eval_method="both")).
Verdicts worked out by hand: the last 300 characters; DAPO's strict box (last \\boxed{} in the last 100
characters == gold, character for character) OR the Qwen toolkit (text cut at the first stop word, answer
extracted and normalised once as for "math", compared with the gold as given)."""

import pytest

from openrlhf_steer_eval.graders.base import GraderConfig
from openrlhf_steer_eval.graders.math import MATH_GRADERS, grade_answer
from openrlhf_steer_eval.graders.math_qwen import math_equal
from openrlhf_steer_eval.graders.math_steer import qwen_side_prediction

FILLER = "z" * 150  # no digits, no "boxed": moves text out of the 100-character box window only
LONG_FILLER = "z" * 400  # moves text out of the 300-character tail


@pytest.mark.parametrize(
    "response,gold,dapo,qwen",
    [
        ("so the result is \\boxed{42}", "42", True, True),
        ("\\boxed{42.0}", "42", False, True),  # DAPO needs "42"; Qwen normalises "42.0" to "42"
        ("\\boxed{41}", "42", False, False),
        ("\\boxed{0.27}", "27", False, True),  # Qwen's percentage leniency: 0.27 = 27/100
        ("\\boxed{10000}", "10{,}000", False, False),  # DAPO compares text; sympy reads the gold as 10
        ("\\boxed{10{,}000}", "10{,}000", True, True),  # the same text
        ("\\boxed{7}" + FILLER, "7", False, True),  # box outside DAPO's 100 characters, inside Qwen's 300
        ("\\boxed{7}" + LONG_FILLER, "7", False, False),  # outside both: Qwen finds no box and no number
        ("\\boxed{3}<|im_end|>then \\boxed{4}", "3", False, True),  # Qwen cuts at the stop word; DAPO sees "4"
        ("\\boxed{Evelyn}", "\\text{Evelyn}", False, False),  # the gold is not normalised: "\text{Evelyn}" stays
        ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", True, False),  # Qwen's prediction loses its \text{}
        ("\\boxed{5 m}", "5", False, True),  # units stripped as for "math", on every set
    ],
)
def test_verdicts(response, gold, dapo, qwen):
    v = grade_answer(response, gold, "steer_both")
    assert v.detail["dapo_correct"] is dapo
    assert v.detail["qwen_correct"] is (None if dapo else qwen)  # not computed once DAPO has decided
    assert v.correct is (dapo or qwen)
    assert math_equal(qwen_side_prediction(response[-300:]), gold) is qwen  # the Qwen side on its own


def test_differs_from_the_qwen_grader_where_the_authors_code_does():
    # whole response vs last 300 characters
    assert grade_answer("\\boxed{7}" + LONG_FILLER, "7", "qwen").correct
    # the qwen grader normalises the gold ("\text{Evelyn}" -> "Evelyn"); the authors' code does not
    assert grade_answer("\\boxed{Evelyn}", "\\text{Evelyn}", "qwen").correct
    # Minerva Math keeps units in the qwen grader; the authors read every set as "math"
    assert not grade_answer("\\boxed{5 m}", "5", "qwen", keep_units=True).correct
    assert grade_answer("\\boxed{5 m}", "5", "steer_both", keep_units=True).correct


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
