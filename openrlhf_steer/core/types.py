"""The data the loss and the methods exchange: per-token loss inputs, group (rollout) inputs and the
clipped-surrogate configuration. Pure dataclasses over torch tensors; every layer imports them from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch

Tensor = torch.Tensor


# --------------------------------------------------------------------------------------------------
# Inputs the loss and the hooks see
# --------------------------------------------------------------------------------------------------
@dataclass
class LossInputs:
    """Per-token tensors of one loss call (one micro-batch), all shaped [B, T] and aligned.

    ``log_probs`` carries the gradient; everything else is treated as data. ``entropy`` is the
    current-policy full-vocabulary entropy (it carries a gradient when a method differentiates it,
    e.g. the entropy loss); ``old_entropy`` is the entropy of the rollout (old) policy, which the
    authors' STEER code uses. Methods that need a tensor that is missing raise a clear error naming
    the field.
    """

    log_probs: Tensor
    old_log_probs: Tensor
    advantages: Tensor
    action_mask: Tensor
    entropy: Optional[Tensor] = None
    old_entropy: Optional[Tensor] = None
    ref_log_probs: Optional[Tensor] = None
    # Global step (optimizer steps done so far) and the total planned, for scheduled methods.
    step: int = 0
    total_steps: Optional[int] = None
    epoch: int = 1
    total_epochs: Optional[int] = None
    # Statistics computed over a larger set than this micro-batch (e.g. the optimizer-step window),
    # keyed by name, for methods whose ``stat_scope`` is ``mini_batch``.
    window_stats: Dict[str, Any] = field(default_factory=dict)
    # Seeded generator for methods that draw random tokens (Clip-Cov, Rand-Pos-Clip, quadrants).
    generator: Optional[torch.Generator] = None


@dataclass
class GroupInputs:
    """Sequence-level data of a whole rollout for the advantage hooks.

    ``rewards`` [N] raw scalar rewards; ``group_ids`` [N] integer prompt ids (responses to the same
    prompt share one id); ``response_mask`` [N, T]; optional per-token ``old_log_probs`` and
    ``entropy`` [N, T] for methods that use them (unlikeliness reward, Edge-GRPO, GTPO).
    """

    rewards: Tensor
    group_ids: Tensor
    response_mask: Tensor
    old_log_probs: Optional[Tensor] = None
    entropy: Optional[Tensor] = None


@dataclass
class LossConfig:
    """The clipped surrogate shared by every method (GRPO / DAPO conventions)."""

    eps_low: float = field(
        default=0.2, metadata={"help": "Lower clip range epsilon_low: ratio >= 1 - eps_low (PPO; default 0.2)."}
    )
    eps_high: float = field(
        default=0.2,
        metadata={
            "help": "Upper clip range epsilon_high: ratio <= 1 + eps_high (DAPO clip-higher uses 0.28; default 0.2)."
        },
    )
    dual_clip: Optional[float] = field(
        default=None,
        metadata={
            "help": "Dual-clip constant c > 1 for negative advantages (Ye et al. 2020); STEER and Clip-Cov scripts use "
            "10.0. None disables."
        },
    )
    clip: bool = field(
        default=True,
        metadata={"help": "Apply the ratio clip at all (False gives the unclipped -A*ratio surrogate, 'clip-free')."},
    )
    loss_agg_mode: str = field(
        default="token-mean",
        metadata={
            "help": "token-mean | seq-mean-token-mean | seq-mean-token-sum (verl names; token-mean is DAPO's default)."
        },
    )
    log_ratio_clamp: float = field(
        default=20.0, metadata={"help": "Clamp of log(pi/pi_old) before exp, as in verl/OpenRLHF (default 20)."}
    )

    def validate(self) -> None:
        if not (0.0 <= self.eps_low <= 1.0):
            raise ValueError(
                f"LossConfig.eps_low={self.eps_low} is out of range: use 0 <= eps_low <= 1 (PPO default 0.2)."
            )
        if self.eps_high < 0.0:
            raise ValueError(
                f"LossConfig.eps_high={self.eps_high} is out of range: use eps_high >= 0 (default 0.2, clip-higher "
                f"0.28)."
            )
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ValueError(
                f"LossConfig.dual_clip={self.dual_clip} must be > 1 (e.g. 3.0 or 10.0), or None to disable."
            )
        if not (isinstance(self.log_ratio_clamp, (int, float)) and self.log_ratio_clamp > 0):
            raise ValueError(f"LossConfig.log_ratio_clamp={self.log_ratio_clamp} must be > 0 (default 20).")
        if not isinstance(self.clip, bool):
            raise ValueError(f"LossConfig.clip={self.clip!r} must be True or False.")
        if self.loss_agg_mode not in AGG_MODES:
            raise ValueError(
                f"LossConfig.loss_agg_mode={self.loss_agg_mode!r} is unknown: choose one of {sorted(AGG_MODES)}."
            )


AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
