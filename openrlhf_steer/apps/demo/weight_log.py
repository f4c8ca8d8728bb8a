"""STEER's token-weight distribution per rollout step (median, 10th percentile, share below 0.95).

The exp mapping divides by the micro-batch's largest |Omega|; when that maximum is an outlier, almost
every weight is ~1 and STEER is a no-op (issue 22: median 0.998 on high-entropy tokens). This log shows
when. The weights come from a separate instance of the run's method on the same inputs, so the run's own
method state and metrics are untouched.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from openrlhf_steer.methods import build_method

from .mechanism_math import weight_distribution

LOG_NAME = "steer_weights.jsonl"


class SteerWeightLogger:
    """Step observer of ``MethodRun``: the weight distribution of every optimizer window, one row per rollout."""

    log_name = LOG_NAME

    def __init__(self, method_name: str, config: Dict[str, Any]):
        self.method = build_method(method_name, config)
        self._windows: List[Dict[str, float]] = []

    @torch.no_grad()
    def before_step(self, run, rollout, advantages, micro_indices) -> None:
        inputs = [run.loss_inputs(rollout, advantages, idx, False, None) for idx in micro_indices]
        stats = self.method.window_stats(inputs) if self.method.needs_window_stats else {}
        weights, masks = [], []
        for x in inputs:
            x.window_stats = stats
            weights.append(self.method.token_weights(x).reshape(-1))
            masks.append(x.action_mask.reshape(-1))
        self._windows.append(weight_distribution(torch.cat(weights), torch.cat(masks)))

    def after_step(self, run, rollout, advantages, micro_indices) -> None:
        return None

    def take_row(self, step: int) -> Optional[Dict[str, Any]]:
        if not self._windows:
            return None
        row = {"step": step}
        for key in self._windows[0]:
            row[f"weights/{key}"] = sum(w[key] for w in self._windows) / len(self._windows)
        self._windows = []
        return row
