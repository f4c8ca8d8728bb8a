"""Our chunked entropy in place of OpenRLHF's full fp32 ``compute_entropy`` (policy-actor process).

``openrlhf.models.actor.Actor.forward`` calls the module global ``compute_entropy(logits)`` on the
[B, T, V] (or packed [1, nnz, V]) float32, temperature-scaled logits and then handles packing
itself. Replacing that global keeps OpenRLHF's packing path and swaps only the reduction for
:func:`openrlhf_steer.core.entropy.token_logprobs_and_entropy` (chunked over rows, never a full softmax
copy; detached unless an entropy bonus needs its gradient).

The policy actor normally runs :mod:`.chunked_actor`'s forward, which never builds the full logits and
so never calls ``compute_entropy``. This patch serves the calls that keep OpenRLHF's forward (ring
attention, multimodal inputs, a model the chunked forward cannot handle): there the [B, T, V] float32
logits still exist, but their softmax copies do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class EntropyPassSettings:
    """How the patched ``compute_entropy`` runs. OpenRLHF calls it with the logits alone, so the policy
    actor sets these once per process when the method is configured (:func:`configure`)."""

    # True by default so that an unconfigured process behaves like OpenRLHF, whose entropy carries a gradient.
    entropy_grad: bool = True
    chunk_rows: int = 1024


SETTINGS = EntropyPassSettings()


def configure(entropy_grad: bool, chunk_rows: int) -> EntropyPassSettings:
    SETTINGS.entropy_grad, SETTINGS.chunk_rows = bool(entropy_grad), int(chunk_rows)
    return SETTINGS


def chunked_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Full-vocabulary entropy [..., T] of already temperature-scaled logits [..., T, V]."""
    from openrlhf_steer.core.entropy import token_logprobs_and_entropy

    squeeze = logits.dim() == 2
    logits3 = logits.unsqueeze(0) if squeeze else logits
    labels = torch.zeros(logits3.shape[:2], dtype=torch.long, device=logits3.device)
    grad = SETTINGS.entropy_grad and torch.is_grad_enabled() and logits3.requires_grad
    _, entropy = token_logprobs_and_entropy(
        logits3, labels, chunk_rows=SETTINGS.chunk_rows, with_entropy=True, entropy_grad=grad, check_finite=False
    )
    return entropy.squeeze(0) if squeeze else entropy


def install() -> None:
    """Point ``openrlhf.models.actor.compute_entropy`` at :func:`chunked_entropy` (idempotent)."""
    import openrlhf.models.actor as actor_module

    actor_module.compute_entropy = chunked_entropy
