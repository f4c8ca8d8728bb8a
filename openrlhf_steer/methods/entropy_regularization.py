"""Entropy bonus terms (hook d): fixed coefficient, and Skywork-OR1's adaptive coefficient (hook e).

Both add ``-coef * H_t`` per valid token, with H_t the current-policy full-vocabulary entropy
(carrying a gradient: compute it with ``entropy_grad=True``), aggregated like the policy loss.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

import torch

from openrlhf_steer.control.controllers import bang_bang_step
from openrlhf_steer.core.types import LossInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import (
    CONTROLLER_BOUNDARIES,
    Method,
    MethodConfig,
    check_choice,
    check_range,
    inputs_for_metric,
)

Tensor = torch.Tensor

SKYWORK = "Adaptive entropy control, Skywork-OR1, He et al., arXiv 2505.22312"


@dataclass
class EntropyLossConfig(MethodConfig):
    coef: float = field(
        default=0.001,
        metadata={
            "help": "Entropy bonus coefficient c in loss - c * H (verl/OpenRLHF entropy_coeff; older verl default "
            "0.001, newer 0; default 0.001)."
        },
    )

    def validate(self) -> None:
        check_range(self, "coef", None, None, hint="e.g. 0.001; negative values penalise entropy")


@register_method
class EntropyLoss(Method):
    """Fixed entropy bonus (Williams & Peng 1991; verl entropy_coeff)."""

    name = "entropy_loss"
    config_cls = EntropyLossConfig
    paper = "Entropy regularisation, Williams & Peng 1991; as coded in verl (entropy_coeff)"
    requires = ("entropy",)
    differentiates_entropy = True

    def extra_token_terms(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {"entropy_bonus": -self.config.coef * inputs.entropy}


def adaptive_entropy_update(
    coef: float, entropy: float, target: float, delta: float, coef_min: float, coef_max: float
) -> tuple:
    """Skywork-OR1 EntController: c <- clip(c + delta if H < H* else c - delta, c_min, c_max); enabled = H < H*.

    The shared bang-bang rule with drive H* - H (raising c raises the entropy)."""
    return bang_bang_step(coef, target - entropy, delta, coef_min, coef_max), entropy < target


@dataclass
class AdaptiveEntropyConfig(MethodConfig):
    target_entropy: float = field(
        default=0.2, metadata={"help": f"Target entropy H* ({SKYWORK}; scripts TGT_ENTROPY=0.2; default 0.2)."}
    )
    coef_init: float = field(
        default=0.0, metadata={"help": f"Initial coefficient c_0 ({SKYWORK}; scripts entropy_coeff=0; default 0.0)."}
    )
    coef_min: float = field(default=0.0, metadata={"help": f"Lower bound of c ({SKYWORK}; default 0.0)."})
    coef_max: float = field(
        default=0.005, metadata={"help": f"Upper bound of c ({SKYWORK}; scripts MAX_ENT_COEF=0.005; default 0.005)."}
    )
    coef_delta: float = field(
        default=1e-4, metadata={"help": f"Per-step change of c ({SKYWORK}; scripts DELTA_ENT_COEF=1e-4; default 1e-4)."}
    )
    entropy_metric: str = field(
        default="entropy/sampled_nll",
        metadata={
            "help": f"Step statistic compared with H*: the code uses -mean(old log-prob of the sampled tokens) = "
            f"entropy/sampled_nll; entropy/old_mean gives the full-vocabulary variant ({SKYWORK}; default "
            f"entropy/sampled_nll)."
        },
    )
    update_every: str = field(
        default="rollout_step",
        metadata={
            "help": f"When c updates: rollout_step = once per training step, after its whole update, from that "
            f"rollout's statistics ({SKYWORK}: the trainer updates its EntController after update_actor; Pos-Adv, "
            f"Jin et al., Sec. 3.2 Eq. 2: 'training step t'), or optimizer_step = after every optimizer step (N "
            f"times as often with N updates per rollout) (default rollout_step)."
        },
    )

    def validate(self) -> None:
        check_range(self, "target_entropy", 0.0, None, hint="nats, default 0.2")
        check_range(self, "coef_min", 0.0, None, hint="default 0")
        check_range(self, "coef_max", self.coef_min, None, hint="coef_max >= coef_min, default 0.005")
        check_range(self, "coef_init", self.coef_min, self.coef_max, hint="coef_min <= coef_init <= coef_max")
        check_range(self, "coef_delta", 0.0, None, hint="default 1e-4")
        check_choice(self, "update_every", CONTROLLER_BOUNDARIES)


@register_method
class AdaptiveEntropy(Method):
    """Adaptive entropy regularisation: -c * 1[H < H*] * H_t, c updated once per rollout step (hooks d, e).

    As in the reference, the statistic of step k sets the coefficient used at step k + 1, and the
    bonus is switched off entirely while the entropy is at or above the target.
    """

    name = "adaptive_entropy"
    config_cls = AdaptiveEntropyConfig
    paper = SKYWORK
    requires = ("entropy",)
    differentiates_entropy = True

    def __init__(self, config: Optional[AdaptiveEntropyConfig] = None):
        super().__init__(config)
        self.coef = float(self.config.coef_init)
        self.enabled = False

    def required_inputs(self) -> tuple:
        return tuple(dict.fromkeys(("entropy",) + inputs_for_metric(self.config.entropy_metric)))

    def extra_token_terms(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Dict[str, Tensor]:
        scale = self.coef if self.enabled else 0.0
        return {"entropy_bonus": -scale * inputs.entropy}

    def on_step_end(self, stats: Mapping[str, float]) -> None:
        key = self.config.entropy_metric
        if key not in stats:
            raise ValueError(
                f"adaptive_entropy needs stats[{key!r}] in on_step_end; got keys {sorted(stats)[:12]}...; "
                "set entropy_metric to one of them"
            )
        c = self.config
        self.coef, self.enabled = adaptive_entropy_update(
            self.coef, float(stats[key]), c.target_entropy, c.coef_delta, c.coef_min, c.coef_max
        )

    def controller_values(self) -> Dict[str, float]:
        return {"entropy_coef": self.coef, "entropy_enabled": float(self.enabled)}

    def state_dict(self) -> Dict[str, Any]:
        return {"coef": self.coef, "enabled": bool(self.enabled)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.coef = float(state["coef"])
        self.enabled = bool(state["enabled"])
