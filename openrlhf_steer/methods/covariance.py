"""Clip-Cov and KL-Cov (Cui et al., "The Entropy Mechanism of RL for Reasoning LMs", arXiv 2505.22617).

Both rank tokens by the centred product ``cov_t = (A_t - mean A) (log p_t - mean log p)`` over the
valid tokens (``openrlhf_steer.core.estimators.covariance_entropy_change``), the per-token covariance
that drives entropy down:

- Clip-Cov: among valid, not-already-clipped tokens with ``lb < cov_t < ub``, draw
  ``max(int(ratio * N_valid), 1)`` uniformly at random and zero their gradient (they stay in the
  token-mean denominator). Authors' defaults ratio 2e-4, lb 1, ub 5.
- KL-Cov: unclipped surrogate ``-A r`` for every token; the top ``max(1, int(ratio * N_valid))`` tokens
  by cov_t also get ``+ coef * |log p - log p_old|``. Authors' 7B scripts: ratio 0.2% (= 0.002), coef 1.

Means and counts are over one loss call (``stat_scope=micro_batch``, the authors' code) or the means
over the optimizer-step window (``mini_batch``).
"""

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List

import torch

from openrlhf_steer.core.estimators import covariance_entropy_change
from openrlhf_steer.core.types import LossConfig, LossInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.window import WindowStatsMethod
from openrlhf_steer.methods.base import STAT_SCOPES, MethodConfig, check_choice, check_range
from openrlhf_steer.methods.sampling import choose_random_tokens

Tensor = torch.Tensor
PAPER = "Clip-Cov / KL-Cov, Cui et al., arXiv 2505.22617"


def _window_sums(key: str, inputs_list: List[LossInputs]) -> Dict[str, Any]:
    """Sums and count (all-reducible across ranks) from which the window means are derived."""
    adv_sum = lp_sum = 0.0
    count = 0
    for x in inputs_list:
        m = x.action_mask.bool()
        adv_sum += float(x.advantages.detach()[m].double().sum())
        lp_sum += float(x.log_probs.detach()[m].double().sum())
        count += int(m.sum())
    return {f"{key}/adv_sum": adv_sum, f"{key}/log_prob_sum": lp_sum, f"{key}/count": float(count)}


class _CovarianceMethod(WindowStatsMethod):
    def _cov(self, inputs: LossInputs, advantages: Tensor) -> Tensor:
        means = None
        if self.needs_window_stats:
            try:
                stats = inputs.window_stats
                count = max(float(stats[f"{self.name}/count"]), 1.0)
                means = (stats[f"{self.name}/adv_sum"] / count, stats[f"{self.name}/log_prob_sum"] / count)
            except KeyError:
                raise ValueError(
                    f"{self.name} with stat_scope=mini_batch needs LossInputs.window_stats from "
                    "method.window_stats(...); fix the adapter or use stat_scope=micro_batch"
                ) from None
        return covariance_entropy_change(inputs.log_probs, advantages, inputs.action_mask, means=means)

    def window_stats(self, inputs_list: List[LossInputs]) -> Dict[str, Any]:
        return _window_sums(self.name, inputs_list)

    def window_stats_reduction(self) -> Dict[str, str]:
        return {f"{self.name}/{k}": "sum" for k in ("adv_sum", "log_prob_sum", "count")}


def clip_cov_budget(n_valid: int, clip_ratio: float) -> int:
    """Clip-Cov's number of zeroed tokens in a loss call: max(int(ratio * N_valid), 1), 0 without valid tokens."""
    return max(int(clip_ratio * n_valid), 1) if n_valid else 0


@dataclass
class ClipCovConfig(MethodConfig):
    clip_ratio: float = field(
        default=2e-4,
        metadata={
            "help": f"Fraction of valid tokens whose gradient is zeroed, n = max(int(ratio * N_valid), 1) ({PAPER}; "
            f"default 2e-4)."
        },
    )
    cov_lb: float = field(
        default=1.0, metadata={"help": f"Lower bound of cov_t for candidates ({PAPER}; default 1.0)."}
    )
    cov_ub: float = field(
        default=5.0, metadata={"help": f"Upper bound of cov_t for candidates ({PAPER}; default 5.0)."}
    )
    stat_scope: str = field(
        default="micro_batch",
        metadata={
            "help": f"Set over which the cov means are taken: micro_batch (authors' code) or mini_batch "
            f"(optimizer-step window) ({PAPER}; default micro_batch)."
        },
    )

    def validate(self) -> None:
        check_range(self, "clip_ratio", 0.0, 1.0, hint="default 2e-4")
        check_range(self, "cov_ub", self.cov_lb, None, hint="cov_ub must be >= cov_lb (defaults 1 and 5)")
        check_choice(self, "stat_scope", STAT_SCOPES)


@register_method
class ClipCov(_CovarianceMethod):
    """Clip-Cov: zero the gradient of a few random high-covariance tokens (hook c).

    Note the authors' scripts also set clip ratios eps_low = eps_high = 1 (LossConfig), and their
    loss has no dual clip."""

    name = "clip_cov"
    config_cls = ClipCovConfig
    paper = PAPER

    def clip_mask(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Tensor:
        c = self.config
        valid = inputs.action_mask.bool()
        cov = self._cov(inputs, per_token["advantages"])
        candidates = valid & ~per_token["clipped"] & (cov > c.cov_lb) & (cov < c.cov_ub)
        count = clip_cov_budget(int(valid.sum()), c.clip_ratio)
        chosen = choose_random_tokens(candidates, None, inputs.generator, count=count)
        self._record(clip_cov_candidates=candidates.sum(), clip_cov_clipped=chosen.sum())
        return (~chosen).to(inputs.log_probs.dtype)


@dataclass
class KlCovConfig(MethodConfig):
    kl_ratio: float = field(
        default=2e-3,
        metadata={
            "help": f"Fraction of valid tokens (top by cov) that get the KL term, k = max(1, int(ratio * N_valid)) "
            f"({PAPER}; 7B scripts 0.2% = 0.002, verl default 2e-4; default 0.002)."
        },
    )
    kl_coef: float = field(
        default=1.0,
        metadata={
            "help": f"Coefficient beta of |log p - log p_old| on the selected tokens ({PAPER} ppo_kl_coef; default "
            f"1.0)."
        },
    )
    stat_scope: str = field(
        default="micro_batch",
        metadata={
            "help": f"Set over which the cov means are taken: micro_batch (authors' code) or mini_batch "
            f"(optimizer-step window) ({PAPER}; default micro_batch)."
        },
    )

    def validate(self) -> None:
        check_range(self, "kl_ratio", 0.0, 1.0, hint="a fraction, e.g. 0.002")
        check_range(self, "kl_coef", 0.0, None, hint="default 1.0")
        check_choice(self, "stat_scope", STAT_SCOPES)


@register_method
class KlCov(_CovarianceMethod):
    """KL-Cov: no ratio clip; |log p - log p_old| penalty on the top-k covariance tokens (hooks c, d)."""

    name = "kl_cov"
    config_cls = KlCovConfig
    paper = PAPER

    def loss_config(self, base: LossConfig) -> LossConfig:
        return replace(base, clip=False, dual_clip=None)

    def extra_token_terms(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Dict[str, Tensor]:
        c = self.config
        valid = inputs.action_mask.bool()
        cov = self._cov(inputs, per_token["advantages"])
        flat_valid = valid.reshape(-1).nonzero().squeeze(-1)
        selected = torch.zeros(valid.numel(), dtype=torch.bool, device=valid.device)
        n_valid = int(flat_valid.numel())
        if n_valid:
            k = min(n_valid, max(1, int(n_valid * c.kl_ratio)))
            top = torch.topk(cov.reshape(-1)[flat_valid], k).indices
            selected[flat_valid[top]] = True
        selected = selected.view(valid.shape)
        self._record(kl_cov_selected=selected.sum())
        abs_kl = (inputs.log_probs - inputs.old_log_probs.detach()).abs()
        return {"kl_cov": c.kl_coef * abs_kl * selected.to(abs_kl.dtype)}
