"""Helpers for the core method-library tests: build [B, T] LossInputs from nested lists."""

import math

import torch

from openrlhf_steer.core.types import LossInputs

LN = math.log


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def make_inputs(log_probs, advantages, mask=None, old_log_probs=None, grad=True, **extra):
    """LossInputs in float64; ``log_probs`` is a leaf with requires_grad so tests can read .grad."""
    lp = t(log_probs).requires_grad_(grad)
    adv = t(advantages)
    if adv.shape != lp.shape:
        adv = adv.expand_as(lp).clone()
    mask = torch.ones_like(lp, dtype=torch.bool) if mask is None else t(mask).bool()
    old = lp.detach().clone() if old_log_probs is None else t(old_log_probs)
    for key in ("entropy", "old_entropy", "ref_log_probs"):
        if key in extra and not isinstance(extra[key], torch.Tensor):
            extra[key] = t(extra[key])
    return LossInputs(log_probs=lp, old_log_probs=old, advantages=adv, action_mask=mask, **extra)
