"""Target curves over training progress, and the EMA of the measured entropy.

Progress ``p = k / total_steps`` in [0, 1], with ``k`` the rollout steps finished before the measurement
(the first measurement is at p = 0). A schedule maps p to a target entropy in nats.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

Schedule = Callable[[float], float]


def parse_knots(text: str) -> List[Tuple[float, float]]:
    """``"0:0.6,0.5:0.4,1:0.2"`` -> [(0.0, 0.6), (0.5, 0.4), (1.0, 0.2)]; progress strictly increasing in [0, 1]."""
    knots = []
    for item in [t for t in str(text).split(",") if t.strip()]:
        if item.count(":") != 1:
            raise ValueError(f"knot {item!r} is not progress:value (e.g. 0.5:0.4)")
        p, v = item.split(":")
        knots.append((float(p), float(v)))
    if len(knots) < 2:
        raise ValueError(f"knots={text!r} needs at least two progress:value pairs, e.g. 0:0.6,1:0.2")
    ps = [p for p, _ in knots]
    if any(b <= a for a, b in zip(ps, ps[1:])) or ps[0] < 0 or ps[-1] > 1:
        raise ValueError(f"knots={text!r}: progress must increase strictly within [0, 1]")
    return knots


def piecewise_linear(knots: Sequence[Tuple[float, float]], progress: float) -> float:
    """Linear interpolation between knots; constant before the first and after the last."""
    if progress <= knots[0][0]:
        return knots[0][1]
    for (p0, v0), (p1, v1) in zip(knots, knots[1:]):
        if progress <= p1:
            return v0 + (v1 - v0) * (progress - p0) / (p1 - p0)
    return knots[-1][1]


def cosine(start: float, end: float, progress: float) -> float:
    """``end + (start - end) * (1 + cos(pi p)) / 2``: start at p = 0, end at p = 1."""
    p = min(1.0, max(0.0, progress))
    return end + (start - end) * (1.0 + math.cos(math.pi * p)) / 2.0


def _constant(options: Any) -> Schedule:
    return lambda progress: float(options.start)


def _linear(options: Any) -> Schedule:
    end = options.start if options.end is None else options.end
    knots = parse_knots(options.knots) if options.knots else [(0.0, float(options.start)), (1.0, float(end))]
    return lambda progress: piecewise_linear(knots, progress)


def _cosine(options: Any) -> Schedule:
    end = options.start if options.end is None else options.end
    return lambda progress: cosine(float(options.start), float(end), progress)


# name -> builder(options) -> schedule(progress)
SCHEDULES: Dict[str, Callable[[Any], Schedule]] = {"constant": _constant, "linear": _linear, "cosine": _cosine}


def build_schedule(options: Any) -> Schedule:
    try:
        return SCHEDULES[options.schedule](options)
    except KeyError:
        raise ValueError(f"unknown target schedule {options.schedule!r}: choose one of {sorted(SCHEDULES)}") from None


class EmaSmoother:
    """``m_k = beta * m_{k-1} + (1 - beta) * H_k`` with ``m_0 = H_0``; beta = 0 passes H through."""

    def __init__(self, beta: float):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"ema beta={beta} must be in [0, 1) (0 = no smoothing)")
        self.beta = float(beta)
        self.value: Optional[float] = None

    def update(self, measured: float) -> float:
        self.value = measured if self.value is None else self.beta * self.value + (1.0 - self.beta) * measured
        return self.value

    def state_dict(self) -> Dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        value = state.get("value")
        self.value = None if value is None else float(value)
