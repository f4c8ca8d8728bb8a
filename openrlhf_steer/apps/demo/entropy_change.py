"""Per-token entropy change of the first training steps against its two estimates (STEER Figure 2, small scale).

Around each optimizer step of a run's first rollout steps, every valid token of the step's mini-batch
gets its full-vocabulary entropy at its own prefix before and after the step; the measured change is
Delta H = H(pi_{k+1} | s) - H(pi_k | s). The estimates are made before the step, RAW (no fitted scale),
as STEER's Figure 2 compares them:

* Omega (STEER Eq. 7): -eta * I_clip * r A (1 - p)^2 (log p + H), with the run's learning rate eta and
  the clip indicator of Eq. 6 (core: ``first_order_entropy_change``);
* Cov (Cui et al.): -(A - mean A)(log p - mean log p), centred over the mini-batch's valid tokens
  (core: ``covariance_entropy_change``), without a learning rate as in STEER's table.

The recorder appends one JSONL row per rollout step to the run folder, so a resumed run keeps the rows
of the steps its checkpoint covers (``MethodRun`` trims them like the metrics).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy import stats as sps

from openrlhf_steer.core.estimators import covariance_entropy_change, first_order_entropy_change

Tensor = torch.Tensor
LOG_NAME = "entropy_change.jsonl"


def clip_indicator(ratio: Tensor, advantages: Tensor, eps_low: float, eps_high: float) -> Tensor:
    """STEER Eq. 6: 0 where the clipped surrogate passes no gradient (A > 0 and r > 1 + eps_high, or
    A < 0 and r < 1 - eps_low), else 1."""
    clipped = ((advantages > 0) & (ratio > 1.0 + eps_high)) | ((advantages < 0) & (ratio < 1.0 - eps_low))
    return (~clipped).to(ratio.dtype)


def omega_estimate(
    log_probs: Tensor,
    old_log_probs: Tensor,
    entropy: Tensor,
    advantages: Tensor,
    lr: float,
    eps_low: float,
    eps_high: float,
) -> Tensor:
    """The predicted entropy change of STEER Eq. 7 itself: -eta * I_clip * Omega."""
    omega = first_order_entropy_change(log_probs, old_log_probs, entropy, advantages)
    ratio = torch.exp(log_probs.detach() - old_log_probs.detach()).to(omega.dtype)
    return -lr * clip_indicator(ratio, advantages, eps_low, eps_high) * omega


def cov_estimate(log_probs: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """Cui et al.'s per-token estimate, -(A - mean A)(log p - mean log p), as STEER's Figure 2 uses it."""
    return -covariance_entropy_change(log_probs, advantages, mask)


def agreement_raw(estimate: Sequence[float], truth: Sequence[float]) -> Dict[str, float]:
    """MSE, PCC and SRCC of a raw estimate against the measured change (STEER Figure 2's columns)."""
    x, y = np.asarray(estimate, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"need >= 3 paired values, got {x.size} and {y.size}")
    constant = np.std(x) == 0 or np.std(y) == 0
    return {
        "MSE": float(np.mean((x - y) ** 2)),
        "PCC": math.nan if constant else float(sps.pearsonr(x, y)[0]),
        "SRCC": math.nan if constant else float(sps.spearmanr(x, y)[0]),
        "n": int(x.size),
    }


class EntropyChangeRecorder:
    """Step observer of ``MethodRun``: records (Omega, Cov, measured Delta H) for the first ``rollout_steps``."""

    log_name = LOG_NAME

    def __init__(self, rollout_steps: int, lr: float, eps_low: float, eps_high: float):
        self.rollout_steps, self.lr, self.eps_low, self.eps_high = rollout_steps, lr, eps_low, eps_high
        self._pending: List[Dict[str, Any]] = []
        self._rows: Dict[str, List[float]] = {"omega": [], "cov": [], "true": []}

    def active(self, run) -> bool:
        return run.step < self.rollout_steps

    @torch.no_grad()
    def before_step(self, run, rollout, advantages: Tensor, micro_indices: List[Tensor]) -> None:
        if not self.active(run):
            return
        window = torch.cat(micro_indices)
        inputs = run.loss_inputs(rollout, advantages, window, False, None)
        mask = inputs.action_mask.bool()
        omega = omega_estimate(
            inputs.log_probs,
            inputs.old_log_probs,
            inputs.entropy,
            inputs.advantages,
            self.lr,
            self.eps_low,
            self.eps_high,
        )
        cov = cov_estimate(inputs.log_probs, inputs.advantages, inputs.action_mask)
        self._pending = [
            {"window": window, "mask": mask, "entropy": inputs.entropy.detach().clone(), "omega": omega, "cov": cov}
        ]

    @torch.no_grad()
    def after_step(self, run, rollout, advantages: Tensor, micro_indices: List[Tensor]) -> None:
        if not self.active(run) or not self._pending:
            return
        record = self._pending.pop()
        after = run.loss_inputs(rollout, advantages, record["window"], False, None).entropy
        mask = record["mask"]
        self._rows["omega"] += record["omega"][mask].double().tolist()
        self._rows["cov"] += record["cov"][mask].double().tolist()
        self._rows["true"] += (after - record["entropy"])[mask].double().tolist()

    def take_row(self, step: int) -> Optional[Dict[str, Any]]:
        """The rollout step's tokens as one JSONL row (and reset); None after the recorded steps."""
        if not self._rows["true"]:
            return None
        row = {"step": step, **self._rows}
        self._rows = {"omega": [], "cov": [], "true": []}
        return row


def summarise(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """MSE/PCC/SRCC of both estimates over every token of the recorded steps."""
    truth = [v for r in rows for v in r["true"]]
    # The MSE of predicting no change at all: the floor a raw estimate must beat to carry information on scale.
    out: Dict[str, Any] = {
        "steps": len(rows),
        "tokens": len(truth),
        "zero": {"MSE": float(np.mean(np.square(truth))) if truth else math.nan},
    }
    for name in ("omega", "cov"):
        out[name] = agreement_raw([v for r in rows for v in r[name]], truth)
    return out
