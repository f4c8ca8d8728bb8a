"""KL penalty to a reference policy as a loss term (GRPO's use_kl_loss), k1 / k2 / k3 estimators."""

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch

from openrlhf_steer.core.estimators import KL_ESTIMATORS, kl_estimate
from openrlhf_steer.core.types import LossInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import Method, MethodConfig, check_choice, check_range

Tensor = torch.Tensor


@dataclass
class KlPenaltyConfig(MethodConfig):
    coef: float = field(
        default=0.001,
        metadata={
            "help": "beta in loss + beta * KL(pi || pi_ref) (GRPO, Shao et al., arXiv 2402.03300 uses 0.04; verl "
            "kl_loss_coef default 0.001; default 0.001)."
        },
    )
    estimator: str = field(
        default="k3",
        metadata={
            "help": "k1 (log ratio) | k2 (squared / 2) | k3 ((r - 1) - log r, GRPO's low-variance KL) (Schulman 2020 "
            "'Approximating KL divergence'; default k3)."
        },
    )
    clamp: Optional[float] = field(
        default=10.0,
        metadata={"help": "Bound |KL_t| <= clamp per token as verl's low_var_kl does; None disables (default 10.0)."},
    )

    def validate(self) -> None:
        check_range(self, "coef", 0.0, None, hint="e.g. 0.001 or 0.04")
        check_choice(self, "estimator", KL_ESTIMATORS)
        if self.clamp is not None:
            check_range(self, "clamp", 0.0, None, low_open=True, hint="or None to disable")


@register_method
class KlPenalty(Method):
    """beta * k(log pi, log pi_ref) per valid token, aggregated like the policy loss (hook d)."""

    name = "kl_penalty"
    config_cls = KlPenaltyConfig
    paper = "KL loss of GRPO, Shao et al., arXiv 2402.03300; estimators from Schulman (2020)"
    requires = ("ref_log_probs",)

    def extra_token_terms(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Dict[str, Tensor]:
        kl = kl_estimate(inputs.log_probs, inputs.ref_log_probs, self.config.estimator, self.config.clamp)
        return {"kl": self.config.coef * kl}
