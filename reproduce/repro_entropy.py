"""The final training entropy of a run, as Pos-Adv's tables report it (App. D.3: EMA-smoothed, coefficient 0.6).

OpenRLHF's trainer logs every rollout step's status to the console (``Global step N: {...}``), which the
pipeline keeps in the row's ``train.log``; the entropy is read from there, so no tensorboard reader is needed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

# The logged entropy a table's Entropy column reads when its config names none (the Pos-Adv recipe's choice).
DEFAULT_METRIC = "entropy/current_mean"
_STEP = re.compile(r"Global step (\d+): (\{.*\})")
_NUMBER = r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"


def entropy_series(log_text: str, key: str) -> List[Tuple[int, float]]:
    """``(step, value)`` of ``key`` in every ``Global step N: {...}`` line, in log order (a resumed run's
    repeated steps keep their last value)."""
    pattern = re.compile(r"['\"]" + re.escape(key) + r"['\"]\s*:\s*(?:np\.float\d+\()?" + _NUMBER)
    by_step = {}
    for line in log_text.splitlines():
        m = _STEP.search(line)
        if not m:
            continue
        v = pattern.search(m.group(2))
        if v:
            by_step[int(m.group(1))] = float(v.group(1))
    return sorted(by_step.items())


def ema(values: Sequence[float], coef: float) -> Optional[float]:
    """Exponential moving average s_t = coef * s_{t-1} + (1 - coef) * x_t with s_0 = x_0 (App. D.3's smoothing,
    coefficient 0.6; the formula's symbols are lost in the text, this is the standard form)."""
    if not 0.0 <= coef < 1.0:
        raise ValueError(f"EMA coefficient {coef} must be in [0, 1)")
    smoothed: Optional[float] = None
    for x in values:
        smoothed = x if smoothed is None else coef * smoothed + (1.0 - coef) * x
    return smoothed


def final_training_entropy(log_path: Path, key: str, coef: float, max_step: Optional[int] = None) -> Optional[float]:
    """EMA-smoothed entropy at the last logged step (at most ``max_step``), or None when the log has none."""
    if not Path(log_path).is_file():
        return None
    series = [
        (s, v)
        for s, v in entropy_series(Path(log_path).read_text(errors="replace"), key)
        if max_step is None or s <= max_step
    ]
    return ema([v for _, v in series], coef)
