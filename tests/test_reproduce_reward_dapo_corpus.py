"""The training reward against verl's ``math_dapo.compute_score`` (STEER repository copy) on real-style responses.

Every expected reward is worked out by hand from that function's rules (comment per case):
  minerva:    the last ``(?i)Answer\\s*:\\s*([^\\n]+)`` match in the last 300 characters (else "[INVALID]") and the
              label both go through normalize_final_answer: keep the text after the last "="; replace "an ", "a ",
              ".$"->"$", "\\$", "\\ ", " ", "mbox"->"text", "\\text{and}"->","; delete unit words (square, dollars,
              cm, meters, degrees, units, ...), "\\text{}", "^\\circ", "{,}", ...; keep the first $...$; unwrap
              \\text{}, \\textbf{}, \\overline{}, \\boxed{}; \\fracab -> \\frac{a}{b}, \\sqrta -> \\sqrt{a}; drop "$";
              drop commas of an all-digit answer; strip. Equal strings: +1, else -1.
  strict_box: the last "\\boxed{" (braces matched) in the last 100 of those 300 characters must hold exactly the
              label; no normalisation.
When the STEER repository is available (``$STEER_REPO``, default ``../.mirror/zz-haooo+STEER/repo``), the same
corpus is also scored by the authors' file itself.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steertest_reproduce import load_reward_module

R = load_reward_module()
PAD = "x" * 120  # text after an answer: pushes it out of strict_box's 100-character window, not out of 300

MINERVA = [
    # (response, label, reward)
    ("So 2+3=5.\nAnswer: 5", "5", 1.0),  # plain match
    ("Answer: 4\nwait, recheck\nAnswer: 5", "5", 1.0),  # the last Answer: line counts
    ("Answer: 5\nAnswer: 6", "5", -1.0),  # ... even when it is the wrong one
    ("Answer: 5.", "5", -1.0),  # "5." stays "5." (only ".$" loses its period)
    ("Answer: 5.0", "5", -1.0),  # no numeric comparison: "5.0" != "5"
    ("Answer: $10,000$", "10000", 1.0),  # first $...$ kept, "$" dropped, all-digit "10,000" loses its comma
    ("Answer: 10{,}000", "10000", 1.0),  # "{,}" is deleted
    ("Answer: 10000", "10{,}000", 1.0),  # the label is normalised the same way
    ("Answer: 10,000", "10000", 1.0),
    ("Answer: \\boxed{42}", "42", 1.0),  # \boxed{} unwrapped
    ("Answer: \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", 1.0),  # greedy unwrap keeps the inner braces
    ("Answer: 90^\\circ", "90", 1.0),  # "^\circ" deleted
    ("Answer: 5 degrees", "5", 1.0),  # spaces go, then "degrees"
    ("Answer: 5 cm", "5", 1.0),  # "5cm" -> "cm" deleted
    ("Answer: 5 \\text{ cm}", "5", 1.0),  # "5\text{cm}" -> "5\text{}" -> "\text{}" deleted
    ("Answer: \\text{5 dollars}", "5", 1.0),  # "\text{5dollars}" -> "\text{5}" -> unwrapped
    ("Answer: 100 square units", "100", 1.0),  # "square" and "units" deleted
    ("Answer: 3 meters", "3", 1.0),
    ("Answer: 12 apples", "12", -1.0),  # "apples" is no unit word: "12apples"
    ("Answer: \\$25", "25", 1.0),  # "\$" deleted
    ("Answer: 5\\%", "5", -1.0),  # no rule for "\%"
    ("Answer: \\dfrac{1}{2}", "\\frac{1}{2}", -1.0),  # no \dfrac rule, and "frac{" is already braced
    ("Answer: \\frac12", "\\frac{1}{2}", 1.0),  # shorthand \frac12 -> \frac{1}{2}
    ("Answer: 2\\sqrt2", "2\\sqrt{2}", 1.0),  # shorthand \sqrt2 -> \sqrt{2}
    ("Answer: $\\frac{3}{4}$", "\\frac{3}{4}", 1.0),
    ("Answer: 3/4", "\\frac{3}{4}", -1.0),  # no slash rule
    ("Answer: 0.5", "\\frac{1}{2}", -1.0),  # strings, not values
    ("Answer: \\text{(B)}", "B", -1.0),  # "(B)" != "B"
    ("Answer: $5$ or $6$", "5", 1.0),  # "$5$or$6$": only the first $...$ survives
    ("Answer: x = 3", "3", 1.0),  # text after the last "="
    ("Answer: x=5, y=6", "6", 1.0),  # ... which is the last of several
    ("Answer: The value is 3", "3", -1.0),  # words stay: "Thevalueis3"
    ("Answer: \\(34\\)", "34", -1.0),  # "\(" and "\)" are not removed
    ("ANSWER:5", "5", 1.0),  # case-insensitive, spaces optional
    ("Answer: -5", "-5", 1.0),
    ("the answer is 5", "5", -1.0),  # no "Answer:" line: "[INVALID]"
    ("Thus \\boxed{5}", "5", -1.0),  # a box alone is no Answer: line
    ("Answer: 5\n" + "y" * 300, "5", -1.0),  # the Answer: line is outside the last 300 characters
]

STRICT_BOX = [
    ("... so the result is \\boxed{42}", "42", 1.0),
    ("\\boxed{42.0}", "42", -1.0),  # exact text
    ("\\boxed{ 42}", "42", -1.0),
    ("Answer: 42", "42", -1.0),  # no box
    ("\\boxed{42}" + PAD, "42", -1.0),  # the box is not in the last 100 characters
    ("\\boxed{1} and then \\boxed{2}", "2", 1.0),  # the last box
    ("\\boxed{1} and then \\boxed{2}", "1", -1.0),
    ("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}", 1.0),  # braces matched
    ("\\boxed{10{,}000}", "10000", -1.0),  # no normalisation ...
    ("\\boxed{10{,}000}", "10{,}000", 1.0),
    ("\\boxed{5 \\text{ cm}}", "5", -1.0),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", -1.0),
    ("we stop here \\boxed{42", "42", -1.0),  # never closed
    ("\\boxed 42", "42", -1.0),  # only "\boxed{" opens a box
    ("\\fbox{42}", "42", -1.0),
]


@pytest.mark.parametrize("response,label,reward", MINERVA)
def test_minerva_rule(response, label, reward):
    assert R.score(response, label, "minerva") == reward


@pytest.mark.parametrize("response,label,reward", STRICT_BOX)
def test_strict_box_rule(response, label, reward):
    assert R.score(response, label, "strict_box") == reward


def test_corpus_size():
    assert len(MINERVA) + len(STRICT_BOX) >= 30
    assert {r for *_, r in MINERVA} == {1.0, -1.0} and {r for *_, r in STRICT_BOX} == {1.0, -1.0}


def _authors_math_dapo():
    default = Path(__file__).resolve().parents[2] / ".mirror" / "zz-haooo+STEER" / "repo"
    repo = Path(os.environ.get("STEER_REPO", default))
    rel = "verl/utils/reward_score/math_dapo.py"
    if (repo / rel).is_file():
        source = (repo / rel).read_text(encoding="utf-8")
    elif repo.is_dir():
        shown = subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{rel}"], capture_output=True, text=True)
        if shown.returncode != 0:
            return None
        source = shown.stdout
    else:
        return None
    spec = importlib.util.spec_from_loader("steer_authors_math_dapo", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{repo}/{rel}", "exec"), module.__dict__)  # needs only re and typing
    sys.modules.pop("steer_authors_math_dapo", None)
    return module


def test_the_authors_function_agrees_on_the_corpus():
    authors = _authors_math_dapo()
    if authors is None:
        pytest.skip("the STEER repository is not available (set STEER_REPO)")
    for rule, cases in (("minerva", MINERVA), ("strict_box", STRICT_BOX)):
        for response, label, reward in cases:
            theirs = authors.compute_score(response, label, strict_box_verify=(rule == "strict_box"))["score"]
            assert theirs == reward == R.score(response, label, rule), (rule, response, label)
    # their default is the strict box
    assert authors.compute_score("\\boxed{7}", "7")["score"] == 1.0
    assert authors.compute_score("Answer: 7", "7")["score"] == -1.0
