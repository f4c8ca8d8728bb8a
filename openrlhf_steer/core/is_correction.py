"""Rollout/trainer importance-sampling correction (OpenRLHF 0.11.2 ``--algo.advantage.is_correction_*``).

The rollout engine (vLLM) and the trainer compute slightly different log-probs for the same tokens.
The correction reads the per-token ratio ``pi_train / pi_rollout = exp(logp_old - logp_rollout)``
and turns it into a per-token coefficient that multiplies the per-token policy loss before
aggregation (Yao et al., "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training",
as implemented by OpenRLHF 0.11.2 ``PolicyLoss``):

* ``gating`` picks the gated statistic: the ratio itself, or the sampled-token ``binary_kl`` /
  ``tv`` divergence between rollout and train probabilities (a trust region);
* ``level`` ``token`` gates each token; ``seq`` gates each sequence by the statistic's masked mean
  (for ``ratio``: the geometric mean of the token ratios);
* ``mode`` ``mask`` zeroes out-of-band units (survivors keep their per-token ratio as weight);
  ``clip`` clamps the token ratio into the band (token level, ratio gating only).

Pure functions; no OpenRLHF import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch

Tensor = torch.Tensor

LEVELS = ("off", "token", "seq")
PROB_CLAMP = 1e-6  # keeps the binary-KL logs finite (OpenRLHF's clamp)


@dataclass(frozen=True)
class ISCorrectionConfig:
    """OpenRLHF's ``--algo.advantage.is_correction_{level,mode,gating,threshold}`` (defaults off/mask/ratio/0.5 5)."""

    level: str = "off"
    mode: str = "mask"
    gating: str = "ratio"
    threshold: Tuple[float, float] = (0.5, 5.0)

    @property
    def enabled(self) -> bool:
        return self.level != "off"

    def validate(self) -> None:
        flag = "--algo.advantage.is_correction"
        if self.level not in LEVELS:
            raise ValueError(f"{flag}_level {self.level!r} is unknown: choose one of {list(LEVELS)}")
        if self.mode not in COEFFICIENT_MODES:
            raise ValueError(f"{flag}_mode {self.mode!r} is unknown: choose one of {sorted(COEFFICIENT_MODES)}")
        if self.gating not in GATING_STATISTICS:
            raise ValueError(f"{flag}_gating {self.gating!r} is unknown: choose one of {sorted(GATING_STATISTICS)}")
        if len(self.threshold) != 2 or not self.threshold[0] <= self.threshold[1]:
            raise ValueError(f"{flag}_threshold {list(self.threshold)} must be LOW HIGH with LOW <= HIGH")
        if self.mode == "clip" and (self.level == "seq" or self.gating != "ratio"):
            raise ValueError(
                f"{flag}_mode clip needs {flag}_level token and {flag}_gating ratio: only a per-token "
                "ratio is a weight that can be clamped; other statistics are rejection filters (use mask)"
            )
        if self.enabled and self.gating != "ratio" and self.threshold[0] > 0:
            raise ValueError(
                f"{flag}_gating {self.gating} is a divergence bounded from above: give a single "
                f"{flag}_threshold DELTA (the lower bound must be 0)"
            )


@dataclass
class ISCorrection:
    """``coef`` [B, T] multiplies the per-token policy loss; ``vllm_kl`` and ``filter_ratio`` are OpenRLHF's logs."""

    coef: Tensor
    filtered: Tensor
    vllm_kl: Tensor
    filter_ratio: Tensor


def _row_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Masked mean of each row, kept as [B, 1] (OpenRLHF's ``masked_mean(dim=-1)``)."""
    maskf = mask.to(values.dtype)
    return ((values * maskf).sum(-1) / maskf.sum(-1)).unsqueeze(-1)


def _ratio(log_ratio: Tensor, train_lp: Tensor, rollout_lp: Tensor, mask: Tensor, seq: bool) -> Tensor:
    return (_row_mean(log_ratio, mask) if seq else log_ratio).exp()


def _probabilities(train_lp: Tensor, rollout_lp: Tensor) -> Tuple[Tensor, Tensor]:
    return (rollout_lp.exp().clamp(PROB_CLAMP, 1 - PROB_CLAMP), train_lp.exp().clamp(PROB_CLAMP, 1 - PROB_CLAMP))


def _binary_kl(log_ratio: Tensor, train_lp: Tensor, rollout_lp: Tensor, mask: Tensor, seq: bool) -> Tensor:
    """KL(Bernoulli(p_rollout) || Bernoulli(p_train)) of the sampled token."""
    p, q = _probabilities(train_lp, rollout_lp)
    stat = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
    return _row_mean(stat, mask) if seq else stat


def _total_variation(log_ratio: Tensor, train_lp: Tensor, rollout_lp: Tensor, mask: Tensor, seq: bool) -> Tensor:
    p, q = _probabilities(train_lp, rollout_lp)
    stat = (p - q).abs()
    return _row_mean(stat, mask) if seq else stat


GATING_STATISTICS: Dict[str, Callable[..., Tensor]] = {
    "ratio": _ratio,
    "binary_kl": _binary_kl,
    "tv": _total_variation,
}


def _mask_coefficient(stat: Tensor, token_ratio: Tensor, low: float, high: float) -> Tuple[Tensor, Tensor]:
    keep = (stat >= low) & (stat <= high)
    return torch.where(keep, token_ratio, torch.zeros_like(token_ratio)), ~keep


def _clip_coefficient(stat: Tensor, token_ratio: Tensor, low: float, high: float) -> Tuple[Tensor, Tensor]:
    return stat.clamp(min=low, max=high), (stat < low) | (stat > high)


COEFFICIENT_MODES: Dict[str, Callable[..., Tuple[Tensor, Tensor]]] = {
    "mask": _mask_coefficient,
    "clip": _clip_coefficient,
}


def is_correction(
    old_log_probs: Tensor, rollout_log_probs: Optional[Tensor], mask: Tensor, config: ISCorrectionConfig
) -> ISCorrection:
    """The per-token IS coefficient and OpenRLHF's two logged statistics (all detached).

    ``old_log_probs`` are the trainer's log-probs of the rollout (OpenRLHF's ``action_log_probs``),
    ``rollout_log_probs`` the engine's. ``filter_ratio`` is the filtered fraction at the gate's
    granularity: of valid tokens (token level) or of sequences (seq level); ``vllm_kl`` is the mean
    of ``logp_rollout - logp_old`` over valid tokens.
    """
    config.validate()
    if not config.enabled:
        raise ValueError("is_correction called with level 'off'")
    if rollout_log_probs is None:
        raise ValueError(
            "--algo.advantage.is_correction_level needs the rollout engine's log-probs, but the "
            "experience has none (rollout_log_probs is None); the engine must return sampled-token "
            "logprobs (OpenRLHF asks vLLM for them when the flag is set)"
        )
    if rollout_log_probs.shape != old_log_probs.shape:
        raise ValueError(
            f"rollout_log_probs has shape {tuple(rollout_log_probs.shape)} but the trainer's log-probs "
            f"have {tuple(old_log_probs.shape)}"
        )
    seq = config.level == "seq"
    maskf = mask.to(old_log_probs.dtype)
    with torch.no_grad():
        train_lp = old_log_probs.detach()
        rollout_lp = rollout_log_probs.detach().to(train_lp.dtype)
        log_ratio = train_lp - rollout_lp
        stat = GATING_STATISTICS[config.gating](log_ratio, train_lp, rollout_lp, mask, seq)
        low, high = (float(v) for v in config.threshold)
        coef, filtered = COEFFICIENT_MODES[config.mode](stat, log_ratio.exp(), low, high)
        coef = coef.expand_as(train_lp)
        filter_ratio = filtered.float().mean() if seq else (filtered.float() * maskf).sum() / maskf.sum()
        vllm_kl = ((rollout_lp - train_lp) * maskf).sum() / maskf.sum()
    return ISCorrection(coef=coef, filtered=filtered, vllm_kl=vllm_kl, filter_ratio=filter_ratio)
