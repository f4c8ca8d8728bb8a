"""STEER's token-weight distribution per rollout step (median, 10th percentile, share below 0.95).

The exp mapping divides by the micro-batch's largest |Omega|; when that maximum is an outlier, almost
every weight is ~1 and STEER is a no-op (issue 22: median 0.998 on high-entropy tokens). This log shows
when. It reads the metrics the run's own loss records (``method/weight_median``, ``method/weight_p10``,
``method/weight_frac_below_0.95``, see ``openrlhf_steer.methods.steer.weight_distribution``) and reduces
them as the run logs them: each optimizer window by ``core.metrics.MetricWindow`` (token-weighted mean of
its micro-batches), each rollout step by the mean over its windows. A row therefore equals the run's
``train/method/weight_*`` of the same step; the file keeps the keys the report reads.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from openrlhf_steer.core.metrics import MetricWindow
from openrlhf_steer.core.types import LossConfig, LossInputs
from openrlhf_steer.methods.steer import WEIGHT_BELOW_KEY

LOG_NAME = "steer_weights.jsonl"

# recorded method metric -> key in LOG_NAME (the names report.weights_section reads)
LOGGED_KEYS = {
    "weight_median": "weights/median",
    "weight_p10": "weights/p10",
    WEIGHT_BELOW_KEY: "weights/share_below_0.95",
}


class SteerWeightLogger:
    """Loss observer and step observer of ``MethodRun``: the weight distribution the run's loss recorded,
    one row per rollout step. Attach it with :meth:`attach`."""

    log_name = LOG_NAME

    def __init__(self, loss_fn):
        self.loss_fn = loss_fn  # the run's PolicyLoss: its method's recorded metrics are what the loss logs
        self._window = MetricWindow()
        self._windows: List[Dict[str, float]] = []

    @classmethod
    def attach(cls, run) -> "SteerWeightLogger":
        """Observe every loss call of ``run`` and log a row after each of its rollout steps."""
        logger = cls(run.loss_fn)
        run.observers.append(logger.observe_loss)
        run.step_observers.append(logger)
        return logger

    def observe_loss(self, inputs: LossInputs, loss_config: LossConfig) -> None:
        """After a loss call: keep its recorded weight metrics (device tensors, nothing read yet)."""
        recorded = self.loss_fn.method.recorded_metrics()
        missing = [key for key in LOGGED_KEYS if key not in recorded]
        if missing:
            raise ValueError(
                f"SteerWeightLogger: the run's method {type(self.loss_fn.method).__name__} recorded no {missing}; "
                "attach the weight log to steer runs only"
            )
        self._window.add({key: recorded[key] for key in LOGGED_KEYS}, inputs.action_mask.sum())

    def before_step(self, run, rollout, advantages, micro_indices) -> None:
        self._window = MetricWindow()

    def after_step(self, run, rollout, advantages, micro_indices) -> None:
        if len(self._window):
            self._windows.append(self._window.reduce())
        self._window = MetricWindow()

    def take_row(self, step: int) -> Optional[Dict[str, Any]]:
        if not self._windows:
            return None
        row: Dict[str, Any] = {"step": step}
        for key, name in LOGGED_KEYS.items():
            row[name] = sum(w[key] for w in self._windows) / len(self._windows)
        self._windows = []
        return row
