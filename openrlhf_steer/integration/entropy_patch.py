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
    actor installs a :class:`ChunkedEntropy` carrying these once per process (:func:`configure`)."""

    # True by default so that an unconfigured process behaves like OpenRLHF, whose entropy carries a gradient.
    entropy_grad: bool = True
    chunk_rows: int = 1024


class ChunkedEntropy:
    """``compute_entropy(logits)`` with our chunked reduction and the settings it was made with."""

    def __init__(self, settings: EntropyPassSettings):
        self.settings = settings

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """Full-vocabulary entropy [..., T] of already temperature-scaled logits [..., T, V]."""
        from openrlhf_steer.core.entropy import token_logprobs_and_entropy

        squeeze = logits.dim() == 2
        logits3 = logits.unsqueeze(0) if squeeze else logits
        labels = torch.zeros(logits3.shape[:2], dtype=torch.long, device=logits3.device)
        grad = self.settings.entropy_grad and torch.is_grad_enabled() and logits3.requires_grad
        _, entropy = token_logprobs_and_entropy(
            logits3,
            labels,
            chunk_rows=self.settings.chunk_rows,
            with_entropy=True,
            entropy_grad=grad,
            check_finite=False,
        )
        return entropy.squeeze(0) if squeeze else entropy


def install(settings: EntropyPassSettings = None) -> ChunkedEntropy:
    """Point ``openrlhf.models.actor.compute_entropy`` at a :class:`ChunkedEntropy` (OpenRLHF's default
    settings unless given); recorded in :data:`~.patches.OPENRLHF_PATCHES`."""
    import openrlhf.models.actor as actor_module

    from .patches import OPENRLHF_PATCHES

    current = actor_module.compute_entropy
    if settings is None:
        if isinstance(current, ChunkedEntropy):  # already ours: keep the settings it was configured with
            return current
        settings = EntropyPassSettings()
    entropy_pass = ChunkedEntropy(settings)
    OPENRLHF_PATCHES.replace(actor_module, "compute_entropy", entropy_pass)
    return entropy_pass


def configure(entropy_grad: bool, chunk_rows: int) -> EntropyPassSettings:
    """Install the chunked entropy with these settings in this process (the policy actor's method decides)."""
    return install(EntropyPassSettings(entropy_grad=bool(entropy_grad), chunk_rows=int(chunk_rows))).settings
