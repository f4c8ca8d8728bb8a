"""The STEER authors' validation rule (zz-haooo/STEER ``verl/utils/reward_score/multi_datasets_eval.py:
compute_score(eval_method="both")``), our own code.

Only the last 300 characters of a response are read. The response is correct when either
  * DAPO's strict-box rule holds: the last ``\\boxed{...}`` in its last 100 characters equals the gold
    answer exactly (``math_dapo.strict_box_match``), or
  * the vendored Qwen2.5-Math toolkit says so: the text is cut at the first stop word, the answer is
    extracted as for the "math" set (units stripped on every benchmark, normalised once) and compared
    with the gold *as given* (the gold is not normalised) by ``math_equal``; a comparison that runs past
    10 s counts as wrong.
"""

from __future__ import annotations

import re
from typing import Callable, Tuple

from .math_dapo import TAIL_CHARS, strict_box_match
from .math_text import extract_answer

QWEN_TIMEOUT = 10.0  # seconds; the authors run math_equal in a subprocess joined with this timeout
STOP_WORDS = ("</s>", "<|im_end|>", "<|endoftext|>")
_BEFORE_ASSISTANT = re.compile(r"^.*?<\|im_start\|>assistant", flags=re.DOTALL)


def qwen_side_prediction(tail: str) -> str:
    """The answer the authors' Qwen step extracts from the response tail."""
    text = _BEFORE_ASSISTANT.sub("<|im_start|>assistant", tail, count=1)
    for stop in STOP_WORDS:
        if stop in text:
            text = text.split(stop)[0].strip()
    return extract_answer(text, keep_units=False)


def steer_both(response: str, gold: str, qwen_equal: Callable[[str, str], bool]) -> Tuple[bool, str, dict]:
    """(correct, extracted, detail); ``qwen_equal(prediction, gold)`` is ``math_equal`` under a time limit."""
    tail = response[-TAIL_CHARS:]
    dapo_correct, dapo_extracted = strict_box_match(tail, gold)
    qwen_prediction = qwen_side_prediction(tail)
    # a DAPO match decides the verdict: the Qwen comparison (up to 10 s of sympy) is not run, so that the
    # pool's per-sample timeout can never turn such a sample wrong; qwen_correct is then None
    qwen_correct = None if dapo_correct else bool(qwen_equal(qwen_prediction, gold))
    detail = {"dapo_correct": dapo_correct, "qwen_correct": qwen_correct, "dapo_extracted": dapo_extracted}
    return dapo_correct or bool(qwen_correct), qwen_prediction, detail
