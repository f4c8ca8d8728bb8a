"""What a selected set of methods needs from OpenRLHF (pure; no OpenRLHF import)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List

# Methods whose loss differentiates the current-policy entropy (entropy bonus terms).
_ENTROPY_GRAD_METHODS = {"entropy_loss", "adaptive_entropy"}
# Advantage methods that read GroupInputs.entropy (per-token rollout entropy) in the PPOTrainer; a
# method may also declare it with a ``group_requires`` class attribute.
_GROUP_ENTROPY_METHODS = {"edge_grpo", "gtpo"}


def _needs_group_entropy(method) -> bool:
    declared = tuple(getattr(method, "group_requires", ()))
    return "entropy" in declared or method.name in _GROUP_ENTROPY_METHODS


@dataclass(frozen=True)
class MethodNeeds:
    current_entropy: bool = False  # LossInputs.entropy (actor forward, chunked)
    entropy_grad: bool = False  # ... with a gradient (entropy bonus)
    old_entropy: bool = False  # LossInputs.old_entropy (rollout-policy pass)
    ref_log_probs: bool = False
    advantage_hooks: bool = False  # shape_rewards / compute_advantages run in the PPOTrainer
    window_stats: bool = False  # statistic over the optimizer-step window (stat_scope=mini_batch)
    controller: bool = False  # stateful across steps (on_step_end / state_dict)


def _overrides(method, hook: str) -> bool:
    probe = getattr(method, "overrides_hook", None)
    if probe is not None:
        return bool(probe(hook))
    from openrlhf_steer.methods.base import Method

    return getattr(type(method), hook) is not getattr(Method, hook)


def _required(method) -> tuple:
    fn = getattr(method, "required_inputs", None)
    return tuple(fn()) if fn is not None else tuple(getattr(method, "requires", ()))


def method_needs(methods: Iterable) -> MethodNeeds:
    """Union of the needs of several *individual* (not composed) methods."""
    methods: List = list(methods)
    required = {name for m in methods for name in _required(m)}
    return MethodNeeds(
        current_entropy="entropy" in required,
        entropy_grad=any(getattr(m, "differentiates_entropy", m.name in _ENTROPY_GRAD_METHODS) for m in methods)
        and "entropy" in required,
        # Advantage methods that read per-token entropy (GTPO, Edge-GRPO) get the rollout entropy too.
        old_entropy="old_entropy" in required or any(_needs_group_entropy(m) for m in methods),
        ref_log_probs="ref_log_probs" in required,
        advantage_hooks=any(_overrides(m, "shape_rewards") or _overrides(m, "compute_advantages") for m in methods),
        window_stats=any(bool(getattr(m, "needs_window_stats", False)) for m in methods),
        controller=any(_overrides(m, "on_step_end") for m in methods),
    )
