"""Pure estimators: entropy change of a token update (STEER, Clip-/KL-Cov) and KL(pi || pi_ref).

Notation per token t of a response: p = pi_theta(y_t | ...) the current probability of the sampled
token, p_old its rollout probability, H the full-vocabulary entropy at that position, A the advantage.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

Tensor = torch.Tensor

PROB_CLAMP = 1e-8  # the authors' clamp of p into [1e-8, 1 - 1e-8]


def first_order_entropy_change(
    log_probs: Tensor,
    old_log_probs: Tensor,
    entropy: Tensor,
    advantages: Tensor,
    *,
    prob_power: int = 2,
) -> Tensor:
    """STEER's first-order estimate Omega_t of the entropy change caused by token t (Hao et al., arXiv 2510.10150).

    As in the authors' ``compute_token_weights`` (the paper's Omega = -eta * I_clip * r A (1 - p)^2
    (log p + H) is the entropy change itself; the code drops -eta, whose scale cancels in the weights,
    and the clip indicator)::

        Omega_t = (A_t / p_old) * p (1 - p)^prob_power * (log p + H_t)
                = A_t * r_t * (1 - p)^prob_power * (log p + H_t),   r_t = p / p_old

    with p clamped to [1e-8, 1 - 1e-8] and p_old to [1e-8, 1]. ``prob_power`` 2 is the paper's
    (1 - p)^2 (and the bytecode of the authors' first release); 1 is the variant of the later ``.py``.
    Sign: this is the code's ``metric``, whose Omega > 0 means the update lowers the entropy; the paper's
    Omega (Eq. 7 / 9, > 0 raises the entropy) is -eta times it (``methods.steer.paper_signed_omega`` drops
    eta > 0, which no ranking or mapping depends on). For reference, a tabular softmax whose
    sampled logit alone takes a step eta * A r (1 - p) changes its entropy by exactly (to first order)
    -eta * p * Omega(prob_power=1) (tests/test_core_registry.py): STEER's Omega omits the factor p,
    which only matters across tokens of different probability. Non-finite values are set to 0.
    Returns a detached [B, T] tensor (no masking).
    """
    if prob_power not in (1, 2):
        raise ValueError(f"prob_power={prob_power!r} must be 2 (paper, default) or 1 (later code variant)")
    with torch.no_grad():
        # half precision cannot represent 1 - 1e-8: compute in at least float32
        dtype = torch.promote_types(log_probs.dtype, torch.float32)
        p = log_probs.detach().to(dtype).exp().clamp(PROB_CLAMP, 1.0 - PROB_CLAMP)
        p_old = old_log_probs.detach().to(dtype).exp().clamp(PROB_CLAMP, 1.0)
        omega = (
            (advantages.detach().to(dtype) / p_old)
            * p
            * (1.0 - p) ** prob_power
            * (p.log() + entropy.detach().to(dtype))
        )
        return torch.where(torch.isfinite(omega), omega, torch.zeros_like(omega))


def covariance_means(log_probs: Tensor, advantages: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Masked means (mean A, mean log p) over the valid tokens; zeros for an empty mask."""
    m = mask.bool()
    count = m.sum().clamp(min=1).to(log_probs.dtype)
    zero = torch.zeros((), dtype=log_probs.dtype, device=log_probs.device)
    mean_adv = torch.where(m, advantages.detach(), zero).sum() / count
    mean_lp = torch.where(m, log_probs.detach(), zero).sum() / count
    return mean_adv, mean_lp


def covariance_entropy_change(
    log_probs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    reduction: str = "none",
    means: Optional[Tuple[float, float]] = None,
) -> Tensor:
    """Cui et al.'s covariance estimate of the entropy change (arXiv 2505.22617).

    For a softmax policy under policy gradient, ``Delta H ~= -eta * Cov(log pi(y), A)``. Per token,
    as in the authors' Clip-Cov / KL-Cov code, the centred product over the valid tokens::

        cov_t = (A_t - mean_valid(A)) * (log p_t - mean_valid(log p))

    ``reduction='none'`` returns the per-token products [B, T] (0 on masked positions);
    ``reduction='mean'`` returns the batch covariance (the mean of cov_t over valid tokens), so
    that the estimated entropy change of the step is ``-eta * result``. ``means`` overrides the
    centring means (e.g. taken over a whole optimizer-step window). Detached.
    """
    if reduction not in ("none", "mean"):
        raise ValueError(f"reduction={reduction!r} must be 'none' (per token) or 'mean' (batch covariance)")
    m = mask.bool()
    with torch.no_grad():
        if means is None:
            mean_adv, mean_lp = covariance_means(log_probs, advantages, m)
        else:
            mean_adv, mean_lp = means
        cov = (advantages.detach() - mean_adv) * (log_probs.detach() - mean_lp)
        cov = torch.where(m, cov, torch.zeros_like(cov))
        if reduction == "none":
            return cov
        return cov.sum() / m.sum().clamp(min=1).to(cov.dtype)


KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_estimate(log_probs: Tensor, ref_log_probs: Tensor, kind: str = "k3", clamp: Optional[float] = None) -> Tensor:
    """Per-token estimators of KL(pi_theta || pi_ref) from samples of pi_theta
    (Schulman, "Approximating KL divergence").

    With ``log r = log pi_ref(y) - log pi_theta(y)``::

        k1 = -log r                 (unbiased, high variance, can be negative)
        k2 = (log r)^2 / 2          (biased, low variance)
        k3 = (r - 1) - log r        (unbiased, low variance, >= 0; GRPO's "low_var_kl")

    Differentiable in ``log_probs``; ``clamp`` optionally bounds the result to [-clamp, clamp]
    (verl clamps k3 to [-10, 10]).
    """
    if kind not in KL_ESTIMATORS:
        raise ValueError(f"kl estimator kind={kind!r} is unknown: choose one of {list(KL_ESTIMATORS)}")
    log_r = ref_log_probs.detach() - log_probs
    if kind == "k1":
        value = -log_r
    elif kind == "k2":
        value = 0.5 * log_r.pow(2)
    else:
        value = log_r.exp() - 1.0 - log_r
    if clamp is not None:
        value = value.clamp(-clamp, clamp)
    return value


# --------------------------------------------------------------------------------------------------
# STEER Figure 2: the raw predicted entropy changes (shared by the demo's claim 6 and the Figure 2 table)
# --------------------------------------------------------------------------------------------------
def clip_indicator(log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, eps_low: float, eps_high: float):
    """STEER Eq. 6, I_clip: 0 where the clipped surrogate passes no gradient (A > 0 and r > 1 + eps_high,
    or A < 0 and r < 1 - eps_low), else 1, with r = p / p_old. The clip test is the loss' own
    (``core.loss.clipped_surrogate``, no dual clip); returned in the dtype of ``log_probs``."""
    from openrlhf_steer.core.loss import clipped_surrogate  # lazily: the loss module is the heavier one
    from openrlhf_steer.core.types import LossConfig

    config = LossConfig(eps_low=eps_low, eps_high=eps_high, dual_clip=None, clip=True)
    with torch.no_grad():
        clipped = clipped_surrogate(log_probs.detach(), old_log_probs.detach(), advantages.detach(), config)["clipped"]
    return (~clipped).to(log_probs.dtype)


def omega_entropy_change(
    log_probs: Tensor,
    old_log_probs: Tensor,
    entropy: Tensor,
    advantages: Tensor,
    *,
    lr: float,
    eps_low: float,
    eps_high: float,
) -> Tensor:
    """STEER Eq. 7, the predicted entropy change itself: -eta * I_clip * r A (1 - p)^2 (log p + H).

    ``first_order_entropy_change`` is the authors' Omega without -eta and I_clip; the clip indicator is
    taken at the precision of Omega (at least float32). Detached, [B, T], no masking."""
    omega = first_order_entropy_change(log_probs, old_log_probs, entropy, advantages)
    indicator = clip_indicator(log_probs.to(omega.dtype), old_log_probs.to(omega.dtype), advantages, eps_low, eps_high)
    return -lr * indicator * omega


def covariance_entropy_change_estimate(
    log_probs: Tensor, advantages: Tensor, mask: Optional[Tensor] = None, *, lr: Optional[float] = None
) -> Tensor:
    """Cui et al.'s per-token estimate as a predicted change: -cov_t, or -eta * cov_t with ``lr``
    (their theorem Delta H ~ -eta Cov); centred over the valid tokens of ``mask`` (default: all)."""
    mask = torch.ones_like(log_probs) if mask is None else mask
    return -(1.0 if lr is None else lr) * covariance_entropy_change(log_probs, advantages, mask)
