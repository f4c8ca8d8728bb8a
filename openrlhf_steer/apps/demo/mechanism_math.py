"""Pure math of the mechanism claims: quadrants, a tabular softmax step, and the statistics of one step.

Notation per token t: p = pi(a_t | s_t) of the sampled token, H_t the full-vocabulary entropy at s_t,
A_t the advantage, eta the learning rate. STEER's Omega (Eq. 7, paper sign: > 0 raises the entropy) is
-eta * w_t (1 - p)^2 (log p + H_t) with w_t = I_clip r_t A_t; its indicator delta (Eq. 8) has the sign of
-(log p + H_t).
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch

from openrlhf_steer.core.estimators import first_order_entropy_change

Tensor = torch.Tensor

# STEER Sec. 3.2.1 / Figure 4: (sign of A, sign of delta) -> quadrant, and the entropy change it predicts.
QUADRANTS = ("I", "II", "III", "IV")
QUADRANT_SIGN = {"I": -1, "II": +1, "III": -1, "IV": +1}  # I, III lower the entropy; II, IV raise it


def quadrant_masks(advantages: Tensor, log_probs: Tensor, entropy: Tensor, mask: Tensor) -> Dict[str, Tensor]:
    """Boolean masks of STEER's four quadrants (Sec. 3.2.1): I A > 0, delta < 0; II A > 0, delta > 0;
    III A < 0, delta > 0; IV A < 0, delta < 0. delta (Eq. 8) > 0 exactly when log p + H < 0, i.e. the
    token is less likely than the entropy says a typical token is ("low probability")."""
    valid = mask.bool()
    low = (log_probs + entropy) < 0  # delta > 0
    pos, neg = advantages > 0, advantages < 0
    return {
        "I": valid & pos & ~low,
        "II": valid & pos & low,
        "III": valid & neg & low,
        "IV": valid & neg & ~low,
    }


def paper_omega(log_probs: Tensor, old_log_probs: Tensor, entropy: Tensor, advantages: Tensor, lr: float) -> Tensor:
    """STEER Eq. 7 with the paper's sign (> 0 raises the entropy), without the clip indicator:
    -eta * r A (1 - p)^2 (log p + H). The core's estimate is the code's metric, which is its negative over eta."""
    return -lr * first_order_entropy_change(log_probs, old_log_probs, entropy, advantages, prob_power=2)


def softmax_entropy(logits: Tensor) -> Tensor:
    """Full-vocabulary entropy of softmax(logits) along the last dimension."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def tabular_step(logits: Tensor, states: Tensor, actions: Tensor, weights: Tensor, lr: float) -> Tensor:
    """One plain gradient-ascent step of sum_t w_t log softmax(z_{s_t})[a_t] on a logit table z [S, V]
    (STEER Assumption 1: one independent logit per (state, action)). The gradient with respect to z_s is
    sum over the tokens t at s of w_t (e_{a_t} - pi_s)."""
    probs = torch.softmax(logits, dim=-1)
    grad = torch.zeros_like(logits)
    onehot = torch.zeros(len(actions), logits.shape[-1], dtype=logits.dtype)
    onehot[torch.arange(len(actions)), actions] = 1.0
    grad.index_add_(0, states, weights.to(logits.dtype)[:, None] * (onehot - probs[states]))
    return logits + lr * grad


def sampled_logit_step(logits: Tensor, states: Tensor, actions: Tensor, weights: Tensor, lr: float) -> Tensor:
    """The update STEER's proof of Theorem 1 assumes (App. C): only the sampled token's own logit moves, by
    eta * w_t * (1 - p_t) (its derivative of log p), the other logits of the state stay."""
    probs = torch.softmax(logits, dim=-1)[states, actions]
    moved = logits.clone()
    moved.index_put_((states, actions), lr * weights.to(logits.dtype) * (1.0 - probs), accumulate=True)
    return moved


def first_order_change(logits: Tensor, new_logits: Tensor) -> Tensor:
    """<grad_z H(softmax z), z' - z> per state: the exact first-order entropy change of a logit move, with
    grad_z H = -pi (log pi + H)."""
    log_p = torch.log_softmax(logits, dim=-1)
    probs = log_p.exp()
    entropy = -(probs * log_p).sum(-1, keepdim=True)
    return (-(probs * (log_p + entropy)) * (new_logits - logits)).sum(-1)


def ratio_through_origin(measured: Tensor, estimate: Tensor) -> float:
    """Least-squares slope of measured on estimate through the origin: sum(m e) / sum(e^2); 1 when they agree."""
    denominator = float((estimate * estimate).sum())
    if denominator <= 0.0:
        raise ValueError("ratio_through_origin: every estimate is 0 (no token with a nonzero update)")
    return float((measured * estimate).sum()) / denominator


def upper_tail(values: Tensor, quantile: float = 0.9) -> float:
    """The ``quantile`` of |values| (STEER Sec. 4's claim is about large per-token changes, not only the mean)."""
    if values.numel() == 0:
        raise ValueError("upper_tail: no values")
    return float(torch.quantile(values.abs().double(), quantile))


def equal_norm_scale(reference: Tensor, direction: Tensor) -> float:
    """Factor that gives ``direction`` the norm of ``reference`` (a smaller step must not win by construction)."""
    norm = float(direction.norm())
    if norm == 0.0:
        raise ValueError("equal_norm_scale: the direction is zero (no token carries a gradient)")
    return float(reference.norm()) / norm


def weight_distribution(weights: Tensor, mask: Tensor, below: float = 0.95) -> Dict[str, float]:
    """Median, 10th percentile and the share of valid tokens whose weight is below ``below``."""
    values = weights[mask.bool()].double()
    if values.numel() == 0:
        return {"median": float("nan"), "p10": float("nan"), f"share_below_{below}": float("nan")}
    return {
        "median": float(torch.quantile(values, 0.5)),
        "p10": float(torch.quantile(values, 0.1)),
        f"share_below_{below}": float((values < below).double().mean()),
    }


def mean_of(values: Sequence[float]) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else float("nan")
