"""Quadrant interventions: mask or up-weight a random fraction of the tokens in one quadrant of
(advantage sign) x (probability band of the sampled token).

This is the controlled experiment behind the STEER paper's quadrant analysis (Hao et al., arXiv
2510.10150, Sec. 3.2.1 and Figure 6) and Jin et al.'s (arXiv 2511.05993) finding that
positive-advantage tokens drive entropy collapse. The paper's quadrants (Sec. 3.2.1) and its design
(App. D.2), the default here:

    I   exploitation     A > 0, high p (p > 0.8)   entropy falls   -> mask 10% of its tokens
    II  exploration      A > 0, low p  (p < 0.2)   entropy rises   -> double the weight of 10%
    III suppression      A < 0, low p  (p < 0.2)   entropy falls   -> mask 10%
    IV  error-correction A < 0, high p (p > 0.8)   entropy rises   -> double the weight of 10%

Each intervention raises entropy. ``action=mask`` / ``upweight`` applies one action in any quadrant
(e.g. masking in all four), and ``prob_threshold`` splits the two bands at one value instead. The
band uses the rollout probability p_old = exp(old_log_probs) by default (fixed for the whole step).
"""

from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch

from openrlhf_steer.core.types import LossInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import Method, MethodConfig, check_choice, check_range
from openrlhf_steer.methods.sampling import choose_random_tokens, linear_quantile

Tensor = torch.Tensor
PAPER = "Quadrant analysis, Hao et al., arXiv 2510.10150; Jin et al., arXiv 2511.05993"
STEER_D2 = "STEER, Hao et al., arXiv 2510.10150, App. D.2 / Figure 6"

# (sign, band) -> the STEER paper's quadrant number (Sec. 3.2.1) and its App. D.2 intervention.
QUADRANT_NAMES = {("pos", "high"): "I", ("pos", "low"): "II", ("neg", "low"): "III", ("neg", "high"): "IV"}
PAPER_ACTIONS = {"I": "mask", "II": "upweight", "III": "mask", "IV": "upweight"}


@dataclass
class QuadrantConfig(MethodConfig):
    sign: str = field(
        default="pos", metadata={"help": "Advantage sign of the quadrant: pos (A > 0) or neg (A < 0) (default pos)."}
    )
    band: str = field(
        default="high",
        metadata={"help": "Probability band: high or low (default high; pos/high is the paper's Quadrant I)."},
    )
    action: str = field(
        default="paper",
        metadata={
            "help": f"paper: mask in Quadrants I and III, upweight in II and IV ({STEER_D2}); mask: weight 0 (no "
            f"gradient) on the chosen tokens in any quadrant; upweight: weight upweight_factor (default paper)."
        },
    )
    high_threshold: float = field(
        default=0.8,
        metadata={"help": f"High band: p > high_threshold ({STEER_D2}: 'probability greater than 0.8'; default 0.8)."},
    )
    low_threshold: float = field(
        default=0.2,
        metadata={"help": f"Low band: p < low_threshold ({STEER_D2}: 'probability less than 0.2'; default 0.2)."},
    )
    prob_threshold: Optional[float] = field(
        default=None,
        metadata={
            "help": "If set, one split replaces the two bands: high p > prob_threshold, low p <= prob_threshold "
            "(default None: the paper's bands)."
        },
    )
    threshold_mode: str = field(
        default="value",
        metadata={
            "help": "value: thresholds are probabilities; quantile: they are quantile levels of p over the valid "
            "tokens (default value)."
        },
    )
    prob_source: str = field(
        default="old",
        metadata={
            "help": "Which probability bands use: old (rollout, fixed during the step) or current (default old)."
        },
    )
    fraction: float = field(
        default=0.1,
        metadata={
            "help": f"Fraction of the quadrant's tokens acted on, drawn uniformly with LossInputs.generator "
            f"({STEER_D2}: 10%; default 0.1)."
        },
    )
    upweight_factor: float = field(
        default=2.0,
        metadata={
            "help": f"Weight of the chosen tokens when up-weighted ({STEER_D2}: 'twice the original token weight'; "
            f"default 2.0)."
        },
    )

    def validate(self) -> None:
        check_choice(self, "sign", ("pos", "neg"))
        check_choice(self, "band", ("high", "low"))
        check_choice(self, "action", ("paper", "mask", "upweight"))
        check_range(self, "high_threshold", 0.0, 1.0, hint="paper 0.8")
        check_range(self, "low_threshold", 0.0, self.high_threshold, hint="paper 0.2, at most high_threshold")
        if self.prob_threshold is not None:
            check_range(self, "prob_threshold", 0.0, 1.0, hint="a probability or quantile level, e.g. 0.5")
        check_choice(self, "threshold_mode", ("value", "quantile"))
        check_choice(self, "prob_source", ("old", "current"))
        check_range(self, "fraction", 0.0, 1.0, hint="paper 0.1")
        check_range(self, "upweight_factor", 0.0, None, hint="paper 2.0")

    @property
    def quadrant(self) -> str:
        return QUADRANT_NAMES[(self.sign, self.band)]

    @property
    def effective_action(self) -> str:
        return PAPER_ACTIONS[self.quadrant] if self.action == "paper" else self.action


def _threshold(p_valid: Tensor, level: float, threshold_mode: str) -> float:
    if threshold_mode == "value":
        return float(level)
    return linear_quantile(p_valid.double(), level) if p_valid.numel() else float(level)


def quadrant_mask(
    advantages: Tensor,
    log_p: Tensor,
    mask: Tensor,
    sign: str,
    band: str,
    threshold_mode: str,
    high_threshold: float = 0.8,
    low_threshold: float = 0.2,
    prob_threshold: Optional[float] = None,
) -> Tuple[Tensor, float]:
    """Boolean [B, T] mask of valid tokens in the quadrant, and the probability threshold of its band.

    Bands: high p > high_threshold, low p < low_threshold; or, with ``prob_threshold``, one split:
    high p > prob_threshold, low p <= prob_threshold.
    """
    valid = mask.bool()
    p = log_p.detach().exp()
    if prob_threshold is not None:
        threshold = _threshold(p[valid], prob_threshold, threshold_mode)
        in_band = p > threshold if band == "high" else p <= threshold
    elif band == "high":
        threshold = _threshold(p[valid], high_threshold, threshold_mode)
        in_band = p > threshold
    else:
        threshold = _threshold(p[valid], low_threshold, threshold_mode)
        in_band = p < threshold
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
        candidates, threshold = quadrant_mask(
            inputs.advantages,
            log_p,
            inputs.action_mask,
            c.sign,
            c.band,
            c.threshold_mode,
            c.high_threshold,
            c.low_threshold,
            c.prob_threshold,
        )
        chosen = choose_random_tokens(candidates, c.fraction, inputs.generator)
        value = 0.0 if c.effective_action == "mask" else c.upweight_factor
        weights = torch.where(chosen, torch.full_like(inputs.log_probs, value), torch.ones_like(inputs.log_probs))
        self._record(
            quadrant_candidates=candidates.sum(),
            quadrant_chosen=chosen.sum(),
            quadrant_threshold=threshold,
        )
        return weights.detach() * inputs.action_mask.to(weights.dtype)
