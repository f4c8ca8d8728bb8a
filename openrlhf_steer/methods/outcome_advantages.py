"""Group-level advantage estimators and reward shaping (hook a): W-REINFORCE, OPO, unlikeliness
reward, Edge-GRPO. Each returns per-token advantages [N, T] (0 on masked positions) through
``openrlhf_steer.core.advantages.compute_advantages(group, method)``.
"""

from dataclasses import dataclass, field
from typing import Optional

import torch

from openrlhf_steer.core.types import GroupInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import Method, MethodConfig, check_choice, check_range
from openrlhf_steer.core.group_math import broadcast_to_tokens, grpo_advantages

Tensor = torch.Tensor


def _require(group: GroupInputs, name: str, method: str) -> Tensor:
    value = getattr(group, name)
    if value is None:
        raise ValueError(
            f"method {method!r} needs GroupInputs.{name} [N, T] (per-token values of the rollout); provide it"
        )
    return value


# --------------------------------------------------------------------------------------------------
# W-REINFORCE
# --------------------------------------------------------------------------------------------------
W_REINFORCE = "W-REINFORCE, Zhu et al., arXiv 2506.01347"


def w_reinforce_advantages(rewards: Tensor, positive_weight: float = 0.1, mode: str = "weighted") -> Tensor:
    """Sequence advantages [N]: correct (r == 1) -> lambda * r, incorrect (r == 0) -> r - 1, other r unchanged.

    psr: correct r, incorrect 0; nsr: correct 0, incorrect -1 (the authors subset the batch instead,
    which also removes those tokens from the token-mean denominator).
    """
    r = rewards.to(torch.float64)
    correct, incorrect = r == 1.0, r == 0.0
    pos_scale = {"weighted": positive_weight, "psr": 1.0, "nsr": 0.0}[mode]
    neg_scale = 0.0 if mode == "psr" else 1.0
    adv = torch.where(correct, pos_scale * r, r)
    adv = torch.where(incorrect, neg_scale * (r - 1.0), adv)
    return adv.float()


@dataclass
class WReinforceConfig(MethodConfig):
    positive_weight: float = field(
        default=0.1,
        metadata={
            "help": f"lambda: advantage of correct responses, lambda * r ({W_REINFORCE}; README recommends 0.1; "
            f"default 0.1)."
        },
    )
    mode: str = field(
        default="weighted",
        metadata={
            "help": f"weighted (W-REINFORCE) | psr (positive samples only) | nsr (negative samples only) "
            f"({W_REINFORCE}; default weighted)."
        },
    )

    def validate(self) -> None:
        check_range(self, "positive_weight", 0.0, None, hint="recommended 0.1")
        check_choice(self, "mode", ("weighted", "psr", "nsr"))


@register_method
class WReinforce(Method):
    """Weighted REINFORCE: A = lambda for correct, -1 for incorrect responses; no group baseline (hook a)."""

    name = "w_reinforce"
    config_cls = WReinforceConfig
    paper = W_REINFORCE

    def compute_advantages(self, group: GroupInputs) -> Tensor:
        seq = w_reinforce_advantages(group.rewards, self.config.positive_weight, self.config.mode)
        return broadcast_to_tokens(seq, group.response_mask)


# --------------------------------------------------------------------------------------------------
# OPO
# --------------------------------------------------------------------------------------------------
OPO = "OPO, Hao et al., arXiv 2505.23585"


def opo_advantages(rewards: Tensor, group_ids: Tensor, lengths: Tensor) -> Tensor:
    """A_i = r_i - sum_j L_j r_j / sum_j L_j over the group (length-weighted baseline); size-1 groups: baseline 0."""
    r = rewards.to(torch.float64)
    lengths = lengths.to(torch.float64)
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    weighted = torch.zeros(counts.numel(), dtype=torch.float64, device=r.device).index_add_(0, inverse, lengths * r)
    total_len = torch.zeros(counts.numel(), dtype=torch.float64, device=r.device).index_add_(0, inverse, lengths)
    baseline = weighted / total_len.clamp(min=1.0)
    baseline = torch.where(counts == 1, torch.zeros_like(baseline), baseline)
    return (r - baseline[inverse]).float()


@dataclass
class OpoConfig(MethodConfig):
    """No options: use exact on-policy training (one optimizer step per rollout) as the paper does."""


@register_method
class Opo(Method):
    """On-Policy RL with the optimal (length-weighted) reward baseline, no std normalisation (hook a)."""

    name = "opo"
    config_cls = OpoConfig
    paper = OPO

    def compute_advantages(self, group: GroupInputs) -> Tensor:
        lengths = group.response_mask.to(torch.float64).sum(-1)
        return broadcast_to_tokens(opo_advantages(group.rewards, group.group_ids, lengths), group.response_mask)


# --------------------------------------------------------------------------------------------------
# Unlikeliness reward
# --------------------------------------------------------------------------------------------------
UNLIKELY = "Unlikeliness reward, He, Fried & Welleck, arXiv 2506.02355"


def unlikeliness_rewards(rewards: Tensor, group_ids: Tensor, seq_log_prob: Tensor, beta: float = 0.25) -> Tensor:
    """r'_i = r_i (1 - beta * rank_i / G), rank 0 = the least likely response of its group (by mean log-prob)."""
    shaped = rewards.to(torch.float64).clone()
    for gid in torch.unique(group_ids):
        idx = (group_ids == gid).nonzero().squeeze(-1)
        order = torch.argsort(seq_log_prob[idx], stable=True)
        ranks = torch.empty_like(order)
        ranks[order] = torch.arange(order.numel(), device=order.device)
        shaped[idx] = shaped[idx] * (1.0 - beta * ranks.to(torch.float64) / idx.numel())
    return shaped.to(rewards.dtype if torch.is_floating_point(rewards) else torch.float32)


@dataclass
class UnlikelinessRewardConfig(MethodConfig):
    beta: float = field(
        default=0.25,
        metadata={
            "help": f"Rank penalty beta in r (1 - beta * rank / G) ({UNLIKELY}; scripts rank_penalty=0.25; default "
            f"0.25)."
        },
    )

    def validate(self) -> None:
        check_range(self, "beta", 0.0, 1.0, hint="default 0.25")


@register_method
class UnlikelinessReward(Method):
    """Rewards correct but unlikely responses more: rank-based reward shaping before GRPO (hook a)."""

    name = "unlikeliness_reward"
    config_cls = UnlikelinessRewardConfig
    paper = UNLIKELY

    def shape_rewards(self, group: GroupInputs) -> Tensor:
        old = _require(group, "old_log_probs", self.name)
        mask = group.response_mask.to(torch.float64)
        seq_lp = torch.where(group.response_mask.bool(), old.to(torch.float64), torch.zeros_like(mask)).sum(
            -1
        ) / mask.sum(-1).clamp(min=1.0)
        return unlikeliness_rewards(group.rewards.float(), group.group_ids, seq_lp, self.config.beta)


# --------------------------------------------------------------------------------------------------
# Edge-GRPO
# --------------------------------------------------------------------------------------------------
EDGE = "EDGE-GRPO entropy-driven advantage, Zhang et al., arXiv 2507.21848"


def edge_grpo_advantages(
    advantages: Tensor, seq_entropy: Tensor, min_entropy: float = 1e-6, group_ids: Optional[Tensor] = None
) -> Tensor:
    """A'_i = A_i / P_i * mean_j P_j, P floored at ``min_entropy``; the mean runs over the responses of i's group
    (``group_ids`` given) or over every response passed (``group_ids`` None)."""
    p = seq_entropy.to(torch.float64).clamp(min=min_entropy)
    if group_ids is None:
        scale = p.mean()
    else:  # plain group means (a one-response group is its own mean)
        _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
        sums = torch.zeros(counts.numel(), dtype=p.dtype, device=p.device).index_add_(0, inverse, p)
        scale = (sums / counts)[inverse]
    return (advantages.to(torch.float64) / p * scale).float()


# Edge-GRPO entropy normalizer -> whether P_i is divided by its group's mean (True) or the rollout's mean (False).
EDGE_NORMALIZERS = {"group": True, "batch": False}


@dataclass
class EdgeGrpoConfig(MethodConfig):
    entropy_mean: str = field(
        default="masked",
        metadata={
            "help": f"P_i = mean entropy over the response's own tokens (masked: the paper's per-response mean "
            f"entropy, independent of padding) or over all T positions incl. padding (all: the authors' TRL code, "
            f"torch.mean over the completion width; with our zero-filled rollout entropy this is sum/T, so of two "
            f"answers with equal per-token entropy the shorter gets the larger advantage) ({EDGE}; default "
            f"masked)."
        },
    )
    entropy_normalizer: str = field(
        default="group",
        metadata={
            "help": f"Set whose mean entropy normalizes P_i: group (the responses to the same prompt: STEER Table 3, "
            f"'normalized entropy across the group', and the EDGE-GRPO paper; the authors' code divides by the mean "
            f"over the batch gathered from all devices, which their train_grpo.sh, one response per device on 8 GPUs, "
            f"makes one group) or batch (every response of the rollout) ({EDGE}; default group)."
        },
    )
    adv_eps: float = field(
        default=1e-4,
        metadata={"help": f"epsilon of the GRPO std in (r - mean)/(std + eps) ({EDGE} code; default 1e-4)."},
    )
    min_entropy: float = field(
        default=1e-6,
        metadata={
            "help": "Floor of P_i so that a zero-entropy response cannot divide by 0 (our addition; default 1e-6)."
        },
    )

    def validate(self) -> None:
        check_choice(self, "entropy_mean", ("all", "masked"))
        check_choice(self, "entropy_normalizer", tuple(EDGE_NORMALIZERS))
        check_range(self, "adv_eps", 0.0, None, low_open=True, hint="default 1e-4")
        check_range(self, "min_entropy", 0.0, None, low_open=True, hint="default 1e-6")


@register_method
class EdgeGrpo(Method):
    """Entropy-Driven Advantage: GRPO advantage divided by the response's mean entropy, rescaled (hook a).

    Uses the rollout entropy, detached (the authors' TRL code keeps a gradient through P_i, which we
    treat as unintended)."""

    name = "edge_grpo"
    group_requires = ("entropy",)  # the rollout-policy per-token entropy
    config_cls = EdgeGrpoConfig
    paper = EDGE

    def compute_advantages(self, group: GroupInputs) -> Tensor:
        entropy = _require(group, "entropy", self.name).detach().to(torch.float64)
        if self.config.entropy_mean == "all":
            if not bool(torch.isfinite(entropy).all()):
                raise ValueError(
                    "edge_grpo entropy_mean=all needs finite GroupInputs.entropy at padding positions too; "
                    "use entropy_mean=masked"
                )
            seq_entropy = entropy.mean(-1)
        else:
            mask = group.response_mask.to(torch.float64)
            seq_entropy = torch.where(group.response_mask.bool(), entropy, torch.zeros_like(entropy)).sum(
                -1
            ) / mask.sum(-1).clamp(min=1.0)
        seq_adv = grpo_advantages(group.rewards.float(), group.group_ids, norm_by_std=True, eps=self.config.adv_eps)
        group_ids = group.group_ids if EDGE_NORMALIZERS[self.config.entropy_normalizer] else None
        return broadcast_to_tokens(
            edge_grpo_advantages(seq_adv, seq_entropy, self.config.min_entropy, group_ids), group.response_mask
        )
