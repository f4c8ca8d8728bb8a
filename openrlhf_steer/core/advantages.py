"""Group-level advantages for RLVR: GRPO normalisation plus the methods' advantage hooks.

``compute_advantages(group, method)`` runs, in order: the method's ``shape_rewards`` (e.g. the
unlikeliness reward), then its ``compute_advantages`` (W-REINFORCE, OPO, Edge-GRPO, GTPO) or, if it
has none, GRPO group normalisation ``(r - mean_g) / (std_g + eps)`` (unbiased std as in verl; a group
of one response has mean 0 and std 1). The result is per token [N, T], 0 on masked positions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch

from openrlhf_steer.core.group_math import broadcast_to_tokens, group_stats, grpo_advantages  # noqa: F401 (re-exported)
from openrlhf_steer.core.hooks import AdvantageHooks
from openrlhf_steer.core.types import GroupInputs

Tensor = torch.Tensor


def validate_group(group: GroupInputs) -> None:
    """Shapes and finiteness of a GroupInputs, with errors naming the field."""
    for name in ("rewards", "group_ids", "response_mask"):
        if not isinstance(getattr(group, name), torch.Tensor):
            raise ValueError(f"GroupInputs.{name} must be a torch.Tensor, got {type(getattr(group, name)).__name__}")
    if group.rewards.dim() != 1:
        raise ValueError(f"GroupInputs.rewards must be [N], got shape {tuple(group.rewards.shape)}")
    n = group.rewards.shape[0]
    if group.group_ids.shape != (n,):
        raise ValueError(f"GroupInputs.group_ids must be [N={n}] like rewards, got {tuple(group.group_ids.shape)}")
    if group.response_mask.dim() != 2 or group.response_mask.shape[0] != n:
        raise ValueError(f"GroupInputs.response_mask must be [N={n}, T], got {tuple(group.response_mask.shape)}")
    if not torch.isfinite(group.rewards.float()).all():
        raise ValueError("GroupInputs.rewards contains NaN or inf; check the reward function")
    for name in ("old_log_probs", "entropy"):
        tensor = getattr(group, name)
        if tensor is None:
            continue
        if tensor.shape != group.response_mask.shape:
            raise ValueError(
                f"GroupInputs.{name} must be [N, T] = {tuple(group.response_mask.shape)}, got {tuple(tensor.shape)}"
            )
        bad = ~torch.isfinite(tensor) & group.response_mask.bool()
        if bool(bad.any()):
            raise ValueError(f"GroupInputs.{name} contains NaN or inf at {int(bad.sum())} valid token(s)")


def compute_advantages(
    group: GroupInputs, method: Optional[AdvantageHooks] = None, norm_by_std: bool = True, eps: float = 1e-6
) -> Tensor:
    """Per-token advantages [N, T] for a rollout (GRPO by default, method hooks applied; masked 0)."""
    validate_group(group)
    if method is not None:
        shaped_rewards = method.shape_rewards(group)
        if shaped_rewards.shape != group.rewards.shape or not torch.isfinite(shaped_rewards.float()).all():
            raise ValueError(
                f"method {method.name!r} shape_rewards returned an invalid tensor (shape {tuple(shaped_rewards.shape)})"
            )
        group = replace(group, rewards=shaped_rewards)
        advantages = method.compute_advantages(group)
        if advantages is not None:
            if advantages.shape != group.response_mask.shape:
                raise ValueError(
                    f"method {method.name!r} compute_advantages returned {tuple(advantages.shape)}, expected [N, T] = "
                    f"{tuple(group.response_mask.shape)}"
                )
            if not torch.isfinite(advantages).all():
                raise ValueError(
                    f"method {method.name!r} produced NaN/inf advantages; check its inputs (entropy, log-probs)"
                )
            return torch.where(group.response_mask.bool(), advantages, torch.zeros_like(advantages))
    seq_adv = grpo_advantages(group.rewards.float(), group.group_ids, norm_by_std=norm_by_std, eps=eps)
    return broadcast_to_tokens(seq_adv, group.response_mask)
