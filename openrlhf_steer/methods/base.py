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

Pure math lives in the method modules and in ``openrlhf_steer.loss``; framework adapters (OpenRLHF,
the CPU demo) only build :class:`LossInputs` and call the loss.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterable, List, Mapping, Optional, Type

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

    eps_low: float = field(default=0.2, metadata={"help": "Lower clip range epsilon_low: ratio >= 1 - eps_low (PPO; default 0.2)."})
    eps_high: float = field(default=0.2, metadata={"help": "Upper clip range epsilon_high: ratio <= 1 + eps_high (DAPO clip-higher uses 0.28; default 0.2)."})
    dual_clip: Optional[float] = field(default=None, metadata={"help": "Dual-clip constant c > 1 for negative advantages (Ye et al. 2020); STEER and Clip-Cov scripts use 10.0. None disables."})
    clip: bool = field(default=True, metadata={"help": "Apply the ratio clip at all (False gives the unclipped -A*ratio surrogate, 'clip-free')."})
    loss_agg_mode: str = field(default="token-mean", metadata={"help": "token-mean | seq-mean-token-mean | seq-mean-token-sum (verl names; token-mean is DAPO's default)."})
    log_ratio_clamp: float = field(default=20.0, metadata={"help": "Clamp of log(pi/pi_old) before exp, as in verl/OpenRLHF (default 20)."})

    def validate(self) -> None:
        if not (0.0 <= self.eps_low <= 1.0):
            raise ValueError(f"LossConfig.eps_low={self.eps_low} is out of range: use 0 <= eps_low <= 1 (PPO default 0.2).")
        if self.eps_high < 0.0:
            raise ValueError(f"LossConfig.eps_high={self.eps_high} is out of range: use eps_high >= 0 (default 0.2, clip-higher 0.28).")
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ValueError(f"LossConfig.dual_clip={self.dual_clip} must be > 1 (e.g. 3.0 or 10.0), or None to disable.")
        if not (isinstance(self.log_ratio_clamp, (int, float)) and self.log_ratio_clamp > 0):
            raise ValueError(f"LossConfig.log_ratio_clamp={self.log_ratio_clamp} must be > 0 (default 20).")
        if not isinstance(self.clip, bool):
            raise ValueError(f"LossConfig.clip={self.clip!r} must be True or False.")
        if self.loss_agg_mode not in AGG_MODES:
            raise ValueError(f"LossConfig.loss_agg_mode={self.loss_agg_mode!r} is unknown: choose one of {sorted(AGG_MODES)}.")


AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")


# --------------------------------------------------------------------------------------------------
# Config base and method base
# --------------------------------------------------------------------------------------------------
@dataclass
class MethodConfig:
    """Base of every method config. Each field documents its paper and default in ``metadata['help']``."""

    def validate(self) -> None:  # override to check ranges; raise ValueError naming the field and the fix
        return None

    @classmethod
    def field_help(cls) -> Dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


class Method:
    """Base class; every hook is neutral. Subclasses set ``name``, ``config_cls`` and ``paper``."""

    name: ClassVar[str] = "grpo"
    config_cls: ClassVar[Type[MethodConfig]] = MethodConfig
    paper: ClassVar[str] = ""
    # Which tensors of LossInputs the method needs ("entropy", "old_entropy", "ref_log_probs").
    requires: ClassVar[tuple] = ()

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
        """True when the config asks for statistics over the optimizer-step window (``stat_scope``)."""
        return getattr(self.config, "stat_scope", "micro_batch") == "mini_batch"

    def window_stats(self, inputs_list: List[LossInputs]) -> Dict[str, Any]:
        """Statistics over every micro-batch of one optimizer-step window (``stat_scope=mini_batch``).

        The adapter puts the result into ``LossInputs.window_stats`` of each micro-batch of that
        window. Keys are namespaced by the method name.
        """
        return {}

    def window_stats_reduction(self) -> Dict[str, str]:
        """How to combine ``window_stats`` across data-parallel ranks: key -> "sum" | "max" | "min".

        The adapter all-reduces these keys (then the method derives its statistic from the reduced
        values). Quantiles cannot be reduced: gather their values with :meth:`window_values` instead.
        """
        return {}

    def window_values(self, inputs_list: List[LossInputs]) -> Dict[str, Tensor]:
        """Per-token values of this window share whose statistic no reduction can combine (quantiles).

        Key -> 1-D float tensor (any length, 0 included). Under data parallelism the adapter gathers
        each key from every rank, concatenates in rank order and passes the result to
        :meth:`window_stats_from_values`, so every rank gets the statistic of the global window.
        """
        return {}

    def window_stats_from_values(self, values: Mapping[str, Tensor]) -> Dict[str, Any]:
        """Statistics from the (gathered) :meth:`window_values`; they replace those of ``window_stats``.

        ``window_stats`` should compute them with this same function on its own values, so that one
        process and the gathered concatenation give bit-identical results.
        """
        return {}

    def window_stats_rank_local(self) -> tuple:
        """Keys of ``window_stats`` that this configured method uses but that stay per rank under data
        parallelism (neither reduced nor gathered); the adapter warns about them once."""
        return ()

    def last_metrics(self) -> Dict[str, float]:
        """Method-specific diagnostics of the last loss call (logged under ``method/<key>``)."""
        return dict(getattr(self, "_last_metrics", {}) or {})

    def _record(self, **values: float) -> None:
        if not hasattr(self, "_last_metrics") or self._last_metrics is None:
            self._last_metrics = {}
        self._last_metrics.update({k: float(v) for k, v in values.items()})

    def reset_metrics(self) -> None:
        self._last_metrics = {}

    def overrides_hook(self, hook: str) -> bool:
        """Whether this class changes the neutral default of a hook (used by ``compose_methods``)."""
        return getattr(type(self), hook) is not getattr(Method, hook)


# --------------------------------------------------------------------------------------------------
# Validation helpers for configs: raise ValueError naming the field and the fix
# --------------------------------------------------------------------------------------------------
def check_range(config: Any, name: str, low: Optional[float] = None, high: Optional[float] = None,
                *, low_open: bool = False, high_open: bool = False, hint: str = "") -> None:
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


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------
_REGISTRY: Dict[str, Type[Method]] = {}


def register_method(cls: Type[Method]) -> Type[Method]:
    """Class decorator: ``@register_method`` on a Method subclass with a unique ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} is registered twice ({_REGISTRY[cls.name].__name__} and {cls.__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def available_methods() -> List[str]:
    return sorted(_REGISTRY)


def get_method_class(name: str) -> Type[Method]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown entropy-control method {name!r}; choose one of: {', '.join(available_methods())}") from None


def build_method(name: str, config: Optional[Mapping[str, Any]] = None, **overrides: Any) -> Method:
    """Build a registered method from a name and config values (unknown keys are an error)."""
    cls = get_method_class(name)
    values = dict(config or {}, **overrides)
    known = {f.name for f in dataclasses.fields(cls.config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"method {name!r} has no option(s) {unknown}; its options are {sorted(known)}")
    return cls(cls.config_cls(**values))
