"""``SteerPolicyLoss``: OpenRLHF's ``PolicyLoss`` interface, our loss inside (policy-actor process).

Same constructor and ``forward`` signature and the same 5-tuple return as
``openrlhf.models.loss.PolicyLoss`` 0.11.2, so ``ActorPPOTrainer`` uses it unchanged. Once a method
is bound (:meth:`bind`), ``forward`` builds :class:`~openrlhf_steer.methods.base.LossInputs` from
OpenRLHF's tensors plus the side data the trainer put in ``self.steer["context"]`` and calls
:class:`openrlhf_steer.loss.PolicyLoss`. Unbound, it is OpenRLHF's loss.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from openrlhf.models.loss import PolicyLoss as OpenRLHFPolicyLoss


def openrlhf_denominators(dp_size: int, batch_num_tokens, global_batch_size):
    """OpenRLHF's normalisers -> our ``num_tokens`` / ``num_seqs``.

    OpenRLHF's ``aggregate_loss`` returns ``sum / batch_num_tokens * dp_size`` (``batch_num_tokens``
    is the window's token count over all DP ranks divided by gas), so dividing our sum by
    ``batch_num_tokens / dp_size`` gives the identical scalar (same for sequences).
    """
    num_tokens = None if batch_num_tokens is None else float(batch_num_tokens) / float(dp_size)
    num_seqs = None if global_batch_size is None else float(global_batch_size) / float(dp_size)
    return num_tokens, num_seqs


class SteerPolicyLoss(OpenRLHFPolicyLoss):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A plain dict, not module attributes: nn.Module would register Modules assigned to it.
        self.steer: Dict[str, Any] = {"loss": None, "method": None, "context": {}, "metrics": {}}

    def bind(self, method, loss_config) -> None:
        from openrlhf_steer.loss import PolicyLoss

        self.steer["method"] = method
        self.steer["loss"] = PolicyLoss(loss_config, method)

    @property
    def bound(self) -> bool:
        return self.steer["loss"] is not None

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
        loss_fn = self.steer["loss"]
        if loss_fn is None:
            return super().forward(
                log_probs, old_log_probs, advantages, action_mask, rollout_log_probs, dp_size,
                batch_num_tokens, global_batch_size,
            )
        from openrlhf_steer.methods.base import LossInputs

        if action_mask is None:
            action_mask = torch.ones_like(log_probs, dtype=torch.bool)
        ctx = self.steer["context"]
        inputs = LossInputs(
            log_probs=log_probs,
            old_log_probs=old_log_probs.to(log_probs.dtype),
            advantages=advantages.to(log_probs.dtype),
            action_mask=action_mask.bool(),
            entropy=ctx.get("entropy"),
            old_entropy=ctx.get("old_entropy"),
            ref_log_probs=ctx.get("ref_log_probs"),
            step=int(ctx.get("step", 0)),
            total_steps=ctx.get("total_steps"),
            epoch=int(ctx.get("epoch", 1)),
            total_epochs=ctx.get("total_epochs"),
            window_stats=dict(ctx.get("window_stats") or {}),
            generator=ctx.get("generator"),
        )
        num_tokens, num_seqs = openrlhf_denominators(dp_size, batch_num_tokens, global_batch_size)
        loss, metrics = loss_fn(inputs, num_tokens=num_tokens, num_seqs=num_seqs)
        self.steer["metrics"] = metrics
        with torch.no_grad():
            mask = inputs.action_mask.float()
            count = mask.sum().clamp(min=1.0)
            clip_ratio = torch.tensor(metrics.get("clip/frac", 0.0), device=log_probs.device)
            ppo_kl = ((old_log_probs.float() - log_probs.detach().float()) * mask).sum() / count
        return loss, clip_ratio, ppo_kl, None, None
