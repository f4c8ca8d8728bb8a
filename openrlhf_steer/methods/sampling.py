"""Seeded random choice of tokens among candidates (Clip-Cov, Rand-Pos-Clip, quadrant interventions)."""

from __future__ import annotations

from typing import Optional

import torch

Tensor = torch.Tensor


def count_for_fraction(n_candidates: int, fraction: float) -> int:
    """round(fraction * n), half up; 0 when there are no candidates."""
    return min(n_candidates, int(fraction * n_candidates + 0.5)) if n_candidates > 0 else 0


def choose_random_tokens(
    candidates: Tensor, fraction: Optional[float], generator: Optional[torch.Generator], count: Optional[int] = None
) -> Tensor:
    """Boolean mask of ``count`` (or round(fraction * #candidates)) tokens drawn uniformly without replacement.

    The draw is a ``torch.randperm`` over the flattened candidate indices with ``generator`` (CPU),
    so a seeded generator reproduces the same choice.
    """
    flat = candidates.reshape(-1).nonzero().squeeze(-1)
    n = int(flat.numel())
    k = count_for_fraction(n, fraction) if count is None else min(int(count), n)
    chosen = torch.zeros(candidates.numel(), dtype=torch.bool, device=candidates.device)
    if k > 0:
        # draw on the generator's device (a CUDA generator cannot drive a CPU randperm)
        device = generator.device if generator is not None else flat.device
        perm = torch.randperm(n, generator=generator, device=device)[:k].to(flat.device)
        chosen[flat[perm]] = True
    return chosen.view(candidates.shape)


def linear_quantile(values: Tensor, q: float) -> float:
    """q-quantile with linear interpolation (torch.quantile's default) via a sort, for any size.

    torch.quantile refuses inputs above 2**24 elements; an optimizer-step window can exceed that.
    """
    return float(linear_quantile_tensor(values, q))


def linear_quantile_tensor(values: Tensor, q: float) -> Tensor:
    """:func:`linear_quantile` as a float64 0-dim tensor on the values' device (no host read)."""
    flat = values.reshape(-1).double()
    n = flat.numel()
    if n == 0:
        raise ValueError("quantile of an empty set")
    ordered = torch.sort(flat).values
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return ordered[lo] + frac * (ordered[hi] - ordered[lo])
