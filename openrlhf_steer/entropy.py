"""Per-token log-prob of the sampled token and full-vocabulary entropy, in one chunked pass.

For logits ``x`` [B, T, V], labels ``y`` [B, T] and temperature ``tau`` (``z = x / tau``)::

    log_prob[b, t] = z[b, t, y] - logsumexp(z[b, t, :])
    entropy[b, t]  = logsumexp(z) - sum_v softmax(z)_v * z_v          (= -sum_v p_v log p_v)

Rows (tokens) are processed in chunks of ``chunk_rows``; only one chunk is ever converted to float32,
so the peak extra memory is O(chunk_rows * V) instead of O(B * T * V). The backward pass is a custom
autograd function that recomputes the softmax chunk by chunk from the saved logits and the per-row
logsumexp, so autograd does not keep per-chunk float32 copies alive either. Gradients::

    d log_prob / d z_v = 1[v = y] - p_v
    d entropy  / d z_v = -p_v (log p_v + H)
    d / d x = (d / d z) / tau
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

Tensor = torch.Tensor

DEFAULT_CHUNK_ROWS = 1024


def _compute_dtype(logits: Tensor) -> torch.dtype:
    # float64 stays float64 (gradient checks); every lower precision is upcast to float32.
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def _chunk_stats(z: Tensor, labels: Tensor, with_entropy: bool) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """float32 chunk [R, V] -> (logsumexp [R], log_prob [R], entropy [R] or None)."""
    row_max = z.amax(dim=-1, keepdim=True)
    # +inf / -inf logits have no defined softmax; callers validate finiteness beforehand.
    shifted = z - row_max
    exp_shifted = shifted.exp()
    sum_exp = exp_shifted.sum(dim=-1)
    lse = row_max.squeeze(-1) + sum_exp.log()
    log_prob = z.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - lse
    entropy = None
    if with_entropy:
        # sum_v p_v z_v as a batched dot product: no extra [R, V] buffer.
        weighted = torch.bmm(exp_shifted.unsqueeze(1), shifted.unsqueeze(2)).view(-1) / sum_exp
        # H = lse - sum p z = log(sum_exp) - sum p (z - max)
        entropy = sum_exp.log() - weighted
    return lse, log_prob, entropy


class _ChunkedLogProbEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits2d: Tensor, labels1d: Tensor, temperature: float, chunk_rows: int, with_entropy: bool):
        n_rows = logits2d.shape[0]
        device = logits2d.device
        dtype = _compute_dtype(logits2d)
        lse = torch.empty(n_rows, dtype=dtype, device=device)
        log_probs = torch.empty(n_rows, dtype=dtype, device=device)
        entropy = torch.empty(n_rows if with_entropy else 0, dtype=dtype, device=device)
        for start in range(0, n_rows, chunk_rows):
            stop = min(start + chunk_rows, n_rows)
            z = logits2d[start:stop].to(dtype)
            if temperature != 1.0:
                z = z / temperature
            chunk_lse, chunk_lp, chunk_h = _chunk_stats(z, labels1d[start:stop], with_entropy)
            lse[start:stop] = chunk_lse
            log_probs[start:stop] = chunk_lp
            if with_entropy:
                entropy[start:stop] = chunk_h
        ctx.save_for_backward(logits2d, labels1d, lse, entropy)
        ctx.temperature = temperature
        ctx.chunk_rows = chunk_rows
        ctx.with_entropy = with_entropy
        ctx.mark_non_differentiable(lse)
        ctx.set_materialize_grads(False)
        return log_probs, entropy, lse

    @staticmethod
    def backward(ctx, grad_log_probs: Optional[Tensor], grad_entropy: Optional[Tensor], _grad_lse: Optional[Tensor]):
        logits2d, labels1d, lse, entropy = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        tau = ctx.temperature
        grad_logits = torch.empty_like(logits2d)
        use_entropy_grad = ctx.with_entropy and grad_entropy is not None
        for start in range(0, logits2d.shape[0], ctx.chunk_rows):
            stop = min(start + ctx.chunk_rows, logits2d.shape[0])
            z = logits2d[start:stop].to(lse.dtype)
            if tau != 1.0:
                z = z / tau
            log_p = z - lse[start:stop].unsqueeze(-1)
            p = log_p.exp()
            g = torch.zeros_like(z)
            if grad_log_probs is not None:
                g_lp = grad_log_probs[start:stop].to(z.dtype).unsqueeze(-1)
                g.sub_(p * g_lp)
                g.scatter_add_(-1, labels1d[start:stop].unsqueeze(-1), g_lp)
            if use_entropy_grad:
                g_h = grad_entropy[start:stop].to(z.dtype).unsqueeze(-1)
                g.sub_(g_h * p * (log_p + entropy[start:stop].unsqueeze(-1)))
            if tau != 1.0:
                g.div_(tau)
            grad_logits[start:stop] = g.to(grad_logits.dtype)
        return grad_logits, None, None, None, None


def _check_inputs(logits: Tensor, labels: Tensor, temperature: float, mask: Optional[Tensor], chunk_rows: int) -> None:
    if logits.dim() != 3:
        raise ValueError(f"logits must be [B, T, V], got shape {tuple(logits.shape)}")
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"labels must be [B, T] = {tuple(logits.shape[:2])} to match logits, got {tuple(labels.shape)}")
    if mask is not None and mask.shape != labels.shape:
        raise ValueError(f"mask must be [B, T] = {tuple(labels.shape)} like labels, got {tuple(mask.shape)}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature={temperature!r} must be a finite number > 0 (the sampling temperature, e.g. 1.0)")
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows={chunk_rows!r} must be >= 1 (e.g. {DEFAULT_CHUNK_ROWS})")
    if labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"labels must be an integer tensor of token ids, got dtype {labels.dtype}")


def token_logprobs_and_entropy(
    logits: Tensor,
    labels: Tensor,
    *,
    temperature: float = 1.0,
    mask: Optional[Tensor] = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    with_entropy: bool = True,
    entropy_grad: bool = False,
    check_finite: bool = True,
) -> Tuple[Tensor, Optional[Tensor]]:
    """Log-prob of ``labels`` and full-vocabulary entropy per token, from logits, chunked over rows.

    Args:
        logits: [B, T, V] (any float dtype; each chunk is upcast to float32).
        labels: [B, T] token ids whose log-prob is returned.
        temperature: logits are divided by it (the sampling temperature of the rollout).
        mask: optional [B, T]; only rows with a nonzero mask are computed, the others return 0.
        chunk_rows: rows per chunk (peak extra memory ~ 3 * chunk_rows * V * 4 bytes).
        with_entropy: also return the entropy (fused into the same pass); else ``None``.
        entropy_grad: if True the entropy carries a gradient to ``logits`` (entropy loss);
            if False it is returned detached.
        check_finite: raise a ValueError if any (selected) logit is NaN or +-inf.

    Returns:
        ``(log_probs, entropy)``, float32 [B, T] (float64 for float64 logits); ``entropy`` is None when ``with_entropy`` is False.
    """
    _check_inputs(logits, labels, temperature, mask, chunk_rows)
    batch, seq, vocab = logits.shape
    flat_logits = logits.reshape(batch * seq, vocab)
    flat_labels = labels.reshape(batch * seq).long()
    rows = None
    if mask is not None:
        rows = mask.reshape(-1).bool().nonzero().squeeze(-1)
        flat_logits = flat_logits.index_select(0, rows)
        flat_labels = flat_labels.index_select(0, rows)
    if flat_labels.numel() and (int(flat_labels.min()) < 0 or int(flat_labels.max()) >= vocab):
        raise ValueError(f"labels contain ids outside [0, {vocab}); mask padding positions or fix the tokenizer/vocab size")
    if check_finite and flat_logits.numel():
        for start in range(0, flat_logits.shape[0], chunk_rows):
            if not torch.isfinite(flat_logits[start:start + chunk_rows]).all():
                raise ValueError("logits contain NaN or inf (at a selected token); check the model forward / mixed precision")

    log_probs_sel, entropy_sel, _ = _ChunkedLogProbEntropy.apply(
        flat_logits, flat_labels, float(temperature), int(chunk_rows), bool(with_entropy)
    )
    if with_entropy and not entropy_grad:
        entropy_sel = entropy_sel.detach()

    def scatter_back(values: Tensor) -> Tensor:
        if rows is None:
            return values.view(batch, seq)
        full = values.new_zeros(batch * seq)
        full = full.index_put((rows,), values)
        return full.view(batch, seq)

    log_probs = scatter_back(log_probs_sel)
    entropy = scatter_back(entropy_sel) if with_entropy else None
    return log_probs, entropy


def naive_logprobs_and_entropy(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> Tuple[Tensor, Tensor]:
    """Reference implementation (full float32 log_softmax); for tests and the benchmark only."""
    log_softmax = torch.log_softmax(logits.float() / temperature, dim=-1)
    log_probs = log_softmax.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(log_softmax.exp() * log_softmax).sum(-1)
    return log_probs, entropy
