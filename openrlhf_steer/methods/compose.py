"""Apply several methods at once (e.g. STEER + KL penalty, or clip-higher + entropy loss)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from openrlhf_steer.core.types import GroupInputs, LossConfig, LossInputs
from openrlhf_steer.methods.base import Method, MethodConfig

Tensor = torch.Tensor


class ComposedMethod(Method):
    """Several methods in order: rewards/advantages shaped in order, weights and clip masks multiply,
    loss configs chained, extra terms summed, every controller updated. At most one member may define
    the group advantage estimator (``compute_advantages``)."""

    name = "composed"
    config_cls = MethodConfig

    def __init__(self, methods: Sequence[Method]):
        methods = list(methods)
        if not methods:
            raise ValueError("compose_methods needs at least one method")
        estimators = [m.name for m in methods if m.overrides_hook("compute_advantages")]
        if len(estimators) > 1:
            raise ValueError(
                f"methods {estimators} each define their own advantage estimator; compose at most one of them"
            )
        names = [m.name for m in methods]
        if len(set(names)) != len(names):
            raise ValueError(f"compose_methods got a method twice: {names}")
        super().__init__(MethodConfig())
        self.methods: List[Method] = methods
        self.name = "+".join(names)  # instance attribute: shows up in errors and logs
        self.paper = "; ".join(m.paper for m in methods)

    def __repr__(self) -> str:
        return f"ComposedMethod([{', '.join(repr(m) for m in self.methods)}])"

    # (a)
    def shape_rewards(self, group: GroupInputs) -> Tensor:
        for method in self.methods:
            group = replace(group, rewards=method.shape_rewards(group))
        return group.rewards

    def compute_advantages(self, group: GroupInputs) -> Optional[Tensor]:
        for method in self.methods:
            result = method.compute_advantages(group)
            if result is not None:
                return result
        return None

    def shape_advantages(self, inputs: LossInputs, advantages: Tensor) -> Tensor:
        for method in self.methods:
            advantages = method.shape_advantages(inputs, advantages)
        return advantages

    # (b)
    def token_weights(self, inputs: LossInputs) -> Optional[Tensor]:
        return _product(m.token_weights(inputs) for m in self.methods)

    # (c)
    def loss_config(self, base: LossConfig) -> LossConfig:
        for method in self.methods:
            base = method.loss_config(base)
        return base

    def clip_mask(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Optional[Tensor]:
        return _product(m.clip_mask(inputs, per_token) for m in self.methods)

    # (d)
    def extra_token_terms(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Dict[str, Tensor]:
        terms: Dict[str, Tensor] = {}
        for method in self.methods:
            for key, value in (method.extra_token_terms(inputs, per_token) or {}).items():
                terms[key] = terms[key] + value if key in terms else value
        return terms

    # (e)
    def on_step_end(self, stats: Mapping[str, float]) -> None:
        for method in self.methods:
            method.on_step_end(stats)

    def on_boundary(self, boundary: str, stats: Mapping[str, float]) -> None:
        for method in self.methods:  # each member updates at its own boundary
            method.on_boundary(boundary, stats)

    def controller_values(self) -> Dict[str, float]:
        values: Dict[str, float] = {}
        for method in self.methods:
            values.update(method.controller_values())
        return values

    def state_dict(self) -> Dict[str, Any]:
        return {f"{i}:{m.name}": m.state_dict() for i, m in enumerate(self.methods)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        expected = [f"{i}:{m.name}" for i, m in enumerate(self.methods)]
        if sorted(state) != sorted(expected):
            raise ValueError(
                f"composed state has keys {sorted(state)}, expected {expected}; the method list changed since the "
                f"checkpoint"
            )
        for key, method in zip(expected, self.methods):
            method.load_state_dict(state[key])

    # additions
    def required_inputs(self) -> tuple:
        needed: List[str] = []
        for method in self.methods:
            needed += [n for n in method.required_inputs() if n not in needed]
        return tuple(needed)

    @property
    def needs_window_stats(self) -> bool:
        return any(m.needs_window_stats for m in self.methods)

    def needs(self):
        from openrlhf_steer.methods.needs import method_needs

        return method_needs(self.methods)

    def window_stats(self, inputs_list: List[LossInputs]) -> Dict[str, Any]:
        stats: Dict[str, Any] = {}
        for method in self.methods:
            if method.needs_window_stats:
                stats.update(method.window_stats(inputs_list))
        return stats

    def window_stats_reduction(self) -> Dict[str, str]:
        reduction: Dict[str, str] = {}
        for method in self.methods:
            if method.needs_window_stats:
                reduction.update(method.window_stats_reduction())
        return reduction

    def window_values(self, inputs_list: List[LossInputs]) -> Dict[str, Tensor]:
        values: Dict[str, Tensor] = {}
        for method in self.methods:
            if method.needs_window_stats:
                values.update(method.window_values(inputs_list))
        return values

    def window_stats_from_values(self, values: Mapping[str, Tensor]) -> Dict[str, Any]:
        stats: Dict[str, Any] = {}
        for method in self.methods:  # keys are namespaced: each member reads its own
            if method.needs_window_stats:
                stats.update(method.window_stats_from_values(values))
        return stats

    def recorded_metrics(self) -> Dict[str, Any]:
        metrics: Dict[str, Any] = {}
        for method in self.methods:
            metrics.update(method.recorded_metrics())
        return metrics

    def reset_metrics(self) -> None:
        for method in self.methods:
            method.reset_metrics()


def _product(tensors) -> Optional[Tensor]:
    result = None
    for tensor in tensors:
        if tensor is not None:
            result = tensor if result is None else result * tensor
    return result


def compose_methods(methods: Sequence[Method]) -> Method:
    """One Method applying several; a single method is returned unchanged."""
    methods = list(methods)
    if len(methods) == 1:
        return methods[0]
    return ComposedMethod(methods)
