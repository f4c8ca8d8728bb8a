"""Entropy advantage (Cheng et al., "Reasoning with Exploration: An Entropy Perspective", arXiv 2506.14758).

Per valid token the advantage becomes ``A'_t = A_t + min(alpha * H_t.detach(), |A_t| / kappa)``: an
entropy bonus, clipped so that for kappa > 1 it never flips the sign of A (and is 0 when A = 0).
Used in both branches of the clipped surrogate. No official code exists; this follows the paper's
formula as described in third-party implementations (see ../shared/research/methods.md section 6).
"""

from dataclasses import dataclass, field

import torch

from openrlhf_steer.core.types import LossInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import Method, MethodConfig, check_choice, check_range

Tensor = torch.Tensor
PAPER = "Entropy advantage, Cheng et al., arXiv 2506.14758"


def entropy_shaped_advantages(advantages: Tensor, entropy: Tensor, alpha: float, kappa: float) -> Tensor:
    """A + min(alpha * H, |A| / kappa), entropy detached."""
    bonus = torch.minimum(alpha * entropy.detach(), advantages.abs() / kappa)
    return advantages + bonus


@dataclass
class EntropyAdvantageConfig(MethodConfig):
    alpha: float = field(
        default=0.4,
        metadata={
            "help": f"Entropy scale alpha in min(alpha * H, |A| / kappa) ({PAPER}; default 0.4, unverified against the "
            f"paper text)."
        },
    )
    kappa: float = field(
        default=2.0,
        metadata={
            "help": f"Clip kappa > 1 keeps the bonus below |A| / kappa so the sign of A never flips ({PAPER}; default "
            f"2.0)."
        },
    )
    entropy_source: str = field(
        default="current",
        metadata={
            "help": "Entropy H: current (training forward, detached; third-party code) or old (rollout policy) "
            "(default current)."
        },
    )

    def validate(self) -> None:
        check_range(self, "alpha", 0.0, None, hint="default 0.4")
        check_range(self, "kappa", 1.0, None, low_open=True, hint="kappa > 1 keeps the advantage sign, default 2")
        check_choice(self, "entropy_source", ("current", "old"))


@register_method
class EntropyAdvantage(Method):
    """Entropy-based advantage bonus (hook a, ``shape_advantages``)."""

    name = "entropy_advantage"
    config_cls = EntropyAdvantageConfig
    paper = PAPER

    def shape_advantages(self, inputs: LossInputs, advantages: Tensor) -> Tensor:
        return entropy_shaped_advantages(advantages, self.source_entropy(inputs), self.config.alpha, self.config.kappa)
