"""The clipped policy-gradient surrogate shared by every method, with the method hooks.

Per valid token (``r = exp(clamp(logp - logp_old, -20, 20))``, ``A`` the possibly shaped advantage)::

    l_t = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))         (clip=True; else l_t = -A r)
    l_t = min(l_t, -A c)  for A < 0                                 (dual clip c, if set)
    L   = agg( l_t * w_t * m_t * k_t + sum_k extra_k,t )

with ``w`` the method's detached token weights, ``m`` its detached clip mask, ``k`` an optional
detached per-token coefficient from outside the method (the rollout/trainer IS correction, see
:mod:`openrlhf_steer.core.is_correction`) and ``extra`` the method's extra per-token terms (entropy
bonus, KL, ...). ``agg`` is token-mean, seq-mean-token-mean or seq-mean-token-sum; with
``num_tokens`` / ``num_seqs`` the denominators are those of the whole optimizer-step window
(OpenRLHF / verl "global token" normalisation), else the local masked counts.

``ratio_level="sequence"`` is GSPO (Zheng et al. 2025, arXiv 2507.18071; OpenRLHF
``--actor.policy_loss_type gspo``): every token of sequence i uses the sequence ratio
``s_i = exp(mean_t (logp - logp_old))`` in place of its own ``r``, and the loss is
seq-mean-token-mean. Advantages, token weights and the extra terms enter per token as above, before
the sequence mean. Clip masks cannot be defined there (see :data:`SEQUENCE_RATIO_UNDEFINED_HOOKS`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Tuple

import torch

from openrlhf_steer.core.hooks import LossHooks, NeutralHooks
from openrlhf_steer.core.metrics import LossMetrics
from openrlhf_steer.core.types import AGG_MODES, LossConfig, LossInputs

Tensor = torch.Tensor

# Optional [B, T] fields of LossInputs that must match log_probs when present.
_OPTIONAL_TOKEN_FIELDS = ("entropy", "old_entropy", "ref_log_probs")
_REQUIRED_TOKEN_FIELDS = ("log_probs", "old_log_probs", "advantages", "action_mask")
_FIELD_FIX = {
    "entropy": "compute the current-policy entropy with openrlhf_steer.core.entropy.token_logprobs_and_entropy "
    "(OpenRLHF: run with --actor.entropy_coef 0 so the actor returns it)",
    "old_entropy": "compute the rollout-policy entropy in the old-log-prob pass, or set the method's "
    "entropy_source='current'",
    "ref_log_probs": "run with a reference model (OpenRLHF: --algo.kl.init_coef > 0 or a ref pretrain)",
}


# --------------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------------
def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask`` (0 when the mask is empty; never NaN)."""
    mask = mask.to(values.dtype)
    total = mask.sum()
    return torch.where(mask.bool(), values, torch.zeros_like(values)).sum() / total.clamp(min=1.0)


def aggregate_loss(
    values: Tensor,
    mask: Tensor,
    mode: str = "token-mean",
    num_tokens: Optional[float] = None,
    num_seqs: Optional[float] = None,
) -> Tensor:
    """Aggregate a per-token loss [B, T] into a scalar.

    token-mean:          sum_{b,t} m l / N_tok          (N_tok = num_tokens or sum(m))
    seq-mean-token-mean: sum_b [sum_t m l / sum_t m] / N_seq
    seq-mean-token-sum:  sum_b [sum_t m l] / N_seq      (N_seq = num_seqs or #sequences with a token)

    Masked positions never contribute (even if they hold NaN). An empty mask gives 0 with a graph.
    """
    if mode not in AGG_MODES:
        raise ValueError(f"loss_agg_mode={mode!r} is unknown: choose one of {list(AGG_MODES)}")
    mask_b = mask.bool()
    clean = torch.where(mask_b, values, torch.zeros_like(values))
    maskf = mask_b.to(values.dtype)
    if mode == "token-mean":
        count, given, label = maskf.sum(), num_tokens, "num_tokens"
        per_unit = clean.sum()
    else:
        seq_tokens = maskf.sum(-1)
        count, given, label = (seq_tokens > 0).to(values.dtype).sum(), num_seqs, "num_seqs"
        per_seq = clean.sum(-1)
        if mode == "seq-mean-token-mean":
            per_seq = per_seq / seq_tokens.clamp(min=1.0)
        per_unit = per_seq.sum()
    if given is None:  # the local count stays on the device (an empty mask divides by 1)
        return per_unit / count.clamp(min=1.0)
    denom = float(given)
    if not denom > 0:
        if bool(count > 0):  # only a non-positive window count reads the mask on the host
            raise ValueError(
                f"{label}={given} must be > 0 (the optimizer-step window's count) when the mask has tokens"
            )
        denom = 1.0
    return per_unit / denom


def token_log_ratio(log_probs: Tensor, old_log_probs: Tensor, mask: Optional[Tensor]) -> Tensor:
    """PPO: each token's own ``log(pi / pi_old)``."""
    return log_probs - old_log_probs


def sequence_log_ratio(log_probs: Tensor, old_log_probs: Tensor, mask: Optional[Tensor]) -> Tensor:
    """GSPO: the mean of the valid tokens' log-ratios of each row, broadcast over the row."""
    if mask is None:
        mask = torch.ones_like(log_probs, dtype=torch.bool)
    diff = torch.where(mask.bool(), log_probs - old_log_probs, torch.zeros_like(log_probs))
    count = mask.to(log_probs.dtype).sum(-1, keepdim=True).clamp(min=1.0)
    return (diff.sum(-1, keepdim=True) / count).expand_as(log_probs)


RATIO_LEVELS = {"token": token_log_ratio, "sequence": sequence_log_ratio}
# The aggregation each ratio level prescribes; None keeps LossConfig.loss_agg_mode.
RATIO_LEVEL_AGG = {"token": None, "sequence": "seq-mean-token-mean"}
# Hooks whose contract has no meaning under a sequence-level ratio -> why (the loss refuses them).
SEQUENCE_RATIO_UNDEFINED_HOOKS = {
    "clip_mask": "its clip mask stops the gradient of chosen tokens, but with GSPO's sequence-level ratio every "
    "token's log-prob gets its gradient through the shared ratio of its sequence, so no per-token mask "
    "can remove one token's gradient",
}


def sequence_ratio_conflicts(method: LossHooks) -> Dict[str, str]:
    """Names of the (member) methods that override a hook undefined under GSPO -> the reason."""
    members = getattr(method, "methods", None) or [method]
    return {
        m.name: reason
        for m in members
        for hook, reason in SEQUENCE_RATIO_UNDEFINED_HOOKS.items()
        if m.overrides_hook(hook)
    }


def clipped_surrogate(
    log_probs: Tensor,
    old_log_probs: Tensor,
    advantages: Tensor,
    config: LossConfig,
    ratio_level: str = "token",
    mask: Optional[Tensor] = None,
) -> Dict[str, Tensor]:
    """Per-token PPO/GRPO surrogate and its clip indicators (no masking, no aggregation).

    ``ratio_level="sequence"`` uses GSPO's sequence ratio for every token of a row (``mask`` picks
    the tokens of the mean).
    """
    log_ratio = RATIO_LEVELS[ratio_level](log_probs, old_log_probs, mask)
    log_ratio = log_ratio.clamp(-config.log_ratio_clamp, config.log_ratio_clamp)
    ratio = log_ratio.exp()
    surrogate = -advantages * ratio
    zeros = torch.zeros_like(ratio, dtype=torch.bool)
    clipped_low, clipped_high, clipped_dual = zeros, zeros, zeros
    if config.clip:
        clipped_ratio = ratio.clamp(1.0 - config.eps_low, 1.0 + config.eps_high)
        surrogate = torch.maximum(surrogate, -advantages * clipped_ratio)
        with torch.no_grad():
            clipped_low = (advantages < 0) & (ratio < 1.0 - config.eps_low)
            clipped_high = (advantages > 0) & (ratio > 1.0 + config.eps_high)
        if config.dual_clip is not None:
            dual = -advantages * config.dual_clip
            surrogate = torch.where(advantages < 0, torch.minimum(surrogate, dual), surrogate)
            with torch.no_grad():
                clipped_dual = (advantages < 0) & (ratio > config.dual_clip)
    return {
        "log_ratio": log_ratio,
        "ratio": ratio,
        "surrogate": surrogate,
        "clipped_low": clipped_low,
        "clipped_high": clipped_high,
        "clipped_dual": clipped_dual,
        "clipped": clipped_low | clipped_high | clipped_dual,
    }


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------
def _nonfinite(tensor: Tensor, mask: Tensor) -> Tensor:
    """Device bool: does ``tensor`` hold NaN/inf on a valid token (no host read)."""
    return (~torch.isfinite(tensor.detach()) & mask).any()


def _finite_check(name: str, tensor: Tensor, mask: Tensor):
    """A deferred :func:`_check_finite`: (device flag, the call that raises the detailed error)."""
    return _nonfinite(tensor, mask), lambda: _check_finite(name, tensor, mask)


def _raise_first_nonfinite(checks) -> None:
    """``checks``: (device flag, raise_error) in order. One host read for all; only the error path reads more."""
    if not checks:
        return
    if bool(torch.stack([flag for flag, _ in checks]).any()):
        for flag, raise_error in checks:
            if bool(flag):
                raise_error()


def _check_finite(name: str, tensor: Tensor, mask: Tensor) -> None:
    if not torch.is_floating_point(tensor):
        raise ValueError(f"LossInputs.{name} must be a floating-point tensor, got {tensor.dtype}")
    bad = ~torch.isfinite(tensor.detach()) & mask
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"LossInputs.{name} contains NaN or inf at valid token {idx} ({int(bad.sum())} token(s)); "
            "check the model forward (logits) and the reward/advantage pipeline"
        )


def validate_loss_inputs(
    inputs: LossInputs, required: Tuple[str, ...] = (), method_name: str = "", deferred: Optional[list] = None
) -> Tensor:
    """Check shapes, dtypes and finiteness (on valid tokens); return the boolean mask.

    With ``deferred`` (a list), the finiteness checks are appended to it for one later host read
    (:func:`_raise_first_nonfinite`) instead of being read now."""
    for name in _REQUIRED_TOKEN_FIELDS:
        if not isinstance(getattr(inputs, name), torch.Tensor):
            raise ValueError(
                f"LossInputs.{name} must be a torch.Tensor [B, T], got {type(getattr(inputs, name)).__name__}"
            )
    shape = inputs.log_probs.shape
    if inputs.log_probs.dim() != 2:
        raise ValueError(f"LossInputs.log_probs must be [B, T], got shape {tuple(shape)}")
    for name in _REQUIRED_TOKEN_FIELDS + _OPTIONAL_TOKEN_FIELDS:
        tensor = getattr(inputs, name)
        if tensor is not None and tensor.shape != shape:
            raise ValueError(
                f"LossInputs.{name} has shape {tuple(tensor.shape)} but log_probs has {tuple(shape)}; "
                "all per-token tensors must be aligned [B, T]"
            )
    for name in required:
        if getattr(inputs, name, None) is None:
            raise ValueError(
                f"method {method_name!r} needs LossInputs.{name}, which is None; fix: "
                f"{_FIELD_FIX.get(name, 'provide it')}"
            )
    mask = inputs.action_mask.bool()
    checks = []
    for name in ("log_probs", "old_log_probs", "advantages") + _OPTIONAL_TOKEN_FIELDS:
        tensor = getattr(inputs, name)
        if tensor is not None:
            if not torch.is_floating_point(tensor):
                raise ValueError(f"LossInputs.{name} must be a floating-point tensor, got {tensor.dtype}")
            checks.append(_finite_check(name, tensor, mask))
    if deferred is None:
        _raise_first_nonfinite(checks)
    else:
        deferred.extend(checks)
    return mask


# --------------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------------
class PolicyLoss:
    """Clipped surrogate + method hooks. ``loss, metrics = PolicyLoss(cfg, method)(inputs)``."""

    def __init__(
        self, loss_config: Optional[LossConfig] = None, method: Optional[LossHooks] = None, ratio_level: str = "token"
    ):
        self.loss_config = loss_config if loss_config is not None else LossConfig()
        self.loss_config.validate()
        self.method = method if method is not None else NeutralHooks()
        if ratio_level not in RATIO_LEVELS:
            raise ValueError(f"ratio_level={ratio_level!r} is unknown: choose one of {list(RATIO_LEVELS)}")
        self.ratio_level = ratio_level
        if ratio_level == "sequence":
            conflicts = sequence_ratio_conflicts(self.method)
            if conflicts:
                name, reason = next(iter(conflicts.items()))
                raise ValueError(
                    f"method {name!r} cannot run with the sequence-level ratio (GSPO): {reason}. Use "
                    "the token-level ratio (OpenRLHF: --actor.policy_loss_type ppo) or another method."
                )

    def __call__(
        self,
        inputs: LossInputs,
        num_tokens: Optional[float] = None,
        num_seqs: Optional[float] = None,
        token_coef: Optional[Tensor] = None,
    ):
        return self.forward(inputs, num_tokens=num_tokens, num_seqs=num_seqs, token_coef=token_coef)

    def forward(
        self,
        inputs: LossInputs,
        num_tokens: Optional[float] = None,
        num_seqs: Optional[float] = None,
        token_coef: Optional[Tensor] = None,
    ) -> Tuple[Tensor, LossMetrics]:
        """``token_coef`` [B, T]: a detached coefficient on the per-token policy term (IS correction).

        Host reads: one, for the finiteness of the inputs and of the method's outputs (hook results, shaped
        advantages, IS coefficient), plus what a method's own selection needs (e.g. a top-k count); the
        metrics stay on the device until read."""
        method = self.method
        # NaN/inf checks of the inputs and of the method's outputs, read on the host together, once, before
        # the loss is returned (the hooks are pure tensor functions; a NaN input cannot hide behind them)
        finite_checks: list = []
        mask = validate_loss_inputs(inputs, method.required_inputs(), method.name, deferred=finite_checks)
        method.reset_metrics()
        config = self.effective_config()
        maskf = mask.to(inputs.log_probs.dtype)

        base_adv = torch.where(mask, inputs.advantages.detach(), torch.zeros_like(inputs.advantages)).to(
            inputs.log_probs.dtype
        )
        shaped = method.shape_advantages(inputs, base_adv)
        advantages = torch.where(mask, shaped.detach(), torch.zeros_like(base_adv))
        output_checks = finite_checks
        output_checks.append(_finite_check("advantages (after the method's shape_advantages)", advantages, mask))

        per_token = clipped_surrogate(
            inputs.log_probs, inputs.old_log_probs, advantages, config, ratio_level=self.ratio_level, mask=mask
        )
        per_token["advantages"] = advantages
        per_token["mask"] = mask

        ones = torch.ones_like(maskf)
        keep = self._hook_tensor("clip_mask", method.clip_mask(inputs, per_token), ones, output_checks)
        weights = self._hook_tensor("token_weights", method.token_weights(inputs), ones, output_checks)
        policy_tokens = per_token["surrogate"] * weights * keep
        if token_coef is not None:
            if token_coef.shape != ones.shape:
                raise ValueError(f"token_coef has shape {tuple(token_coef.shape)}, expected {tuple(ones.shape)}")
            coef = torch.where(mask, token_coef.detach().to(ones.dtype), ones)
            output_checks.append(_finite_check("token_coef (IS correction)", coef, mask))
            policy_tokens = policy_tokens * coef
        extras = method.extra_token_terms(inputs, per_token) or {}
        total_tokens = policy_tokens
        for name, term in extras.items():
            if term.shape != policy_tokens.shape:
                raise ValueError(
                    f"method {method.name!r} returned extra term {name!r} with shape {tuple(term.shape)}, expected "
                    f"{tuple(policy_tokens.shape)}"
                )
            total_tokens = total_tokens + term

        _raise_first_nonfinite(output_checks)

        def agg(values: Tensor) -> Tensor:
            return aggregate_loss(values, mask, config.loss_agg_mode, num_tokens, num_seqs)

        loss = agg(total_tokens)
        metrics = self._metrics(
            inputs, mask, per_token, base_adv, weights * keep, loss, agg(policy_tokens), extras, agg
        )
        return loss, metrics

    def effective_config(self) -> LossConfig:
        """The clip configuration a call uses: the method's, with the aggregation its ratio level prescribes."""
        config = self.method.loss_config(self.loss_config)
        if RATIO_LEVEL_AGG[self.ratio_level] is not None:
            config = dataclasses.replace(config, loss_agg_mode=RATIO_LEVEL_AGG[self.ratio_level])
        config.validate()
        return config

    @staticmethod
    def _hook_tensor(hook: str, value: Optional[Tensor], ones: Tensor, output_checks: list) -> Tensor:
        if value is None:
            return ones
        if value.shape != ones.shape:
            raise ValueError(f"{hook} returned shape {tuple(value.shape)}, expected {tuple(ones.shape)}")
        value = value.detach().to(ones.dtype)

        def raise_error():
            raise ValueError(f"{hook} returned NaN or inf; this is a bug in the method, please report it")

        output_checks.append((~torch.isfinite(value).all(), raise_error))
        return value

    # ----------------------------------------------------------------------------------------------
    def _metrics(self, inputs, mask, per_token, base_adv, effective_weights, loss, policy_loss, extras, agg):
        """Every metric as a detached 0-dim device tensor (or a Python number): no host read here."""
        method = self.method
        count = mask.sum().to(torch.float64)
        denom = count.clamp(min=1.0)

        def frac(flags: Tensor) -> Tensor:
            return (flags & mask).sum().to(torch.float64) / denom

        def mean(values: Tensor) -> Tensor:
            return masked_mean(values.detach().float(), mask)

        metrics: Dict[str, object] = {
            "loss/total": loss.detach(),
            "loss/policy": policy_loss.detach(),
            "tokens/valid": count,
        }
        for name, term in extras.items():
            metrics[f"loss/{name}"] = agg(term.detach())

        # Entropy: current if given, else old (rollout), else the sampled-token estimate -mean(log p_old).
        sampled_nll = mean(-inputs.old_log_probs)
        metrics["entropy/sampled_nll"] = sampled_nll
        if inputs.entropy is not None:
            metrics["entropy/current_mean"] = mean(inputs.entropy)
        if inputs.old_entropy is not None:
            metrics["entropy/old_mean"] = mean(inputs.old_entropy)
        metrics["entropy/mean"] = metrics.get("entropy/current_mean", metrics.get("entropy/old_mean", sampled_nll))

        metrics["clip/frac_low"] = frac(per_token["clipped_low"])
        metrics["clip/frac_high"] = frac(per_token["clipped_high"])
        metrics["clip/frac_dual"] = frac(per_token["clipped_dual"])
        metrics["clip/frac"] = frac(per_token["clipped"])
        metrics["ratio/mean"] = mean(per_token["ratio"])

        # Quadrants: advantage sign x rollout probability of the sampled token above/below 0.5.
        with torch.no_grad():
            high = inputs.old_log_probs.detach() > math.log(0.5)
            pos, neg = base_adv > 0, base_adv < 0
        metrics["quadrant/pos_high_prob"] = frac(pos & high)
        metrics["quadrant/pos_low_prob"] = frac(pos & ~high)
        metrics["quadrant/neg_high_prob"] = frac(neg & high)
        metrics["quadrant/neg_low_prob"] = frac(neg & ~high)
        metrics["quadrant/zero_adv"] = frac(~pos & ~neg)
        metrics["advantages/mean"] = mean(base_adv)

        with torch.no_grad():
            weights = effective_weights.detach()
            any_valid = count > 0
            one = torch.ones((), dtype=weights.dtype, device=weights.device)
            inf = torch.full((), math.inf, dtype=weights.dtype, device=weights.device)
            w_mean = torch.where(mask, weights, torch.zeros_like(weights)).sum() / denom.to(weights.dtype)
            w_min = torch.where(mask, weights, inf).min()
            w_max = torch.where(mask, weights, -inf).max()
            changed = ((effective_weights != 1.0) | (per_token["advantages"] != base_adv)) & mask
        metrics["weights/mean"] = torch.where(any_valid, w_mean, one)
        metrics["weights/min"] = torch.where(any_valid, w_min, one)
        metrics["weights/max"] = torch.where(any_valid, w_max, one)
        metrics["method/frac_changed"] = changed.sum().to(torch.float64) / denom
        for key, value in method.recorded_metrics().items():
            metrics[f"method/{key}"] = value.detach() if torch.is_tensor(value) else float(value)
        for key, value in method.controller_values().items():
            metrics[f"controller/{key}"] = value.detach() if torch.is_tensor(value) else float(value)
        return LossMetrics(metrics)
