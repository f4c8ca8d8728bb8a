"""The method contract: one registry, one config dataclass and one small class per method.

A *method* changes a GRPO-style clipped surrogate in up to five places (hooks). Every hook has a
neutral default, so a method overrides only what it changes:

(a) advantage shaping
    ``shape_rewards``      group-level reward shaping before the advantage estimator (e.g. unlikeliness reward)
    ``compute_advantages`` the group-level estimator itself (GRPO by default; W-REINFORCE, OPO, ...)
    ``shape_advantages``   per-token shaping inside the loss (e.g. entropy advantage)
(b) ``token_weights``      per-token loss weights, detached (STEER, Pos-Adv-Reweight, forking tokens, ...)
(c) ``clip_mask`` / ``loss_config``  which tokens keep a gradient and the clip range (Clip-Cov, clip-higher, ...)
(d) ``extra_token_terms``  extra per-token loss terms aggregated like the policy loss (entropy loss, KL-Cov, KL)
(e) ``on_step_end``        one controller update from a span's statistics, with ``state_dict`` /
                           ``load_state_dict`` so that a resumed run continues exactly. Adapters call
                           ``on_boundary`` at the end of every optimizer step and every rollout step;
                           it updates at the boundary the config's ``update_every`` names.

Pure math lives in the method modules and in ``openrlhf_steer.core``; framework adapters (OpenRLHF, the CPU
demo) build :class:`LossInputs`, call the loss and leave seeds, metric windows and the controller boundaries
to ``openrlhf_steer.runtime.StepRuntime``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Iterable, Mapping, Optional, Type

import torch

from openrlhf_steer.core.types import GroupInputs, LossConfig, LossInputs

Tensor = torch.Tensor


# --------------------------------------------------------------------------------------------------
# Config base and method base
# --------------------------------------------------------------------------------------------------
@dataclass
class MethodConfig:
    """Base of every method config. Each field documents its paper and default in ``metadata['help']``."""

    def validate(self) -> None:  # override to check ranges; raise ValueError naming the field and the fix
        return None


class Method:
    """Base class; every hook is neutral. Subclasses set ``name``, ``config_cls`` and ``paper``.

    Satisfies :class:`openrlhf_steer.core.hooks.LossHooks` and ``AdvantageHooks`` structurally (core
    never imports this package)."""

    name: ClassVar[str] = "grpo"
    config_cls: ClassVar[Type[MethodConfig]] = MethodConfig
    paper: ClassVar[str] = ""
    # What the method needs from the adapters, declared here so that one place decides what runs:
    # tensors of LossInputs ("entropy", "old_entropy", "ref_log_probs"); ...
    requires: ClassVar[tuple] = ()
    # ... whether the loss differentiates the current-policy entropy (entropy bonus terms); ...
    differentiates_entropy: ClassVar[bool] = False
    # ... and per-token fields of GroupInputs its advantage hooks read ("entropy", "old_log_probs").
    group_requires: ClassVar[tuple] = ()

    def __init__(self, config: Optional[MethodConfig] = None):
        self.config = config if config is not None else self.config_cls()
        self.config.validate()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, config={self.config!r})"

    # (a) advantage shaping -------------------------------------------------------------------
    def shape_rewards(self, group: GroupInputs) -> Tensor:
        return group.rewards

    def compute_advantages(self, group: GroupInputs) -> Optional[Tensor]:
        """Return per-token advantages [N, T] or None to keep the default estimator (GRPO)."""
        return None

    def shape_advantages(self, inputs: LossInputs, advantages: Tensor) -> Tensor:
        return advantages

    # (b) per-token weights ---------------------------------------------------------------------
    def token_weights(self, inputs: LossInputs) -> Optional[Tensor]:
        """Detached weights [B, T] multiplying the per-token surrogate, or None (all ones)."""
        return None

    # (c) clipping ------------------------------------------------------------------------------
    def loss_config(self, base: LossConfig) -> LossConfig:
        """Return the clip configuration to use (clip-higher/lower/tighter/free override it)."""
        return base

    def clip_mask(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Optional[Tensor]:
        """Detached 0/1 mask [B, T] of tokens that keep their surrogate gradient, or None.

        ``per_token`` holds the surrogate's intermediate tensors (``ratio``, ``clipped`` bool, ...).
        """
        return None

    # (d) extra loss terms ----------------------------------------------------------------------
    def extra_token_terms(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Extra per-token loss terms [B, T], added to the surrogate before aggregation."""
        return {}

    # (e) controller ----------------------------------------------------------------------------
    def on_step_end(self, stats: Mapping[str, float]) -> None:
        """One controller update from the statistics of the span that just ended (see ``on_boundary``)."""
        return None

    def controller_boundary(self) -> str:
        """When the controller updates: "rollout_step" or "optimizer_step" (the config's ``update_every``)."""
        return getattr(self.config, "update_every", "optimizer_step")

    def on_boundary(self, boundary: str, stats: Mapping[str, float]) -> None:
        """Adapters call this at the end of every optimizer step and of every rollout step (after its whole
        update), with that span's token-weighted mean statistics; the controller updates at its own boundary."""
        if boundary not in CONTROLLER_BOUNDARIES:
            raise ValueError(f"unknown controller boundary {boundary!r}; use one of {list(CONTROLLER_BOUNDARIES)}")
        if boundary == self.controller_boundary():
            self.on_step_end(stats)

    def controller_values(self) -> Dict[str, float]:
        """Current controller values to log (alpha, coefficients, ...)."""
        return {}

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None

    # Additions (keep the hooks above unchanged) --------------------------------------------------
    def required_inputs(self) -> tuple:
        """Names of optional LossInputs fields this configured method needs: ``requires``, plus the
        entropy field named by the config's ``entropy_source`` when it has one."""
        source = getattr(self.config, "entropy_source", None)
        extra = (ENTROPY_SOURCES[source],) if source is not None else ()
        return tuple(dict.fromkeys((*self.requires, *extra)))

    def source_entropy(self, inputs: LossInputs) -> Tensor:
        """The token entropy the config's ``entropy_source`` selects (current or old policy)."""
        return getattr(inputs, ENTROPY_SOURCES[self.config.entropy_source])

    @property
    def needs_window_stats(self) -> bool:
        """True when the configured method takes statistics over the optimizer-step window
        (:class:`~openrlhf_steer.methods.window.WindowStatsMethod`)."""
        return False

    def needs(self):
        """What this configured method needs from the adapters (:class:`~openrlhf_steer.methods.needs.MethodNeeds`)."""
        from openrlhf_steer.methods.needs import needs_of

        return needs_of(self)

    def recorded_metrics(self) -> Dict[str, Any]:
        """Method-specific diagnostics of the last loss call as recorded: detached 0-dim tensors, still on
        the device, or Python numbers. The loss logs them under ``method/<key>`` without a host read."""
        return dict(getattr(self, "_last_metrics", {}) or {})

    def last_metrics(self) -> Dict[str, float]:
        """:meth:`recorded_metrics` as Python floats (reads the device)."""
        return {k: float(v) for k, v in self.recorded_metrics().items()}

    def _record(self, **values: Any) -> None:
        """Keep diagnostics of this call; pass tensors (not ``float(t)``) so that nothing waits for the device."""
        if not hasattr(self, "_last_metrics") or self._last_metrics is None:
            self._last_metrics = {}
        self._last_metrics.update({k: v.detach() if torch.is_tensor(v) else v for k, v in values.items()})

    def reset_metrics(self) -> None:
        self._last_metrics = {}

    def overrides_hook(self, hook: str) -> bool:
        """Whether this class changes the neutral default of a hook (used by ``compose_methods``)."""
        return getattr(type(self), hook) is not getattr(Method, hook)


# --------------------------------------------------------------------------------------------------
# Validation helpers for configs: raise ValueError naming the field and the fix
# --------------------------------------------------------------------------------------------------
def check_range(
    config: Any,
    name: str,
    low: Optional[float] = None,
    high: Optional[float] = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> None:
    value = getattr(config, name)
    cls = type(config).__name__
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"{cls}.{name}={value!r} must be a number{'; ' + hint if hint else ''}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
        raise ValueError(f"{cls}.{name}={value!r} is out of range: use {lo}{name}{hi}{'; ' + hint if hint else ''}")


def check_choice(config: Any, name: str, choices: Iterable[Any]) -> None:
    value = getattr(config, name)
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{type(config).__name__}.{name}={value!r} is unknown: choose one of {list(choices)}")


STAT_SCOPES = ("micro_batch", "mini_batch")
# Ends of a training span at which a controller may update (``update_every``).
CONTROLLER_BOUNDARIES = ("rollout_step", "optimizer_step")
# config.entropy_source -> the LossInputs field holding that entropy
ENTROPY_SOURCES = {"current": "entropy", "old": "old_entropy"}

# Loss metrics a controller may read in on_step_end, and the LossInputs field each one needs.
METRIC_INPUTS = {"entropy/old_mean": "old_entropy", "entropy/current_mean": "entropy"}


def inputs_for_metric(metric: str) -> tuple:
    """LossInputs fields that must be provided for the loss to report ``metric`` (none for sampled_nll)."""
    return (METRIC_INPUTS[metric],) if metric in METRIC_INPUTS else ()
