"""Intervals and verdicts over seeds (pure functions): mean +- 2 standard errors, and the side it lies on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from openrlhf_steer.core.stats import standard_error

SE_MULTIPLIER = 2.0  # the interval is mean +- 2 SE across seeds


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def as_list(self) -> list:
        return [self.low, self.high]


def mean_interval(values: Sequence[float], multiplier: float = SE_MULTIPLIER) -> Interval:
    """mean +- multiplier * SE, SE = sample standard deviation (n - 1) / sqrt(n); needs >= 2 finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(xs) < 2:
        raise ValueError(f"an interval over seeds needs >= 2 finite values, got {list(values)}")
    n = len(xs)
    mean = sum(xs) / n
    half = multiplier * float(standard_error(xs))
    return Interval(mean, mean - half, mean + half, n)


def paired_differences(a: Sequence[float], b: Sequence[float]) -> list:
    """a_i - b_i per seed (the two runs share the start model and the seed)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return [float(x) - float(y) for x, y in zip(a, b)]


def verdict(interval: Interval, *, above: Optional[float] = None, below: Optional[float] = None) -> bool:
    """True when the whole interval lies above ``above`` and/or below ``below`` (strictly)."""
    if above is None and below is None:
        raise ValueError("a verdict needs a bound: above=..., below=... or both")
    ok = True
    if above is not None:
        ok = ok and interval.low > above
    if below is not None:
        ok = ok and interval.high < below
    return ok


def format_interval(interval: Interval, digits: int = 3) -> Tuple[str, str]:
    """('mean', '[low, high]') as printed in the claims table."""
    return f"{interval.mean:+.{digits}f}", f"[{interval.low:+.{digits}f}, {interval.high:+.{digits}f}]"


def tracking_error(rows: Sequence[Mapping[str, float]], tail_fraction: float = 0.1) -> float:
    """Mean of |measured - target| / target over the last ``tail_fraction`` of the metric rows (at least one).

    Each row carries the entropy target's logged ``controller/target/target`` (the curve at that rollout step)
    and ``controller/target/measured`` (that step's rollout entropy, the value the controller compared with it).
    """
    if not rows:
        raise ValueError("tracking_error needs metric rows with controller/target/* values, got none")
    tail = list(rows)[-max(1, int(len(rows) * tail_fraction)) :]
    errors = []
    for row in tail:
        target, measured = float(row["controller/target/target"]), float(row["controller/target/measured"])
        if not target > 0:
            raise ValueError(f"tracking_error: the target must be > 0 nats, got {target} at step {row.get('step')}")
        errors.append(abs(measured - target) / target)
    return sum(errors) / len(errors)


def claim_header(claim: Any) -> Dict[str, Any]:
    """The fields every claims-table row starts with, for training and mechanism claims alike."""
    return {
        "id": claim.id,
        "level": claim.level,
        "claim": claim.claim,
        "paper_ref": claim.paper_ref,
        "statistic": claim.statistic,
    }
