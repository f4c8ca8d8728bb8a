"""OpenRLHF reward file (``--reward.remote_url <this file>``) for DAPO-Math-17k training.

The papers train with verl's DAPO math reward (STEER: data_source ``math_dapo``; Jin et al.: veRL
with DAPO-Math-17K): the response's last ``Answer:`` line is normalised and compared as a string
with the normalised ground truth (all DAPO-Math-17k answers are integers); the reward is +1 when it
matches and -1 otherwise. This file implements that rule on its own (no verl import) so it can be
loaded in every vLLM engine process. ``scores`` (0/1) feeds OpenRLHF's dynamic filtering.

OpenRLHF calls ``reward_func(queries, prompts, labels)`` with one sample per call; ``queries`` are
the decoded prompt + response with special tokens kept.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

CORRECT_REWARD = 1.0
INCORRECT_REWARD = -1.0
TAIL_CHARS = 300  # only the end of a long response is searched, as in the DAPO reward
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>", "<pad>", "<|end_of_text|>")

_ANSWER_LINE = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")
_TEXT_MACRO = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_BOXED = re.compile(r"\\boxed\{(.*)\}")
_UNIT_WORDS = ("degrees", "degree", "cm", "meters", "units", "dollars", "inches", "feet", "mph", "km", "hours", "minutes")


def response_of(query: str, prompt: str) -> str:
    """The generated part of ``query`` (OpenRLHF passes prompt + response)."""
    if prompt and query.startswith(prompt):
        return query[len(prompt):]
    marker = "<|im_start|>assistant"  # Qwen chat template; other templates fall back to the whole text
    return query.rsplit(marker, 1)[-1] if marker in query else query


def extract_answer(response: str) -> Optional[str]:
    """Text after the last ``Answer:`` in the response's tail, or None."""
    hits = _ANSWER_LINE.findall(response[-TAIL_CHARS:])
    return hits[-1].strip() if hits else None


def normalize_answer(answer: str) -> str:
    """Canonical string form of a final answer (integers lose separators, LaTeX wrappers go)."""
    text = answer.strip()
    for end in END_MARKERS:  # the answer ends at the first end-of-turn / padding token
        text = text.split(end, 1)[0]
    text = text.strip().rstrip(".").strip()
    boxed = _BOXED.search(text)
    if boxed:
        text = boxed.group(1)
    text = text.strip("$ ")
    prev = None
    while prev != text:  # nested \text{\textbf{..}}
        prev, text = text, _TEXT_MACRO.sub(r"\1", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = text.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "").replace("\\ ", "")
    text = text.replace("^\\circ", "").replace("^{\\circ}", "").replace("\\%", "").replace("%", "")
    for word in _UNIT_WORDS:
        text = re.sub(rf"(?<=\d)\s*{word}\b", "", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 10,000 -> 10000
    text = re.sub(r"\s+", "", text)
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", text):
        number = float(text)
        text = str(int(number)) if number.is_integer() else repr(number)
    return text


def score(response: str, label: str) -> float:
    predicted = extract_answer(response)
    if predicted is None:
        return INCORRECT_REWARD
    return CORRECT_REWARD if normalize_answer(predicted) == normalize_answer(str(label)) else INCORRECT_REWARD


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str], **_: object) -> Dict[str, object]:
    import torch  # imported here: OpenRLHF's engines already have it; tests of the rule above do not need it

    rewards: List[float] = [score(response_of(q, p), l) for q, p, l in zip(queries, prompts, labels)]
    accuracy = [1.0 if r == CORRECT_REWARD else 0.0 for r in rewards]
    return {
        "rewards": torch.tensor(rewards, dtype=torch.float32),
        "scores": torch.tensor(accuracy, dtype=torch.float32),
        "extra_logs": {"dapo_acc": torch.tensor(accuracy, dtype=torch.float32)},
    }
