"""Token layout shared by SFT, rollout and training: left-padded prompt, right-padded completion.

    input_ids = [pad .. pad, prompt ..., completion ..., pad .. pad]
                 <------- P columns -----><-------- C columns ------>

The completion's logits are the P-1 .. P+C-2 columns of the model output (next-token prediction),
and ``action_mask`` [B, C] marks the completion tokens up to and including EOS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from openrlhf_steer.core.entropy import token_logprobs_and_entropy
from openrlhf_steer.core.loss import masked_mean as core_masked_mean

Tensor = torch.Tensor


@dataclass
class TokenBatch:
    input_ids: Tensor  # [B, P + C]
    attention_mask: Tensor  # [B, P + C]
    prompt_len: int  # P
    completion_ids: Tensor  # [B, C]
    action_mask: Tensor  # [B, C] float 0/1

    def select(self, index: Tensor) -> "TokenBatch":
        return TokenBatch(
            self.input_ids[index],
            self.attention_mask[index],
            self.prompt_len,
            self.completion_ids[index],
            self.action_mask[index],
        )


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def completion_mask(completion_ids: Tensor, eos_id: int) -> Tensor:
    """1 up to and including the first EOS of each row (all ones if a row never emits EOS)."""
    is_eos = completion_ids.eq(eos_id)
    # number of EOS strictly before each position: positions after the first EOS have >= 1
    eos_before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    return eos_before.eq(0).float()


def build_batch(
    prompt_ids: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int, eos_id: int
) -> TokenBatch:
    """Batch from token lists; completions are right-padded and masked after their first EOS."""
    p_ids, p_mask = left_pad(prompt_ids, pad_id)
    width = max(1, max(len(c) for c in completions))
    c_ids = torch.full((len(completions), width), pad_id, dtype=torch.long)
    c_present = torch.zeros((len(completions), width), dtype=torch.long)
    for row, seq in enumerate(completions):
        if len(seq):
            c_ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
            c_present[row, : len(seq)] = 1
    action_mask = completion_mask(c_ids, eos_id) * c_present.float()
    return TokenBatch(
        input_ids=torch.cat([p_ids, c_ids], dim=1),
        attention_mask=torch.cat([p_mask, action_mask.long()], dim=1),
        prompt_len=p_ids.shape[1],
        completion_ids=c_ids,
        action_mask=action_mask,
    )


def completion_logits(model, batch: TokenBatch) -> Tensor:
    """Logits [B, C, V] that predict each completion token (position ids skip the left padding)."""
    position_ids = (torch.cumsum(batch.attention_mask, dim=1) - 1).clamp(min=0)
    out = model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=position_ids, use_cache=False
    )
    p, c = batch.prompt_len, batch.completion_ids.shape[1]
    return out.logits[:, p - 1 : p + c - 1, :]


def completion_logprobs(
    model, batch: TokenBatch, *, temperature: float = 1.0, with_entropy: bool = True, entropy_grad: bool = False
) -> tuple:
    """(log_probs [B, C], entropy [B, C] or None) of the completion tokens via the core's chunked pass."""
    logits = completion_logits(model, batch)
    return token_logprobs_and_entropy(
        logits,
        batch.completion_ids,
        temperature=temperature,
        mask=batch.action_mask,
        with_entropy=with_entropy,
        entropy_grad=entropy_grad,
    )


def masked_mean(values: Tensor, mask: Tensor) -> float:
    """core's masked mean as a float for the demo's logs, NaN (not core's 0) where the mask is empty."""
    return float(core_masked_mean(values, mask)) if bool(mask.any()) else float("nan")
