"""The hooks the loss and the advantage estimator call, as structural protocols with neutral defaults.

``openrlhf_steer.methods.base.Method`` satisfies both protocols without inheriting from them, so core
depends on nothing above it: :class:`~openrlhf_steer.core.loss.PolicyLoss` and
:func:`~openrlhf_steer.core.advantages.compute_advantages` accept any object with these methods, and
:class:`NeutralHooks` (plain GRPO) when none is given.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Protocol, runtime_checkable

import torch

from openrlhf_steer.core.types import GroupInputs, LossConfig, LossInputs

Tensor = torch.Tensor


@runtime_checkable
class LossHooks(Protocol):
    """What :class:`~openrlhf_steer.core.loss.PolicyLoss` calls on its method, in call order."""

    name: str

    def required_inputs(self) -> tuple: ...

    def reset_metrics(self) -> None: ...

    def loss_config(self, base: LossConfig) -> LossConfig: ...

    def shape_advantages(self, inputs: LossInputs, advantages: Tensor) -> Tensor: ...

    def clip_mask(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Optional[Tensor]: ...

    def token_weights(self, inputs: LossInputs) -> Optional[Tensor]: ...

    def extra_token_terms(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Dict[str, Tensor]: ...

    def recorded_metrics(self) -> Mapping[str, Any]:
        """Diagnostics of the last call: 0-dim tensors (kept on the device) or Python numbers."""
        ...

    def controller_values(self) -> Mapping[str, float]: ...

    def overrides_hook(self, hook: str) -> bool: ...


@runtime_checkable
class AdvantageHooks(Protocol):
    """What :func:`~openrlhf_steer.core.advantages.compute_advantages` calls on its method."""

    name: str

    def shape_rewards(self, group: GroupInputs) -> Tensor: ...

    def compute_advantages(self, group: GroupInputs) -> Optional[Tensor]: ...


class NeutralHooks:
    """Every hook neutral: the plain clipped GRPO surrogate and GRPO group advantages."""

    name = "grpo"

    def required_inputs(self) -> tuple:
        return ()

    def reset_metrics(self) -> None:
        return None

    def loss_config(self, base: LossConfig) -> LossConfig:
        return base

    def shape_advantages(self, inputs: LossInputs, advantages: Tensor) -> Tensor:
        return advantages

    def clip_mask(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Optional[Tensor]:
        return None

    def token_weights(self, inputs: LossInputs) -> Optional[Tensor]:
        return None

    def extra_token_terms(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {}

    def recorded_metrics(self) -> Mapping[str, Any]:
        return {}

    def controller_values(self) -> Mapping[str, float]:
        return {}

    def overrides_hook(self, hook: str) -> bool:
        return False

    def shape_rewards(self, group: GroupInputs) -> Tensor:
        return group.rewards

    def compute_advantages(self, group: GroupInputs) -> Optional[Tensor]:
        return None
