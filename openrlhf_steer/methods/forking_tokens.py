"""Forking tokens / the 80-20 rule (Wang et al., "Beyond the 80/20 Rule", arXiv 2506.01939).

Only the top-rho fraction of valid tokens by entropy keep their policy-gradient loss:
``mask_t = 1[H_t >= tau]``, ``tau = quantile(H[valid], 1 - rho)`` (ties at tau kept), the token-mean
denominator unchanged (all valid tokens). The quantile is over the valid tokens only, of one loss
call (micro_batch) or of the optimizer-step window (mini_batch; under data parallelism the window's
entropies are gathered from every rank, so tau is that of the global window). Entropy: current
policy, detached (as in TRL's implementation; the authors' code is not public). STEER's Table 3 writes
the threshold as tau_B, "threshold in batch B", B being its mini-batch (Eq. 10): its Table 1 row uses
``stat_scope=mini_batch`` (reproduce/configs/steer_table1.yaml).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

import torch

from openrlhf_steer.core.types import LossInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.window import WindowStatsMethod
from openrlhf_steer.methods.base import STAT_SCOPES, MethodConfig, check_choice, check_range
from openrlhf_steer.methods.sampling import linear_quantile

Tensor = torch.Tensor
PAPER = "Forking tokens, Wang et al., arXiv 2506.01939"


def entropy_quantile_threshold(entropy: Tensor, mask: Tensor, rho: float) -> float:
    """tau = the (1 - rho)-quantile (linear interpolation) of the entropy over valid tokens; inf if none."""
    values = entropy.detach()[mask.bool()].double()
    if values.numel() == 0:
        return float("inf")
    return linear_quantile(values, 1.0 - rho)


@dataclass
class ForkingTokensConfig(MethodConfig):
    top_entropy_fraction: float = field(
        default=0.2,
        metadata={
            "help": f"rho: fraction of valid tokens with the highest entropy that keep their gradient ({PAPER}; "
            f"default 0.2)."
        },
    )
    entropy_source: str = field(
        default="current",
        metadata={
            "help": "Entropy ranking tokens: current (training forward, detached; TRL) or old (rollout policy) "
            "(default current)."
        },
    )
    stat_scope: str = field(
        default="micro_batch",
        metadata={
            "help": f"Set for the quantile: micro_batch (one loss call) or mini_batch (optimizer-step window; STEER "
            f"Table 3's batch B of tau_B) ({PAPER}; default micro_batch)."
        },
    )

    def validate(self) -> None:
        check_range(self, "top_entropy_fraction", 0.0, 1.0, low_open=True, hint="the paper uses 0.2")
        check_choice(self, "entropy_source", ("current", "old"))
        check_choice(self, "stat_scope", STAT_SCOPES)


@register_method
class ForkingTokens(WindowStatsMethod):
    """Keep the gradient of the top-rho entropy tokens only (hook b, 0/1 weights)."""

    name = "forking_tokens"
    config_cls = ForkingTokensConfig
    paper = PAPER

    def window_values(self, inputs_list: List[LossInputs]) -> Dict[str, Tensor]:
        values = [self.source_entropy(x).detach()[x.action_mask.bool()].reshape(-1).double() for x in inputs_list]
        return {"forking_tokens/entropy": torch.cat(values) if values else torch.zeros(0, dtype=torch.float64)}

    def window_stats_from_values(self, values: Mapping[str, Tensor]) -> Dict[str, Any]:
        # A quantile needs every value of the window: data parallelism gathers them (window_values).
        entropy = values["forking_tokens/entropy"].double()
        tau = entropy_quantile_threshold(
            entropy, torch.ones_like(entropy, dtype=torch.bool), self.config.top_entropy_fraction
        )
        return {"forking_tokens/threshold": tau}

    def window_stats(self, inputs_list: List[LossInputs]) -> Dict[str, Any]:
        return self.window_stats_from_values(self.window_values(inputs_list))

    def token_weights(self, inputs: LossInputs) -> Tensor:
        entropy = self.source_entropy(inputs).detach()
        mask = inputs.action_mask.bool()
        if self.needs_window_stats:
            if "forking_tokens/threshold" not in inputs.window_stats:
                raise ValueError(
                    "forking_tokens with stat_scope=mini_batch needs LossInputs.window_stats from "
                    "method.window_stats(...); fix the adapter or use stat_scope=micro_batch"
                )
            tau = inputs.window_stats["forking_tokens/threshold"]
        else:
            tau = entropy_quantile_threshold(entropy, mask, self.config.top_entropy_fraction)
        keep = (entropy.double() >= tau) & mask
        self._record(forking_threshold=tau if tau != float("inf") else 0.0, forking_kept=keep.sum())
        return keep.to(inputs.log_probs.dtype)
