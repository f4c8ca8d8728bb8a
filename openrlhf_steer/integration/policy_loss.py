"""``EntropyControlPolicyLoss``: OpenRLHF's ``PolicyLoss`` interface, our loss inside (policy-actor process).

Same constructor and ``forward`` signature and the same 5-tuple return as
``openrlhf.models.loss.PolicyLoss`` 0.11.2, so ``ActorPPOTrainer`` uses it unchanged. Once a method
is bound (:meth:`bind`), ``forward`` builds :class:`~openrlhf_steer.methods.base.LossInputs` from
OpenRLHF's tensors plus the side data the trainer put in ``self.binding.context`` and calls
:class:`openrlhf_steer.core.loss.PolicyLoss`. Unbound, it is OpenRLHF's loss.

OpenRLHF's own loss options compose with every method, as OpenRLHF 0.11.2 applies them:

* ``--algo.advantage.is_correction_*``: the per-token IS coefficient
  (:func:`openrlhf_steer.core.is_correction.is_correction`) multiplies the per-token policy term before
  aggregation; ``vllm_kl`` and ``is_filter_ratio`` are returned so OpenRLHF logs them.
* ``--actor.policy_loss_type gspo``: the sequence-level ratio (``ratio_level="sequence"``), taken
  against the rollout engine's log-probs when IS correction is on (OpenRLHF's choice; no IS
  coefficient then, and no ``vllm_kl``), with seq-mean-token-mean aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
from openrlhf.models.loss import PolicyLoss as OpenRLHFPolicyLoss

from openrlhf_steer.runtime import EntropyChannel


def openrlhf_denominators(dp_size: int, batch_num_tokens, global_batch_size):
    """OpenRLHF's normalisers -> our ``num_tokens`` / ``num_seqs``.

    OpenRLHF's ``aggregate_loss`` returns ``sum / batch_num_tokens * dp_size`` (``batch_num_tokens``
    is the window's token count over all DP ranks divided by gas), so dividing our sum by
    ``batch_num_tokens / dp_size`` gives the identical scalar (same for sequences).
    """
    num_tokens = None if batch_num_tokens is None else float(batch_num_tokens) / float(dp_size)
    num_seqs = None if global_batch_size is None else float(global_batch_size) / float(dp_size)
    return num_tokens, num_seqs


RATIO_LEVEL_OF_LOSS_TYPE = {"ppo": "token", "gspo": "sequence"}


@dataclass
class LossCallContext:
    """What the trainer knows about the current micro-batch that OpenRLHF's loss call does not pass."""

    old_entropy: Optional[torch.Tensor] = None
    ref_log_probs: Optional[torch.Tensor] = None
    step: int = 0
    total_steps: Optional[int] = None
    epoch: int = 1
    total_epochs: Optional[int] = None
    window_stats: Dict[str, Any] = field(default_factory=dict)
    generator: Optional[torch.Generator] = None
    entropy: Optional[torch.Tensor] = None
    # The training forward publishes the current-policy entropy after the context is made (the actor
    # forward hook writes it into the channel); it is read at loss time when ``entropy`` is not given.
    entropy_channel: Optional[EntropyChannel] = None

    def loss_input_fields(self) -> Dict[str, Any]:
        entropy = self.entropy
        if entropy is None and self.entropy_channel is not None:
            entropy = self.entropy_channel.entropy
        return dict(
            entropy=entropy,
            old_entropy=self.old_entropy,
            ref_log_probs=self.ref_log_probs,
            step=int(self.step),
            total_steps=self.total_steps,
            epoch=int(self.epoch),
            total_epochs=self.total_epochs,
            window_stats=dict(self.window_stats),
            generator=self.generator,
        )


@dataclass
class LossBinding:
    """The method bound to the actor's loss, the current call's context and the last call's metrics.

    A dataclass attribute rather than module attributes: nn.Module would register a Module assigned to it."""

    loss: Any = None  # openrlhf_steer.core.loss.PolicyLoss once bound
    method: Any = None
    context: LossCallContext = field(default_factory=LossCallContext)
    # the last call's LossMetrics (device tensors until read), what its loss divided by and the micro-batch's
    # count in that unit (tokens for token-mean, sequences for the seq-mean modes)
    metrics: Any = field(default_factory=dict)
    loss_denominator: Optional[float] = None
    loss_units: Any = None
    agg_mode: str = "token-mean"  # the bound loss's aggregation (its method's config, its ratio level)


class EntropyControlPolicyLoss(OpenRLHFPolicyLoss):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.binding = LossBinding()

    def bind(self, method, loss_config) -> None:
        from openrlhf_steer.core.loss import PolicyLoss

        ratio_level = RATIO_LEVEL_OF_LOSS_TYPE[self.policy_loss_type]
        self.binding.method = method
        self.binding.loss = PolicyLoss(loss_config, method, ratio_level=ratio_level)
        self.binding.agg_mode = self.binding.loss.effective_config().loss_agg_mode

    def is_correction_config(self):
        from openrlhf_steer.core.is_correction import ISCorrectionConfig

        return ISCorrectionConfig(
            level=self.is_correction_level,
            mode=self.is_correction_mode,
            gating=self.is_correction_gating,
            threshold=tuple(self.is_correction_threshold),
        )

    @property
    def bound(self) -> bool:
        return self.binding.loss is not None

    def forward(
        self,
        log_probs: torch.Tensor,
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
        action_mask: Optional[torch.Tensor] = None,
        rollout_log_probs: Optional[torch.Tensor] = None,
        dp_size: int = 1,
        batch_num_tokens: Optional[float] = None,
        global_batch_size: Optional[float] = None,
    ):
        loss_fn = self.binding.loss
        if loss_fn is None:
            return super().forward(
                log_probs,
                old_log_probs,
                advantages,
                action_mask,
                rollout_log_probs,
                dp_size,
                batch_num_tokens,
                global_batch_size,
            )
        from openrlhf_steer.core.types import LossInputs

        if action_mask is None:
            action_mask = torch.ones_like(log_probs, dtype=torch.bool)
        is_config = self.is_correction_config()
        gspo = self.policy_loss_type == "gspo"
        # GSPO with IS correction: OpenRLHF takes the sequence ratio against the rollout policy instead.
        ratio_base = rollout_log_probs if (gspo and is_config.enabled) else old_log_probs
        if ratio_base is None:
            raise ValueError(
                "--actor.policy_loss_type gspo with --algo.advantage.is_correction_level needs the "
                "rollout engine's log-probs, but the experience has none"
            )
        inputs = LossInputs(
            log_probs=log_probs,
            old_log_probs=ratio_base.to(log_probs.dtype),
            advantages=advantages.to(log_probs.dtype),
            action_mask=action_mask.bool(),
            **self.binding.context.loss_input_fields(),
        )
        vllm_kl = is_filter_ratio = token_coef = None
        if is_config.enabled and not gspo:
            from openrlhf_steer.core.is_correction import is_correction

            correction = is_correction(old_log_probs.to(log_probs.dtype), rollout_log_probs, action_mask, is_config)
            token_coef, vllm_kl, is_filter_ratio = correction.coef, correction.vllm_kl, correction.filter_ratio
        num_tokens, num_seqs = openrlhf_denominators(dp_size, batch_num_tokens, global_batch_size)
        coef = {} if token_coef is None else {"token_coef": token_coef}
        loss, metrics = loss_fn(inputs, num_tokens=num_tokens, num_seqs=num_seqs, **coef)
        self.binding.metrics = metrics
        with torch.no_grad():
            if self.binding.agg_mode == "token-mean":
                units, denominator = inputs.action_mask.sum(), num_tokens
            else:
                units, denominator = (inputs.action_mask.sum(-1) > 0).sum(), num_seqs
        self.binding.loss_units = units
        self.binding.loss_denominator = denominator
        with torch.no_grad():
            mask = inputs.action_mask.float()
            count = mask.sum().clamp(min=1.0)
            clip_ratio = metrics.tensors()["clip/frac"].float()  # stays on the device
            ppo_kl = ((old_log_probs.float() - log_probs.detach().float()) * mask).sum() / count
        return loss, clip_ratio, ppo_kl, vllm_kl, is_filter_ratio
