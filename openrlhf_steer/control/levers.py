"""Levers: the method option a target controller moves, with its valid range and its effect on entropy.

A lever names the registered methods that own it, reads and writes the live value on the built method
(the loss reads it at every call, so a new value applies from the next loss call on), and gives the
range that the method's own config validation accepts (``tests/test_control_targets.py`` checks each
range against ``validate()`` at its edges). ``direction`` is +1 when raising the lever raises the entropy.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Dict, Tuple, Type

from openrlhf_steer.control.controllers import Bounds

LEVERS: Dict[str, Type["Lever"]] = {}


def register_lever(cls: Type["Lever"]) -> Type["Lever"]:
    if cls.name in LEVERS and LEVERS[cls.name] is not cls:
        raise ValueError(f"lever name {cls.name!r} is registered twice")
    LEVERS[cls.name] = cls
    return cls


def get_lever(name: str) -> "Lever":
    try:
        return LEVERS[name]()
    except KeyError:
        raise ValueError(f"unknown lever {name!r}: choose one of {sorted(LEVERS)}") from None


class Lever:
    name: ClassVar[str] = ""
    methods: ClassVar[Tuple[str, ...]] = ()
    direction: ClassVar[int] = 1
    why: ClassVar[str] = ""  # where the direction comes from

    def check(self, method: Any) -> None:
        """Raise ValueError when the method's options keep the lever from acting (naming the fix)."""

    def bounds(self, method: Any) -> Bounds:
        raise NotImplementedError

    def get(self, method: Any) -> float:
        raise NotImplementedError

    def set(self, method: Any, value: float) -> None:
        raise NotImplementedError


class ConfigFieldLever(Lever):
    """A lever that is one field of the method's config."""

    field: ClassVar[str] = ""

    def get(self, method: Any) -> float:
        return float(getattr(method.config, self.field))

    def set(self, method: Any, value: float) -> None:
        setattr(method.config, self.field, float(value))


@register_lever
class PosAdvLambda(Lever):
    name = "pos_adv.lambda"
    methods = ("pos_adv_reweight",)
    direction = -1
    why = "Jin et al., arXiv 2511.05993, Sec. 7.3: lambda rises when the entropy exceeds the target"

    def check(self, method: Any) -> None:
        if method.config.schedule != "target":
            raise ValueError(
                f"lever pos_adv.lambda needs --entropy.pos_adv_reweight.schedule target (got "
                f"{method.config.schedule!r}; the target controller then sets lambda)"
            )

    def bounds(self, method: Any) -> Bounds:
        return Bounds(0.0, 1.0)  # PosAdvReweightConfig.validate: 0 <= lambda_init <= 1

    def get(self, method: Any) -> float:
        return float(method.lam)

    def set(self, method: Any, value: float) -> None:
        method.lam = float(value)


@register_lever
class PosAdvNegativeWeight(ConfigFieldLever):
    name = "pos_adv.negative_weight"
    methods = ("pos_adv_reweight",)
    field = "negative_weight"
    direction = 1
    why = "negative samples raise the entropy (Jin et al., arXiv 2511.05993; EntroPIC, arXiv 2511.15248)"

    def bounds(self, method: Any) -> Bounds:
        return Bounds(0.0, math.inf)  # PosAdvReweightConfig.validate: negative_weight >= 0


@register_lever
class EntropyLossCoef(ConfigFieldLever):
    name = "entropy_loss.coef"
    methods = ("entropy_loss",)
    field = "coef"
    direction = 1
    why = "the bonus -c H raises the entropy for c > 0 (Williams & Peng 1991)"

    def bounds(self, method: Any) -> Bounds:
        return Bounds(-math.inf, math.inf)  # EntropyLossConfig.validate accepts any number


@register_lever
class SteerLambdaMin(ConfigFieldLever):
    name = "steer.lambda_min"
    methods = ("steer",)
    field = "lambda_min"
    direction = -1
    why = "[assumed]: a lower lambda_min damps the large-|Omega| tokens, mostly entropy-lowering under GRPO"

    def bounds(self, method: Any) -> Bounds:
        # SteerConfig.validate: 0 < lambda_min <= 1 and lambda_min <= lambda_max; the open end nudged inside
        return Bounds(math.nextafter(0.0, 1.0), min(1.0, float(method.config.lambda_max)))


@register_lever
class ClipEpsLow(ConfigFieldLever):
    name = "clip.eps_low"
    methods = ("clip_lower", "clip_tighter")
    field = "eps_low"
    direction = -1
    why = "Jin et al., arXiv 2511.05993: Clip-Lower (wider eps_low) intensifies the entropy collapse"

    def bounds(self, method: Any) -> Bounds:
        return Bounds(0.0, 1.0)  # ClipLowerConfig / ClipTighterConfig.validate: 0 <= eps_low <= 1


@register_lever
class ClipEpsHigh(ConfigFieldLever):
    name = "clip.eps_high"
    methods = ("clip_higher",)
    field = "eps_high"
    direction = 1
    why = "DAPO, Yu et al., arXiv 2503.14476, Sec. 3.1: clip-higher keeps the entropy up"

    def bounds(self, method: Any) -> Bounds:
        return Bounds(0.0, math.inf)  # ClipHigherConfig.validate: eps_high >= 0
