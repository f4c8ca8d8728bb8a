"""What a configured method needs from the adapters, derived from what its class declares.

One function decides, for the launcher and every Ray process alike: which entropy passes run, whether
the entropy keeps a gradient, whether reference log-probs or the advantage hooks are needed, whether
optimizer-step window statistics are gathered and whether a controller is saved with checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable


@dataclass(frozen=True)
class MethodNeeds:
    current_entropy: bool = False  # LossInputs.entropy (the training forward, chunked)
    entropy_grad: bool = False  # ... with a gradient (entropy bonus terms)
    old_entropy: bool = False  # LossInputs.old_entropy / GroupInputs.entropy (the rollout-policy pass)
    ref_log_probs: bool = False
    advantage_hooks: bool = False  # shape_rewards / compute_advantages run where advantages are computed
    window_stats: bool = False  # statistics over the optimizer-step window (stat_scope=mini_batch)
    controller: bool = False  # state across steps (on_step_end / state_dict), saved with checkpoints

    def __or__(self, other: "MethodNeeds") -> "MethodNeeds":
        return MethodNeeds(**{f.name: getattr(self, f.name) or getattr(other, f.name) for f in fields(self)})


def needs_of(method) -> MethodNeeds:
    """The needs of one configured (not composed) method."""
    required = set(method.required_inputs())
    return MethodNeeds(
        current_entropy="entropy" in required,
        entropy_grad=method.differentiates_entropy and "entropy" in required,
        old_entropy="old_entropy" in required or "entropy" in method.group_requires,
        ref_log_probs="ref_log_probs" in required,
        advantage_hooks=method.overrides_hook("shape_rewards") or method.overrides_hook("compute_advantages"),
        window_stats=method.needs_window_stats,
        controller=method.overrides_hook("on_step_end"),
    )


def method_needs(methods: Iterable) -> MethodNeeds:
    """Union of the needs of several configured methods (the members of a composition)."""
    needs = MethodNeeds()
    for method in methods:
        needs = needs | needs_of(method)
    return needs
