"""OpenRLHF reward file (``--reward.remote_url <this file>``) for DAPO-Math-17k training.

Both papers train with verl's DAPO math reward, ``math_dapo.compute_score`` (+1 correct, -1 otherwise),
on the last 300 characters of the response decoded without special tokens. It has two rules
(``openrlhf_steer_eval.graders.math_dapo``), chosen with ``OPENRLHF_STEER_DAPO_RULE``:
  * ``minerva`` (default): the last ``Answer:`` line, normalised, equals the normalised label. Upstream
    verl's default (DAPO's own rule, matching the DAPO-Math-17k prompt's "Answer:" line); Jin et al.
    train with veRL on DAPO-Math-17K [assumed: their text names veRL and the data set, not the rule].
  * ``strict_box``: the last ``\\boxed{}`` in the last 100 characters equals the label exactly. The STEER
    authors' repository (zz-haooo/STEER, verl/utils/reward_score/math_dapo.py) makes
    ``strict_box_verify=True`` the default, and its reward manager calls it with defaults, so STEER's
    training reward is this rule (the authors' code; the paper does not state it).
``scores`` (0/1) feeds OpenRLHF's dynamic filtering. ``dapo_math_reward_strict_box.py`` beside this file
fixes the rule to ``strict_box`` for runs whose Ray workers do not see the launcher's environment.

OpenRLHF calls ``reward_func(queries, prompts, labels)`` with one sample per call; ``queries`` are the
decoded prompt + response with special tokens kept, which are removed here as verl's decoding does.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Sequence

from openrlhf_steer_eval.graders.math_dapo import CORRECT_REWARD, RULES, TAIL_CHARS, dapo_score  # noqa: F401

RULE_ENV = "OPENRLHF_STEER_DAPO_RULE"
DEFAULT_RULE = "minerva"
_SPECIAL_TOKEN = re.compile(r"<\|[^<>|\s]{1,40}\|>|</s>|<pad>")


def active_rule() -> str:
    rule = os.environ.get(RULE_ENV, "") or DEFAULT_RULE
    if rule not in RULES:
        raise ValueError(f"{RULE_ENV}={rule!r}: choose one of {', '.join(RULES)}")
    return rule


def response_of(query: str, prompt: str) -> str:
    """The generated part of ``query`` (OpenRLHF passes prompt + response), without special tokens."""
    if prompt and query.startswith(prompt):
        response = query[len(prompt) :]
    else:
        marker = "<|im_start|>assistant"  # Qwen chat template; other templates fall back to the whole text
        response = query.rsplit(marker, 1)[-1] if marker in query else query
    return _SPECIAL_TOKEN.sub("", response)


def score(response: str, label: str, rule: str = DEFAULT_RULE) -> float:
    """verl's ``math_dapo.compute_score(response, label)["score"]`` under ``rule``."""
    return dapo_score(response, str(label), rule)[0]


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str], rule: str = "", **_: object
) -> Dict[str, object]:
    import torch  # imported here: OpenRLHF's engines already have it; tests of the rule above do not need it

    rule = rule or active_rule()
    rewards: List[float] = [score(response_of(q, p), label, rule) for q, p, label in zip(queries, prompts, labels)]
    accuracy = [1.0 if r == CORRECT_REWARD else 0.0 for r in rewards]
    return {
        "rewards": torch.tensor(rewards, dtype=torch.float32),
        "scores": torch.tensor(accuracy, dtype=torch.float32),
        "extra_logs": {"dapo_acc": torch.tensor(accuracy, dtype=torch.float32)},
    }
