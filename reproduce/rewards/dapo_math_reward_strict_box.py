"""OpenRLHF reward file: DAPO's math reward under the ``strict_box`` rule, the STEER authors' training reward.

The STEER repository's ``math_dapo.compute_score`` defaults to ``strict_box_verify=True``; the rule is fixed
here rather than through an environment variable, which Ray workers on a pre-started cluster do not inherit.
Everything else is ``dapo_math_reward.py`` beside this file (OpenRLHF loads reward files by path).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Dict, Sequence

_spec = importlib.util.spec_from_file_location("dapo_math_reward", Path(__file__).with_name("dapo_math_reward.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)

RULE = "strict_box"


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str], **kwargs: object
) -> Dict[str, object]:
    kwargs.pop("rule", None)
    return _base.reward_func(queries, prompts, labels, rule=RULE, **kwargs)
