"""Policy-actor forward that never materialises the [tokens x vocabulary] logits.

OpenRLHF 0.11.2's ``Actor.forward`` turns the whole [B, T, V] logits into float32, divides them by the
temperature and reduces them to log-probs (and entropy); at Qwen's V = 152,064 that tensor and its
softmax copies dominate the step's memory. :func:`install` replaces the ``forward`` of one ``Actor``
instance (the policy's; the reference, critic and reward models are other objects, untouched) by
:class:`ChunkedActorForward`:

* the model runs as usual (``actor.model(...)``, the DeepSpeed engine when wrapped), but its output
  head's ``forward`` is swapped for the duration of the call: it receives the final hidden states and
  returns the label log-prob (and entropy) of the **response positions only**, computed by
  :func:`openrlhf_steer.core.entropy.head_logprobs_and_entropy` in row chunks (``lm_head`` -> float32 ->
  temperature per chunk; every chunk recomputed in backward);
* because the head module is still *called*, DeepSpeed ZeRO-3's module hooks gather its weight for
  the forward and again before its backward (the pre-backward hook sits on the values it returns),
  exactly as for the stock ``lm_head`` call; tied embeddings share that parameter as usual.

Returned values keep OpenRLHF's layout: action log-probs [B, A] (zero outside ``action_mask``) and,
with ``return_entropy``, ``output.entropy`` [B, T - 1], zero outside the action positions (OpenRLHF
fills the prompt positions too; every consumer masks them). The output carries no ``logits``.

Calls that need the logits or cannot be chunked here go to OpenRLHF's own forward: no
``action_mask`` (logits or all-position log-probs requested), ring attention, multimodal inputs. A
model whose logits are not exactly ``lm_head(hidden)`` (logit soft-capping or scaling, vocabulary
slicing, a custom or LoRA-wrapped head) is detected once at :func:`install` by a probe forward
and keeps OpenRLHF's forward, with a warning (or :class:`UnsupportedActorModel` with ``strict``).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Tuple

import torch
from torch import nn
from transformers.utils import ModelOutput

from openrlhf_steer.core.entropy import DEFAULT_CHUNK_ROWS, head_logprobs_and_entropy

logger = logging.getLogger(__name__)

PROBE_TOKENS = 8


class UnsupportedActorModel(RuntimeError):
    """The policy model's logits are not a plain linear head over the final hidden states."""


@dataclass
class ChunkedActorOutput(ModelOutput):
    """What OpenRLHF's trainer reads from ``Actor.forward``'s output: entropy and the MoE aux loss."""

    entropy: Optional[torch.Tensor] = None
    aux_loss: Optional[torch.Tensor] = None


# --------------------------------------------------------------------------------------------------
# The output head
# --------------------------------------------------------------------------------------------------
def _hf_model(actor) -> nn.Module:
    model = actor.model
    return getattr(model, "module", model)  # a DeepSpeed engine wraps the Hugging Face model


def output_head(actor) -> nn.Linear:
    """The policy's ``lm_head`` if it is a plain ``nn.Linear`` we can call chunk by chunk, else raise."""
    if getattr(actor, "is_vlm", False):
        raise UnsupportedActorModel("vision-language models keep OpenRLHF's forward (their inputs are not text-only)")
    getter = getattr(_hf_model(actor), "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    if head is None:
        raise UnsupportedActorModel("the model has no output embeddings (get_output_embeddings() is None)")
    if not isinstance(head, nn.Linear) or type(head).forward is not nn.Linear.forward:
        raise UnsupportedActorModel(
            f"the output head is a {type(head).__name__}, not a plain nn.Linear (a custom or adapter-wrapped head)"
        )
    if "forward" in head.__dict__:
        raise UnsupportedActorModel(
            "the output head's forward is already replaced on the instance (an accelerate "
            "offload hook or another patch)"
        )
    return head


@contextlib.contextmanager
def _swapped_forward(module: nn.Module, forward: Callable) -> Iterator[None]:
    """``module(...)`` runs ``forward`` (module hooks, e.g. ZeRO-3's gather, still fire around it)."""
    module.forward = forward
    try:
        yield
    finally:
        del module.forward


def probe_head(actor, head: nn.Linear) -> None:
    """One tiny no-grad forward: the model's logits must be exactly what ``head`` returned.

    Catches models that post-process the head's output (soft-capping, logit scaling, vocabulary
    slicing) or call the head more than once. Under ZeRO-3 every rank runs it (it is collective).
    """
    device = head.weight.device
    ids = (torch.arange(1, PROBE_TOKENS + 1, device=device) * 7919 % head.out_features).unsqueeze(0)
    returned = []

    def recording_forward(hidden):
        returned.append(nn.Linear.forward(head, hidden))
        return returned[-1]

    model = actor.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _swapped_forward(head, recording_forward):
            logits = model(
                ids,
                attention_mask=torch.ones_like(ids),
                position_ids=torch.arange(PROBE_TOKENS, device=device).unsqueeze(0),
            )["logits"]
    except Exception as exc:  # same inputs and weights on every rank: every rank falls back alike
        raise UnsupportedActorModel(f"the probe forward failed ({type(exc).__name__}: {exc})") from exc
    finally:
        model.train(was_training)
    if len(returned) != 1:
        raise UnsupportedActorModel(f"the model called its output head {len(returned)} times in one forward")
    if logits.shape != returned[0].shape or not torch.equal(logits.float(), returned[0].float()):
        raise UnsupportedActorModel(
            "the model's logits differ from its output head's result (soft-capping, scaling or slicing after lm_head)"
        )


# --------------------------------------------------------------------------------------------------
# Response rows
# --------------------------------------------------------------------------------------------------
def response_rows(action_mask: torch.Tensor, seqlen: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Flat [B*T] positions whose next token is an action, and their flat [B*A] action-mask positions.

    OpenRLHF aligns ``action_mask`` [B, A] with the last A log-prob positions: action a of row b is
    the token at ``T - A + a``, predicted from the hidden state at ``t = T - 1 - A + a``.
    """
    width = action_mask.shape[1]
    positions = action_mask.reshape(-1).nonzero().squeeze(-1)
    batch_index = torch.div(positions, width, rounding_mode="floor")
    token_index = positions % width + (seqlen - 1 - width)
    return batch_index * seqlen + token_index, positions


def _scatter(values: torch.Tensor, positions: torch.Tensor, shape) -> torch.Tensor:
    """Values at flat ``positions`` of a zero tensor of ``shape`` (differentiable w.r.t. ``values``)."""
    flat = values.new_zeros(math.prod(shape))
    return flat.index_put((positions,), values).view(*shape)


# --------------------------------------------------------------------------------------------------
# The forward
# --------------------------------------------------------------------------------------------------
class ChunkedActorForward:
    """Drop-in for ``Actor.forward`` (same signature) on one instance; see the module doc."""

    def __init__(self, actor, original: Callable, head: nn.Linear, *, chunk_rows: int, entropy_grad: bool):
        self.actor = actor
        self.original = original
        self.head = head
        self.chunk_rows = int(chunk_rows)
        self.entropy_grad = bool(entropy_grad)
        self._warned = set()

    def _stock(self, reason: Optional[str], *args, **kwargs):
        if reason and reason not in self._warned:
            self._warned.add(reason)
            logger.warning("chunked actor forward: %s; this call uses OpenRLHF's forward (full logits)", reason)
        return self.original(*args, **kwargs)

    def __call__(
        self,
        sequences,
        action_mask=None,
        attention_mask=None,
        return_output=False,
        allgather_logits=False,
        return_logprobs=False,
        ring_attn_group=None,
        packed_seq_lens=None,
        return_entropy=False,
        **mm_inputs,
    ):
        call = dict(
            action_mask=action_mask,
            attention_mask=attention_mask,
            return_output=return_output,
            allgather_logits=allgather_logits,
            return_logprobs=return_logprobs,
            ring_attn_group=ring_attn_group,
            packed_seq_lens=packed_seq_lens,
            return_entropy=return_entropy,
        )
        if action_mask is None:
            return self._stock(None, sequences, **call, **mm_inputs)  # the caller wants logits or all positions
        if ring_attn_group is not None:
            return self._stock("ring attention is not supported", sequences, **call, **mm_inputs)
        if mm_inputs:
            return self._stock("multimodal inputs are not supported", sequences, **call, **mm_inputs)
        if return_entropy and not return_output:
            raise ValueError("return_entropy=True needs return_output=True (as in OpenRLHF's Actor.forward)")
        return self._chunked(sequences, action_mask, attention_mask, return_output, return_entropy)

    def _model_inputs(self, sequences, attention_mask, flat_rows):
        """(model args, hidden-row index of each flat [B*T] row) in OpenRLHF's padded or packed layout."""
        if self.actor.packing_samples:
            import openrlhf.models.actor as actor_module  # its unpad helper, looked up at call time

            packed, position_ids, _, _, indices = actor_module.unpad_and_slice_tensor(sequences, attention_mask, None)
            slot = torch.full((sequences.numel(),), -1, dtype=torch.long, device=sequences.device)
            slot[indices] = torch.arange(indices.numel(), device=sequences.device)
            return (packed, None, position_ids), slot[flat_rows]
        position_ids = attention_mask.long().cumsum(-1) - 1
        position_ids.masked_fill_(attention_mask == 0, 1)
        return (sequences, attention_mask, position_ids), flat_rows

    def _chunked(self, sequences, action_mask, attention_mask, return_output, return_entropy):
        batch, seqlen = sequences.shape
        width = action_mask.shape[1]
        flat_rows, positions = response_rows(action_mask, seqlen)
        labels = sequences.reshape(-1).index_select(0, flat_rows + 1)
        (inputs, model_mask, position_ids), hidden_rows = self._model_inputs(sequences, attention_mask, flat_rows)
        kept = hidden_rows >= 0  # packed layout: an action outside the attention mask scores 0, as in OpenRLHF
        if not bool(kept.all()):
            hidden_rows, labels, positions = hidden_rows[kept], labels[kept], positions[kept]
        n_tokens = inputs.numel()
        head = self.head
        entropy_grad = self.entropy_grad and torch.is_grad_enabled()

        def head_forward(hidden):
            if hidden.shape[:-1].numel() != n_tokens:
                raise UnsupportedActorModel(
                    f"the output head received {tuple(hidden.shape)} hidden states for "
                    f"{n_tokens} tokens (logits_to_keep or a custom forward)"
                )
            log_probs, entropy = head_logprobs_and_entropy(
                hidden,
                head.weight,
                labels,
                bias=head.bias,
                rows=hidden_rows,
                temperature=float(self.actor.temperature),
                chunk_rows=self.chunk_rows,
                with_entropy=return_entropy,
                entropy_grad=entropy_grad,
            )
            # One tensor: DeepSpeed's pre-backward hook wraps the module's tensor outputs.
            return torch.stack([log_probs, entropy]) if return_entropy else log_probs.unsqueeze(0)

        with _swapped_forward(head, head_forward):
            model_output = self.actor.model(inputs, attention_mask=model_mask, position_ids=position_ids)
        per_row = model_output["logits"]
        action_log_probs = _scatter(per_row[0], positions, (batch, width))
        if not return_output:
            return action_log_probs
        output = ChunkedActorOutput(aux_loss=model_output.get("aux_loss"))
        if return_entropy:
            entropy_rows = per_row[1] if entropy_grad else per_row[1].detach()  # the stack itself carries a graph
            entropy = _scatter(entropy_rows, positions, (batch, width))
            output.entropy = nn.functional.pad(entropy, (seqlen - 1 - width, 0))
        return action_log_probs, output


def install(actor, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, entropy_grad: bool = True, strict: bool = False) -> bool:
    """Give the policy ``actor`` (an OpenRLHF ``Actor``) the chunked forward; idempotent.

    Returns False (OpenRLHF's forward stays, with a warning) when the model is unsupported; with
    ``strict`` raises :class:`UnsupportedActorModel` instead. ``entropy_grad``: whether the entropy
    carries a gradient (an entropy bonus needs it; OpenRLHF's always does).
    """
    if isinstance(actor.__dict__.get("forward"), ChunkedActorForward):
        return True
    try:
        head = output_head(actor)
        probe_head(actor, head)
    except UnsupportedActorModel as exc:
        if strict:
            raise
        logger.warning(
            "chunked actor forward disabled: %s. The policy uses OpenRLHF's forward, which holds the "
            "full float32 [tokens x vocabulary] logits.",
            exc,
        )
        return False
    actor.forward = ChunkedActorForward(actor, actor.forward, head, chunk_rows=chunk_rows, entropy_grad=entropy_grad)
    return True
