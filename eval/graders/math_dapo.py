"""DAPO's math answer rules (verl ``utils/reward_score/math_dapo.py``), as pure functions; our own code.

Both rules look only at the last 300 characters of a response (``TAIL_CHARS``):
* ``strict_box``: the last ``\\boxed{...}`` (brace-matched) inside the last 100 of those characters must
  equal the gold answer character for character (no normalisation). The STEER authors' repository makes
  this the default of ``math_dapo.compute_score`` and uses it for training and, with Qwen's toolkit, for
  validation (``multi_datasets_eval.compute_score``).
* ``minerva``: the text after the last ``Answer:`` (case-insensitive, to the end of its line), normalised
  by ``normalize_final_answer``, must equal the normalised gold. Upstream verl's default (DAPO's own rule).

Rewards are +1 (correct) and -1 (wrong, or no answer found).
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

TAIL_CHARS = 300  # "The longest answer in MATH-500 has 159 characters" (verl)
BOX_WINDOW = 100  # strict_box reads the last 100 characters of the tail
INVALID = "[INVALID]"
CORRECT_REWARD, INCORRECT_REWARD = 1.0, -1.0
_BOX_OPEN = "\\boxed{"
_ANSWER_LINE = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")

# normalize_final_answer: plain substring replacements, in this order ...
_REPLACEMENTS = (
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
)
# ... then these substrings deleted, in this order (units, spacing macros, "{,}" separators, ...)
_DELETIONS = (
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    "\\mathrm{th}",
    "^\\circ",
    "^{\\circ}",
    "\\;",
    ",\\!",
    "{,}",
    '"',
    "\\dots",
)


def last_boxed(text: str) -> Optional[str]:
    """``\\boxed{...}`` of the last ``\\boxed{`` in ``text`` (braces matched), or None if it never closes."""
    start = text.rfind(_BOX_OPEN)
    if start < 0:
        return None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def boxed_content(boxed: str) -> str:
    return boxed[len(_BOX_OPEN) : -1]


def normalize_final_answer(answer: str) -> str:
    """DAPO's (Minerva's) answer normalisation."""
    s = answer.split("=")[-1]
    for old, new in _REPLACEMENTS:
        s = s.replace(old, new)
    for gone in _DELETIONS:
        s = s.replace(gone, "")
    s = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", s)  # the first $...$ span, if any, is the answer
    for macro in ("text", "textbf", "overline"):
        s = re.sub(r"(\\" + macro + r"\{)(.*?)(\})", "\\2", s)
    s = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", s)
    s = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", s)  # \frac12 -> \frac{1}{2}
    s = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", s)  # \sqrt2 -> \sqrt{2}
    s = s.replace("$", "")
    if s.replace(",", "").isdigit():
        s = s.replace(",", "")
    return s.strip()


def strict_box_match(response: str, gold: str) -> Tuple[bool, str]:
    """(correct, extracted) under the strict-box rule; ``response`` should already be the 300-char tail."""
    boxed = last_boxed(response[-BOX_WINDOW:])
    extracted = boxed_content(boxed) if boxed is not None else INVALID
    return extracted == gold, extracted


def minerva_match(response: str, gold: str) -> Tuple[bool, str]:
    """(correct, normalised prediction) under the ``Answer:`` rule."""
    lines = _ANSWER_LINE.findall(response)
    prediction = normalize_final_answer(lines[-1] if lines else INVALID)
    return prediction == normalize_final_answer(gold), prediction


RULES = {"strict_box": strict_box_match, "minerva": minerva_match}


def dapo_score(response: str, gold: str, rule: str = "strict_box") -> Tuple[float, str]:
    """(reward, extracted): verl's ``math_dapo.compute_score`` on a decoded response (no special tokens)."""
    correct, extracted = RULES[rule](response[-TAIL_CHARS:], gold)
    return (CORRECT_REWARD if correct else INCORRECT_REWARD), extracted
