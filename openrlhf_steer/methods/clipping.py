"""Clip-range baselines (hook c, ``loss_config``): each overrides one field of the shared LossConfig.

- ``clip_higher``  eps_high = 0.28 (DAPO, Yu et al., arXiv 2503.14476): more room for low-p tokens to rise.
- ``clip_lower``   eps_low = 0.28 (Jin et al., arXiv 2511.05993): a wider lower clip.
- ``clip_tighter`` eps_low = 0.12 (Jin et al., arXiv 2511.05993): a narrower lower clip.
- ``clip_free``    no ratio clip at all, surrogate -A r (Jin et al., arXiv 2511.05993); dual clip off too.
"""

from dataclasses import dataclass, field, replace

from openrlhf_steer.core.types import LossConfig
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import Method, MethodConfig, check_range

JIN = "Jin et al., arXiv 2511.05993"


@dataclass
class ClipHigherConfig(MethodConfig):
    eps_high: float = field(
        default=0.28, metadata={"help": "Upper clip epsilon_high (DAPO, Yu et al., arXiv 2503.14476; default 0.28)."}
    )

    def validate(self) -> None:
        check_range(self, "eps_high", 0.0, None, hint="DAPO uses 0.28")


@register_method
class ClipHigher(Method):
    """Decoupled, higher upper clip (DAPO clip-higher)."""

    name = "clip_higher"
    config_cls = ClipHigherConfig
    paper = "DAPO, Yu et al., arXiv 2503.14476"

    def loss_config(self, base: LossConfig) -> LossConfig:
        return replace(base, eps_high=self.config.eps_high)


@dataclass
class ClipLowerConfig(MethodConfig):
    eps_low: float = field(
        default=0.28,
        metadata={"help": f"Lower clip epsilon_low, ratio >= 1 - eps_low ({JIN} Clip-Lower; default 0.28)."},
    )

    def validate(self) -> None:
        check_range(self, "eps_low", 0.0, 1.0, hint="Clip-Lower uses 0.28")


@register_method
class ClipLower(Method):
    """Clip-Lower: eps_low = 0.28."""

    name = "clip_lower"
    config_cls = ClipLowerConfig
    paper = JIN

    def loss_config(self, base: LossConfig) -> LossConfig:
        return replace(base, eps_low=self.config.eps_low)


@dataclass
class ClipTighterConfig(MethodConfig):
    eps_low: float = field(
        default=0.12, metadata={"help": f"Lower clip epsilon_low ({JIN} Clip-Tighter; default 0.12)."}
    )

    def validate(self) -> None:
        check_range(self, "eps_low", 0.0, 1.0, hint="Clip-Tighter uses 0.12")


@register_method
class ClipTighter(Method):
    """Clip-Tighter: eps_low = 0.12."""

    name = "clip_tighter"
    config_cls = ClipTighterConfig
    paper = JIN

    def loss_config(self, base: LossConfig) -> LossConfig:
        return replace(base, eps_low=self.config.eps_low)


@dataclass
class ClipFreeConfig(MethodConfig):
    """No options: removes the ratio clip and the dual clip."""


@register_method
class ClipFree(Method):
    """Clip-Free: the unclipped surrogate -A r (the log-ratio clamp stays, for numerical safety)."""

    name = "clip_free"
    config_cls = ClipFreeConfig
    paper = JIN

    def loss_config(self, base: LossConfig) -> LossConfig:
        return replace(base, clip=False, dual_clip=None)
