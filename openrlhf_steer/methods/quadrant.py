"""Quadrant interventions: mask or up-weight a random fraction of the tokens in one quadrant of
(advantage sign) x (probability band of the sampled token).

This is the controlled experiment behind the STEER paper's quadrant analysis (Hao et al., arXiv
2510.10150) and Jin et al.'s (arXiv 2511.05993) finding that positive-advantage tokens drive entropy
collapse: pick e.g. positive-advantage / high-probability tokens, mask 10% of them, and watch the
entropy curve. The probability band uses the rollout probability p_old = exp(old_log_probs) by
default (fixed for the whole step), with a fixed threshold or a quantile of p over the valid tokens.
"""
from dataclasses import dataclass, field
from typing import Tuple

import torch

from openrlhf_steer.methods.base import LossInputs, Method, MethodConfig, check_choice, check_range, register_method
from openrlhf_steer.methods.sampling import choose_random_tokens, linear_quantile

Tensor = torch.Tensor
PAPER = "Quadrant analysis, Hao et al., arXiv 2510.10150; Jin et al., arXiv 2511.05993"


@dataclass
class QuadrantConfig(MethodConfig):
    sign: str = field(default="pos", metadata={"help": "Advantage sign of the quadrant: pos (A > 0) or neg (A < 0) (default pos)."})
    band: str = field(default="high", metadata={"help": "Probability band: high (p > threshold) or low (p <= threshold) (default high)."})
    threshold_mode: str = field(default="value", metadata={"help": "value: threshold is the probability prob_threshold; quantile: threshold is the prob_threshold-quantile of p over the valid tokens (default value)."})
    prob_threshold: float = field(default=0.5, metadata={"help": "Probability threshold (value mode) or quantile level (quantile mode) separating the bands (default 0.5)."})
    prob_source: str = field(default="old", metadata={"help": "Which probability bands use: old (rollout, fixed during the step) or current (default old)."})
    action: str = field(default="mask", metadata={"help": "mask: weight 0 (no gradient) on the chosen tokens; upweight: weight upweight_factor (default mask)."})
    fraction: float = field(default=0.1, metadata={"help": "Fraction of the quadrant's tokens acted on, drawn uniformly with LossInputs.generator (default 0.1)."})
    upweight_factor: float = field(default=2.0, metadata={"help": "Weight of the chosen tokens when action=upweight (default 2.0)."})

    def validate(self) -> None:
        check_choice(self, "sign", ("pos", "neg"))
        check_choice(self, "band", ("high", "low"))
        check_choice(self, "threshold_mode", ("value", "quantile"))
        check_range(self, "prob_threshold", 0.0, 1.0, hint="a probability or quantile level, default 0.5")
        check_choice(self, "prob_source", ("old", "current"))
        check_choice(self, "action", ("mask", "upweight"))
        check_range(self, "fraction", 0.0, 1.0, hint="default 0.1")
        check_range(self, "upweight_factor", 0.0, None, hint="default 2.0")


def quadrant_mask(advantages: Tensor, log_p: Tensor, mask: Tensor, sign: str, band: str, threshold_mode: str,
                  prob_threshold: float) -> Tuple[Tensor, float]:
    """Boolean [B, T] mask of valid tokens in the quadrant, and the probability threshold used."""
    valid = mask.bool()
    p = log_p.detach().exp()
    if threshold_mode == "quantile":
        values = p[valid].double()
        threshold = linear_quantile(values, prob_threshold) if values.numel() else 0.5
    else:
        threshold = float(prob_threshold)
    in_band = p > threshold if band == "high" else p <= threshold
    in_sign = advantages > 0 if sign == "pos" else advantages < 0
    return in_band & in_sign & valid, threshold


@register_method
class Quadrant(Method):
    """Mask or up-weight a random fraction of one (advantage sign x probability band) quadrant (hook b)."""

    name = "quadrant"
    config_cls = QuadrantConfig
    paper = PAPER

    def token_weights(self, inputs: LossInputs) -> Tensor:
        c = self.config
        log_p = inputs.old_log_probs if c.prob_source == "old" else inputs.log_probs
        candidates, threshold = quadrant_mask(inputs.advantages, log_p, inputs.action_mask, c.sign, c.band,
                                              c.threshold_mode, c.prob_threshold)
        chosen = choose_random_tokens(candidates, c.fraction, inputs.generator)
        value = 0.0 if c.action == "mask" else c.upweight_factor
        weights = torch.where(chosen, torch.full_like(inputs.log_probs, value), torch.ones_like(inputs.log_probs))
        self._record(quadrant_candidates=float(candidates.sum()), quadrant_chosen=float(chosen.sum()),
                     quadrant_threshold=threshold)
        return weights.detach() * inputs.action_mask.to(weights.dtype)
