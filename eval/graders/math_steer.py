"""The STEER authors' validation rule (zz-haooo/STEER @ b31df71, ``verl/utils/reward_score/multi_datasets_eval.py:
compute_score(eval_method="both")`` with its vendored ``qwen_math_eval_toolkit``), our own code.

Only the last 300 characters of a response are read. The response is correct when either
  * DAPO's strict-box rule holds: the last ``\\boxed{...}`` in its last 100 characters equals the gold
    answer exactly (``math_dapo.strict_box_match``), or
  * the vendored Qwen2.5-Math toolkit says so: the text is cut at the first stop word, the answer is
    extracted as for the "math" set (units stripped on every benchmark, normalised once) and compared
    with the gold *as given* (the gold is not normalised) by ``math_equal``; a comparison that runs past
    10 s counts as wrong (the authors join a subprocess with that timeout).

The authors' ``math_equal`` is Qwen2.5-Math's (``math_qwen``) with one change: their copy imports
``latex2sympy2_extended`` in place of Qwen's vendored ``latex2sympy2``. Its symbolic step tries sympy's
``parse_latex``, ``parse_expr`` and then ``latex2sympy2_extended.latex2sympy``. In the environment their
requirements.txt gives (unpinned ``latex2sympy2_extended`` and ``math_verify``; ``hydra-core``, which pins
``antlr4-python3-runtime==4.9.*``), sympy's ``parse_latex`` always raises: sympy accepts only antlr 4.11
(1.12 to 1.14 alike). So the effective chain is ``parse_expr``, then ``latex2sympy2_extended`` with its
default normalisation (which reads ``\\$6``, ``48^\\circ``, ``10{,}000``, ``\\cfrac``, ``2\\frac{1}{2}``,
``\\left(\\right)``, ``\\{1,2,3\\}``, ``;``-lists and chained inequalities). That chain is
``STEER_PARSERS`` below.

Versions. We use the project's pins: latex2sympy2_extended 1.11.0 (what math-verify 0.9.0 requires),
sympy 1.14.0, antlr 4.13.2. The authors' requirements pin none of these; installed on their commit date
(2026-01-15) they give the same latex2sympy2_extended and math_verify (both released 2026-01-10) and, through
hydra-core, antlr 4.9.3. We ran their code unmodified under both antlr versions: the same verdicts on all
1,419 pairs we compared, equal to this module's (docs/eval.md, "Which grader equals which reference";
tests/test_eval_grader_steer_oracle.py). Under the 2025 releases (latex2sympy2_extended 1.10.2, sympy 1.13.1)
their code differs on 9 of those pairs (unit words such as "pct", solutions given as golds), none of them
among Qwen2.5-Math's 800 MATH outputs.

Cost guard. Their subprocess is killed after 10 s; ours runs in-process under SIGALRM, which cannot stop a
single huge integer power inside sympy/Python. An integer power tower whose value would have more than
``MAX_POWER_DIGITS`` digits is therefore not parsed and the Qwen step is wrong, as their timeout makes it;
smaller powers (``2^{1024}``, ``2^{2^{10}}``) are computed, as theirs are.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Tuple

from .math_dapo import TAIL_CHARS, strict_box_match
from .math_qwen import math_equal, parse_first, python_expr
from .math_text import extract_answer

QWEN_TIMEOUT = 10.0  # seconds; the authors run math_equal in a subprocess joined with this timeout
STOP_WORDS = ("</s>", "<|im_end|>", "<|endoftext|>")
MAX_POWER_DIGITS = 10**7  # ~1 s of big-integer arithmetic; far beyond any answer, far below their 10 s
_BEFORE_ASSISTANT = re.compile(r"^.*?<\|im_start\|>assistant", flags=re.DOTALL)


class WouldTimeOut(BaseException):
    """The authors' subprocess would run past its 10 s here. BaseException: the toolkit's ``except``
    clauses (which we mirror with ``except Exception``) must not swallow it."""


# ----------------------------------------------------------------------------- parser chain
def _latex2sympy_extended(s: str):
    from latex2sympy2_extended import latex2sympy

    return latex2sympy(s)


STEER_PARSERS = (python_expr, _latex2sympy_extended)  # sympy's parse_latex: always refused there (see above)

# integer power towers: "2^{10}", "2^{2^{10}}", "9^9^9", "2**10**3" (braces optional)
_POWER_TOWER = re.compile(r"\d+(?:\s*(?:\^|\*\*)\s*\{?\s*\d+)+")
_INTEGER = re.compile(r"\d+")


def _power_log10(numbers: list) -> float:
    """log10 of ``n0^(n1^(...))`` (about its number of digits), inf past a float's range."""
    log10_value = math.log10(numbers[-1]) if numbers[-1] else -math.inf
    for base in reversed(numbers[:-1]):
        if base <= 1:  # 1^x = 1; 0^x = 0 (0^0 = 1)
            log10_value = 0.0 if base == 1 or log10_value == -math.inf else -math.inf
            continue
        exponent = 10.0**log10_value if log10_value < 300 else math.inf
        log10_value = exponent * math.log10(base)
    return log10_value


def too_expensive(s: str) -> bool:
    """True when ``s`` holds an integer power with more than ``MAX_POWER_DIGITS`` digits."""
    for tower in _POWER_TOWER.findall(s):
        numbers = [int(n) for n in _INTEGER.findall(tower)]
        if _power_log10(numbers) > MAX_POWER_DIGITS:
            return True
    return False


def steer_parse(s: str):
    if too_expensive(s):
        raise WouldTimeOut(s)
    return parse_first(s, STEER_PARSERS)


def steer_math_equal(prediction: str, gold: str) -> bool:
    """The authors' ``math_equal(prediction, gold)`` (no time limit; see ``steer_both``)."""
    try:
        return bool(math_equal(prediction, gold, parse=steer_parse))
    except WouldTimeOut:
        return False


# ----------------------------------------------------------------------------- the rule
def qwen_side_prediction(tail: str) -> str:
    """The answer the authors' Qwen step extracts from the response tail."""
    text = _BEFORE_ASSISTANT.sub("<|im_start|>assistant", tail, count=1)
    for stop in STOP_WORDS:
        if stop in text:
            text = text.split(stop)[0].strip()
    return extract_answer(text, keep_units=False)


def steer_both(response: str, gold: str, qwen_equal: Callable[[str, str], bool]) -> Tuple[bool, str, dict]:
    """(correct, extracted, detail); ``qwen_equal(prediction, gold)`` is ``steer_math_equal`` under a time
    limit (False past ``QWEN_TIMEOUT`` or on an exception, as the authors' subprocess)."""
    tail = response[-TAIL_CHARS:]
    dapo_correct, dapo_extracted = strict_box_match(tail, gold)
    qwen_prediction = qwen_side_prediction(tail)
    # a DAPO match decides the verdict: the Qwen comparison (up to 10 s of sympy) is not run, so that the
    # pool's per-sample timeout can never turn such a sample wrong; qwen_correct is then None
    qwen_correct = None if dapo_correct else bool(qwen_equal(qwen_prediction, gold))
    detail = {"dapo_correct": dapo_correct, "qwen_correct": qwen_correct, "dapo_extracted": dapo_extracted}
    return dapo_correct or bool(qwen_correct), qwen_prediction, detail
