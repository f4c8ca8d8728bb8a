"""Pure group-level advantage math (GRPO statistics), shared by core.advantages and the advantage methods."""

from __future__ import annotations

from typing import Tuple

import torch

Tensor = torch.Tensor


def group_stats(values: Tensor, group_ids: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-element group mean, unbiased std and group size (size-1 groups: mean 0, std 1, as verl)."""
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    n_groups = counts.numel()
    values = values.to(torch.float64)
    sums = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add_(0, inverse, values)
    means = sums / counts
    sq = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add_(
        0, inverse, (values - means[inverse]) ** 2
    )
    stds = torch.sqrt(sq / (counts - 1).clamp(min=1))
    single = counts == 1
    means = torch.where(single, torch.zeros_like(means), means)
    stds = torch.where(single, torch.ones_like(stds), stds)
    return means[inverse], stds[inverse], counts[inverse]


def grpo_advantages(rewards: Tensor, group_ids: Tensor, norm_by_std: bool = True, eps: float = 1e-6) -> Tensor:
    """Sequence-level GRPO advantage [N]: ``(r - mean_g) / (std_g + eps)``; Dr.GRPO when ``norm_by_std=False``."""
    mean, std, _ = group_stats(rewards, group_ids)
    adv = rewards.to(torch.float64) - mean
    if norm_by_std:
        adv = adv / (std + eps)
    return adv.to(rewards.dtype if torch.is_floating_point(rewards) else torch.float32)


def broadcast_to_tokens(seq_values: Tensor, response_mask: Tensor) -> Tensor:
    """[N] -> [N, T], 0 on masked positions."""
    mask = response_mask.bool()
    return torch.where(mask, seq_values.unsqueeze(-1).to(torch.float32), torch.zeros(mask.shape, device=mask.device))
