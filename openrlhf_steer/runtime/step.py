"""One training step's bookkeeping, shared by every adapter.

An adapter runs rollout steps; each rollout step runs one or more optimizer steps (windows of
micro-batches); each micro-batch calls :class:`~openrlhf_steer.core.loss.PolicyLoss`. The
:class:`StepRuntime` owns what happens between those calls:

* the random generator of the loss, reseeded per (seed, rank, optimizer step) so that a resumed run
  redraws exactly the same random tokens (:func:`step_seed`; an adapter may pass its own schedule);
* the window's metrics, kept as device tensors and copied to the host once per optimizer step
  (:class:`~openrlhf_steer.core.metrics.MetricWindow`: the one reduction both adapters log);
* the controller boundaries: at the end of each optimizer step and of each rollout step the method's
  ``on_boundary`` gets that span's statistics (token-weighted over the windows for a rollout step);
* the counters (optimizer step, rollout step) that a checkpoint saves.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch

from openrlhf_steer.core.metrics import DataParallelReduce, LossMetrics, MetricWindow

Tensor = torch.Tensor


def step_seed(seed: int, rank: int, step: int) -> int:
    """A per-(rank, optimizer step) seed: resumed runs redraw exactly the same random tokens."""
    return zlib.crc32(f"{seed}:{rank}:{step}".encode()) & 0x7FFFFFFF


def rollout_means(per_window: List[Mapping[str, float]]) -> Dict[str, float]:
    """Token-weighted means over a rollout step's windows (each weighted by its ``tokens/valid``): the
    statistics a controller that updates once per rollout step reads."""
    weights = [w.get("tokens/valid", 0.0) for w in per_window]
    total = sum(weights) or 1.0
    keys = sorted(set().union(*[w.keys() for w in per_window])) if per_window else []
    return {k: sum(wt * w[k] for wt, w in zip(weights, per_window) if k in w) / total for k in keys}


def logged_means(per_window: List[Mapping[str, float]]) -> Dict[str, float]:
    """What the adapters log per rollout step: the mean over its optimizer steps of each window's metrics."""
    keys = sorted(set().union(*[w.keys() for w in per_window])) if per_window else []
    out = {}
    for key in keys:
        values = [w[key] for w in per_window if key in w]
        out[key] = sum(values) / len(values)
    return out


@dataclass
class EntropyChannel:
    """Entropies a model forward produces for the loss that comes after it (one policy actor).

    ``capture_old_entropy`` asks the next plain log-prob forward (the rollout pass) to also compute the
    rollout-policy entropy into ``old_entropy``; a training forward leaves the current-policy entropy
    in ``entropy`` for the loss call of the same micro-batch."""

    capture_old_entropy: bool = False
    entropy: Optional[Tensor] = None
    old_entropy: Optional[Tensor] = None

    def take_entropy(self) -> Optional[Tensor]:
        entropy, self.entropy = self.entropy, None
        return entropy

    def take_old_entropy(self) -> Optional[Tensor]:
        entropy, self.old_entropy = self.old_entropy, None
        return entropy


class StepRuntime:
    """Seeds, metric windows, controller boundaries and step counters of one training run (module doc)."""

    def __init__(
        self,
        method,
        *,
        seed: int,
        rank: int = 0,
        seed_schedule: Optional[Callable[[int], int]] = None,
        device: Optional[torch.device] = None,
    ):
        self.method = method
        self.seed = int(seed)
        self.rank = int(rank)
        self._seed_schedule = seed_schedule
        self.device = device
        self.optimizer_step = 0
        self.rollout_step = 0
        self.window = MetricWindow()
        self.rollout_windows: List[Dict[str, float]] = []
        self.generator: Optional[torch.Generator] = None

    # -- seeds -------------------------------------------------------------------------------------
    def seed_for(self, optimizer_step: int) -> int:
        if self._seed_schedule is not None:
            return int(self._seed_schedule(optimizer_step))
        return step_seed(self.seed, self.rank, optimizer_step)

    def reseed(self) -> torch.Generator:
        """The loss's generator, seeded for the current optimizer step."""
        if self.generator is None:
            self.generator = torch.Generator(device=self.device) if self.device is not None else torch.Generator()
        self.generator.manual_seed(self.seed_for(self.optimizer_step))
        return self.generator

    # -- metrics -----------------------------------------------------------------------------------
    def record(
        self, metrics: LossMetrics, valid_tokens, loss_denominator: Optional[float] = None, loss_units=None
    ) -> None:
        """One loss call's metrics (device tensors; nothing is read here). See :meth:`MetricWindow.add`."""
        self.window.add(metrics, valid_tokens, loss_denominator, loss_units)

    # -- boundaries --------------------------------------------------------------------------------
    def end_optimizer_step(
        self,
        extra: Optional[Mapping[str, float]] = None,
        data_parallel: Optional[DataParallelReduce] = None,
        before_controller: Optional[Callable[[], None]] = None,
    ) -> Dict[str, float]:
        """Reduce the window (one host copy), advance the optimizer step, offer the window to the controller.

        ``before_controller`` runs after the count advanced and before the controller update (observers)."""
        stats = self.window.reduce(data_parallel)
        stats.update(extra or {})
        self.window = MetricWindow()
        self.optimizer_step += 1
        if before_controller is not None:
            before_controller()
        self.method.on_boundary("optimizer_step", stats)
        self.rollout_windows.append(stats)
        return stats

    def end_rollout_step(self) -> Dict[str, float]:
        """Offer the rollout step's token-weighted statistics to the controller; return the logged means."""
        per_window, self.rollout_windows = self.rollout_windows, []
        self.method.on_boundary("rollout_step", rollout_means(per_window))
        self.rollout_step += 1
        return logged_means(per_window)

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {
            "optimizer_step": self.optimizer_step,
            "rollout_step": self.rollout_step,
            "method": self.method.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.optimizer_step = int(state.get("optimizer_step", 0))
        self.rollout_step = int(state.get("rollout_step", 0))
        self.method.load_state_dict(state.get("method", {}))
