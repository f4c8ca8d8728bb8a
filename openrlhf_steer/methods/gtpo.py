"""GTPO and GRPO-S: entropy-weighted reward redistribution (Tan et al., arXiv 2508.04349).

The authors publish no code and the project holds no copy of the paper's text. The equations below
are the paper's Eq. 3, 5 and 6 as transcribed by a third-party implementation that states it follows
them (textpolicy, "paper-faithful GTPO", PR #59), and they agree with the abstract (entropy weight
ratio H_{i,t} / sum_k H_{k,t}; high-entropy tokens of correct responses rewarded, confident tokens of
wrong responses penalised harder). Treat them as unverified. Within one prompt group, with O+ the
responses whose reward exceeds ``reward_threshold`` and O- the others, and "alive at t" meaning the
response has a token at position t (responses left-aligned, right-padded):

token level (GTPO), d_t = |O+ alive at t|, h_t = |O- alive at t|::

    r+_{i,t} = a1 r_i + a2 * H_{i,t} / sum_{k in O+_t} H_{k,t} * d_t
    r-_{j,t} = -a1    - a2 * (1/H_{j,t}) / sum_{k in O-_t} (1/H_{k,t}) * h_t

sequence level (GRPO-S), with the mean response entropy Hbar_i::

    r+_i = a1 r_i + a2 * Hbar_i / sum_{k in O+} Hbar_k * |O+|
    r-_j = -a1    - a2 * (1/Hbar_j) / sum_{k in O-} (1/Hbar_k) * |O-|

Advantages: the shaped rewards are standardised within the group, over all its valid tokens
(``normalization=group``, our default: keeps the correct-vs-wrong signal) or separately over the O+
and O- tokens (``normalization=split``, the third party's reading of Eq. 6, which removes the
a1 r_i offset inside each set). Entropy: the rollout entropy (GroupInputs.entropy), detached.
"""

from dataclasses import dataclass, field

import torch

from openrlhf_steer.core.types import GroupInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import Method, MethodConfig, check_choice, check_range

Tensor = torch.Tensor
PAPER = "GTPO / GRPO-S, Tan et al., arXiv 2508.04349 (equations unverified, see module docstring)"


def _standardise(values: Tensor, members: Tensor, eps: float) -> Tensor:
    """(x - mean) / (std + eps) over the True entries of ``members`` (population std); 0 elsewhere."""
    count = members.sum()
    if int(count) == 0:
        return torch.zeros_like(values)
    selected = values[members]
    mean = selected.mean()
    std = selected.std(unbiased=False) if int(count) > 1 else torch.zeros((), dtype=values.dtype, device=values.device)
    return torch.where(members, (values - mean) / (std + eps), torch.zeros_like(values))


def gtpo_token_rewards(
    rewards: Tensor, entropy: Tensor, mask: Tensor, *, alpha1: float, alpha2: float, reward_threshold: float, eps: float
) -> Tensor:
    """Shaped token rewards [n, T] of ONE group (Eq. 3 for O+, Eq. 5 for O-); 0 on masked positions."""
    alive = mask.bool()
    h = entropy.detach().to(torch.float64)
    pos = (rewards.to(torch.float64) > reward_threshold).unsqueeze(-1) & alive
    neg = ~(rewards.to(torch.float64) > reward_threshold).unsqueeze(-1) & alive
    zero = torch.zeros_like(h)
    h_pos = torch.where(pos, h, zero)
    share_pos = h_pos / h_pos.sum(0, keepdim=True).clamp(min=eps)
    d_t = pos.sum(0, keepdim=True).to(torch.float64)
    inv = torch.where(neg, 1.0 / (h + eps), zero)
    share_neg = inv / inv.sum(0, keepdim=True).clamp(min=eps)
    h_t = neg.sum(0, keepdim=True).to(torch.float64)
    shaped_pos = alpha1 * rewards.to(torch.float64).unsqueeze(-1) + alpha2 * share_pos * d_t
    shaped_neg = -alpha1 - alpha2 * share_neg * h_t
    return torch.where(pos, shaped_pos, torch.where(neg, shaped_neg, zero))


def grpo_s_sequence_rewards(
    rewards: Tensor, mean_entropy: Tensor, *, alpha1: float, alpha2: float, reward_threshold: float, eps: float
) -> Tensor:
    """Shaped sequence rewards [n] of ONE group (GRPO-S)."""
    r = rewards.to(torch.float64)
    hbar = mean_entropy.to(torch.float64)
    pos = r > reward_threshold
    neg = ~pos
    shaped = torch.zeros_like(r)
    if bool(pos.any()):
        shaped[pos] = alpha1 * r[pos] + alpha2 * hbar[pos] / hbar[pos].sum().clamp(min=eps) * float(pos.sum())
    if bool(neg.any()):
        inv = 1.0 / (hbar[neg] + eps)
        shaped[neg] = -alpha1 - alpha2 * inv / inv.sum().clamp(min=eps) * float(neg.sum())
    return shaped


@dataclass
class GtpoConfig(MethodConfig):
    level: str = field(
        default="token", metadata={"help": f"token (GTPO) or sequence (GRPO-S) ({PAPER}; default token)."}
    )
    alpha1: float = field(
        default=1.0,
        metadata={"help": f"Weight a1 of the outcome reward ({PAPER}; reported experimental value 1.0; default 1.0)."},
    )
    alpha2: float = field(
        default=0.1,
        metadata={
            "help": f"Weight a2 of the entropy-redistributed reward ({PAPER}; reported experimental value 0.1; default "
            f"0.1)."
        },
    )
    reward_threshold: float = field(
        default=0.5,
        metadata={
            "help": "Responses with reward > threshold form O+ (correct), the others O- (default 0.5 for 0/1 rewards)."
        },
    )
    normalization: str = field(
        default="group",
        metadata={
            "help": "group: standardise all shaped rewards of a prompt group together (our default); split: O+ and O- "
            "separately (third-party reading of Eq. 6)."
        },
    )
    eps: float = field(
        default=1e-8, metadata={"help": "Numerical epsilon in 1/H, the share denominators and the std (default 1e-8)."}
    )

    def validate(self) -> None:
        check_choice(self, "level", ("token", "sequence"))
        check_range(self, "alpha1", 0.0, None, hint="default 1.0")
        check_range(self, "alpha2", 0.0, None, hint="default 0.1")
        check_range(self, "reward_threshold", None, None)
        check_choice(self, "normalization", ("group", "split"))
        check_range(self, "eps", 0.0, None, low_open=True, hint="default 1e-8")


@register_method
class Gtpo(Method):
    """GTPO / GRPO-S: entropy-weighted shaped rewards, standardised per group into token advantages (hook a)."""

    name = "gtpo"
    group_requires = ("entropy",)  # the rollout-policy per-token entropy
    config_cls = GtpoConfig
    paper = PAPER

    def compute_advantages(self, group: GroupInputs) -> Tensor:
        c = self.config
        if group.entropy is None:
            raise ValueError("method 'gtpo' needs GroupInputs.entropy [N, T] (rollout-policy entropy); provide it")
        mask = group.response_mask.bool()
        advantages = torch.zeros(mask.shape, dtype=torch.float64, device=mask.device)
        for gid in torch.unique(group.group_ids):
            idx = (group.group_ids == gid).nonzero().squeeze(-1)
            g_mask = mask[idx]
            g_rewards = group.rewards[idx].to(torch.float64)
            g_entropy = torch.where(
                g_mask,
                group.entropy[idx].detach().to(torch.float64),
                torch.zeros(g_mask.shape, dtype=torch.float64, device=mask.device),
            )
            if c.level == "token":
                shaped = gtpo_token_rewards(
                    g_rewards,
                    g_entropy,
                    g_mask,
                    alpha1=c.alpha1,
                    alpha2=c.alpha2,
                    reward_threshold=c.reward_threshold,
                    eps=c.eps,
                )
            else:
                hbar = g_entropy.sum(-1) / g_mask.sum(-1).clamp(min=1)
                seq = grpo_s_sequence_rewards(
                    g_rewards, hbar, alpha1=c.alpha1, alpha2=c.alpha2, reward_threshold=c.reward_threshold, eps=c.eps
                )
                shaped = torch.where(
                    g_mask, seq.unsqueeze(-1), torch.zeros(g_mask.shape, dtype=torch.float64, device=mask.device)
                )
            pos = (g_rewards > c.reward_threshold).unsqueeze(-1) & g_mask
            if c.normalization == "group":
                adv = _standardise(shaped, g_mask, c.eps)
            else:
                adv = _standardise(shaped, pos, c.eps) + _standardise(shaped, g_mask & ~pos, c.eps)
            advantages[idx] = adv
        return advantages.float()
