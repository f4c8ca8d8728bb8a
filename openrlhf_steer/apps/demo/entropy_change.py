"""Per-token entropy change of the first training steps against its two estimates (STEER Figure 2, small scale).

Around each optimizer step of a run's first rollout steps, every valid token of the step's mini-batch
gets its full-vocabulary entropy at its own prefix before and after the step; the measured change is
Delta H = H(pi_{k+1} | s) - H(pi_k | s). The estimates are made before the step, RAW (no fitted scale),
as STEER's Figure 2 compares them:

* Omega (STEER Eq. 7): -eta * I_clip * r A (1 - p)^2 (log p + H), with the run's learning rate eta and
  the clip indicator of Eq. 6 (core: ``omega_entropy_change``);
* Cov (Cui et al.): -(A - mean A)(log p - mean log p), centred over the mini-batch's valid tokens
  (core: ``covariance_entropy_change_estimate``), without a learning rate as in STEER's table.

MSE / PCC / SRCC: ``openrlhf_steer.core.stats.agreement``.

The recorder appends one JSONL row per rollout step to the run folder, so a resumed run keeps the rows
of the steps its checkpoint covers (``MethodRun`` trims them like the metrics).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from openrlhf_steer.core.estimators import covariance_entropy_change_estimate, omega_entropy_change
from openrlhf_steer.core.stats import agreement

Tensor = torch.Tensor
LOG_NAME = "entropy_change.jsonl"


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
        omega = omega_entropy_change(
            inputs.log_probs,
            inputs.old_log_probs,
            inputs.entropy,
            inputs.advantages,
            lr=self.lr,
            eps_low=self.eps_low,
            eps_high=self.eps_high,
        )
        # Cov without a learning rate, as in STEER's table
        cov = covariance_entropy_change_estimate(inputs.log_probs, inputs.advantages, inputs.action_mask)
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
        out[name] = agreement([v for r in rows for v in r[name]], truth)
    return out
