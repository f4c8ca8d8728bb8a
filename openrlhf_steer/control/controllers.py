"""Feedback controllers: from the entropy error to the next value of a lever.

Every controller sees one number per update, the *drive* ``d = direction * (target - measured)``, where
``direction`` is +1 when raising the lever raises the entropy and -1 when it lowers it (the lever says
which). ``d > 0`` therefore always means "move the lever up". Controllers are small pure classes with
``state_dict`` / ``load_state_dict`` so that a resumed run continues exactly; the registry maps a name to
a class (``--entropy.target.controller``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Mapping, Type


@dataclass(frozen=True)
class Bounds:
    """Closed interval [low, high] a lever may take (open bounds of a method's validation are nudged inside)."""

    low: float
    high: float

    def clamp(self, value: float) -> float:
        return min(self.high, max(self.low, value))

    @property
    def finite(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


def bang_bang_step(value: float, drive: float, step: float, low: float, high: float) -> float:
    """One bang-bang update: ``clip(value + step, low, high)`` if ``drive > 0`` else ``clip(value - step, ...)``.

    The rule shared by Pos-Adv's entropy-guided lambda (Jin et al., arXiv 2511.05993, Sec. 7.3: lambda rises
    when the entropy exceeds the target, otherwise it falls; drive = H - target) and Skywork-OR1's adaptive
    entropy coefficient (He et al., arXiv 2505.22312: c rises while H < H*, otherwise it falls; drive =
    H* - H). At zero drive (H equal to the target) both fall, as both references write it.
    """
    new = value + step if drive > 0 else value - step
    return min(high, max(low, new))


CONTROLLERS: Dict[str, Type["Controller"]] = {}


def register_controller(cls: Type["Controller"]) -> Type["Controller"]:
    if cls.name in CONTROLLERS and CONTROLLERS[cls.name] is not cls:
        raise ValueError(f"controller name {cls.name!r} is registered twice")
    CONTROLLERS[cls.name] = cls
    return cls


class Controller:
    """Base: holds the lever value; ``update(drive)`` returns the next one, always inside ``bounds``."""

    name: ClassVar[str] = ""
    reference: ClassVar[str] = ""

    def __init__(self, bounds: Bounds, initial: float):
        if not bounds.low <= bounds.high:
            raise ValueError(f"controller bounds [{bounds.low}, {bounds.high}] are empty: need low <= high")
        self.bounds = bounds
        self.value = bounds.clamp(float(initial))

    @classmethod
    def from_options(cls, options: Any, bounds: Bounds, initial: float) -> "Controller":
        return cls(bounds, initial)

    def update(self, drive: float) -> float:
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.value = float(state["value"])


@register_controller
class BangBang(Controller):
    """Fixed step toward the target each update, clipped to the bounds (:func:`bang_bang_step`)."""

    name = "bang_bang"
    reference = (
        "Pos-Adv entropy-guided lambda, Jin et al., arXiv 2511.05993, Sec. 7.3; Skywork-OR1 adaptive entropy, "
        "He et al., arXiv 2505.22312"
    )

    def __init__(self, bounds: Bounds, initial: float, step_size: float):
        super().__init__(bounds, initial)
        if not step_size >= 0:
            raise ValueError(f"bang_bang step_size={step_size} must be >= 0")
        self.step_size = float(step_size)

    @classmethod
    def from_options(cls, options: Any, bounds: Bounds, initial: float) -> "BangBang":
        return cls(bounds, initial, options.step_size)

    def update(self, drive: float) -> float:
        self.value = bang_bang_step(self.value, drive, self.step_size, self.bounds.low, self.bounds.high)
        return self.value


@register_controller
class ProportionalIntegral(Controller):
    """Positional PI: ``u_k = clip(u_0 + kp * d_k + ki * I_k, low, high)`` with ``I_k = I_{k-1} + d_k``.

    Where we follow EntroPIC (Yang et al., arXiv 2511.15248): the controlled variable is the error between
    the target and the measured entropy, a proportional plus an integral term set a coefficient that moves
    the weight of positive / negative samples (here: any lever), and the integral lets it hold an arbitrary
    target with zero steady-state error. Where we differ, or the paper's text did not reach us: its update
    equation and gains were not in the excerpts we could read (we read the abstract and the project page),
    so the positional form above, the output limits (the lever's bounds) and the anti-windup are ours
    [assumed]. Anti-windup is conditional integration: when the unclipped output would leave the bounds
    and the drive pushes further out, the integral keeps its previous value, so a long saturation does not
    store error that must be unwound later.
    """

    name = "pi"
    reference = "EntroPIC, Yang et al., arXiv 2511.15248 (PI on the entropy error; form and anti-windup ours)"

    def __init__(self, bounds: Bounds, initial: float, kp: float, ki: float):
        super().__init__(bounds, initial)
        if not (kp >= 0 and ki >= 0):
            raise ValueError(f"pi gains kp={kp}, ki={ki} must be >= 0 (the lever's direction sets the sign)")
        self.kp, self.ki = float(kp), float(ki)
        self.base = self.value  # u_0: the lever's value when the controller starts
        self.integral = 0.0

    @classmethod
    def from_options(cls, options: Any, bounds: Bounds, initial: float) -> "ProportionalIntegral":
        return cls(bounds, initial, options.kp, options.ki)

    def update(self, drive: float) -> float:
        candidate = self.integral + drive
        raw = self.base + self.kp * drive + self.ki * candidate
        winding_up = (raw > self.bounds.high and drive > 0) or (raw < self.bounds.low and drive < 0)
        if not winding_up:
            self.integral = candidate
        self.value = self.bounds.clamp(self.base + self.kp * drive + self.ki * self.integral)
        return self.value

    def state_dict(self) -> Dict[str, Any]:
        return {"value": self.value, "base": self.base, "integral": self.integral}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.value = float(state["value"])
        self.base = float(state["base"])
        self.integral = float(state["integral"])


@register_controller
class Hysteresis(Controller):
    """Two-threshold switch: the lever jumps to ``high`` when ``d > band`` and to ``low`` when ``d < -band``;
    inside the band it keeps its last setting.

    AEPO (QwenLong-L1.5) switches negative-gradient clipping on and off between two entropy thresholds; here
    the thresholds are ``target -/+ band`` (so they follow a schedule) and the two settings are the lever's
    bounds. Until the first switch the lever keeps its initial value.
    """

    name = "hysteresis"
    reference = "AEPO's entropy switch, QwenLong-L1.5 (two thresholds)"

    def __init__(self, bounds: Bounds, initial: float, band: float):
        super().__init__(bounds, initial)
        if not band >= 0:
            raise ValueError(f"hysteresis band={band} must be >= 0 (nats)")
        self.band = float(band)
        self.mode = 0  # +1 high, -1 low, 0 not switched yet

    @classmethod
    def from_options(cls, options: Any, bounds: Bounds, initial: float) -> "Hysteresis":
        return cls(bounds, initial, options.band)

    def update(self, drive: float) -> float:
        if drive > self.band:
            self.mode = 1
        elif drive < -self.band:
            self.mode = -1
        if self.mode:
            self.value = self.bounds.high if self.mode > 0 else self.bounds.low
        return self.value

    def state_dict(self) -> Dict[str, Any]:
        return {"value": self.value, "mode": self.mode}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.value = float(state["value"])
        self.mode = int(state["mode"])


def build_controller(name: str, options: Any, bounds: Bounds, initial: float) -> Controller:
    """The registered controller ``name`` with its gains read from ``options`` (an EntropyTargetConfig)."""
    try:
        cls = CONTROLLERS[name]
    except KeyError:
        raise ValueError(f"unknown controller {name!r}: choose one of {sorted(CONTROLLERS)}") from None
    return cls.from_options(options, bounds, initial)
