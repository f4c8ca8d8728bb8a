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

:func:`head_logprobs_and_entropy` goes one step earlier: it takes the final hidden states and the
output projection, so even the model-dtype logits exist one chunk at a time (forward and backward);
the projection's gradients follow from d / d x by the chain rule.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

Tensor = torch.Tensor

DEFAULT_CHUNK_ROWS = 512


def _compute_dtype(logits: Tensor) -> torch.dtype:
    # float64 stays float64 (gradient checks); every lower precision is upcast to float32.
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def _shifted_chunk(chunk: Tensor, dtype: torch.dtype, inv_temperature: float) -> Tuple[Tensor, Tensor]:
    """(z - max z) for one chunk in ``dtype`` as ONE new buffer, and max z [R]; z = chunk / temperature."""
    row_max = chunk.amax(dim=-1, keepdim=True).to(dtype)
    # bf16/fp16 - fp32 promotes to fp32: upcast and shift in one pass into one new buffer (the
    # caller's logits are never modified).
    shifted = chunk - row_max
    if inv_temperature != 1.0:
        shifted.mul_(inv_temperature)
    return shifted, row_max.squeeze(-1) * inv_temperature


def _chunk_stats(
    shifted: Tensor, z_max: Tensor, labels: Tensor, with_entropy: bool
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """From (z - max z) [R, V]: logsumexp [R], log_prob of labels [R], entropy [R] or None.

    Two [R, V] buffers at most (``shifted`` and its exp), never a third for the entropy.
    """
    exp_shifted = shifted.exp()
    sum_exp = exp_shifted.sum(dim=-1)
    log_sum = sum_exp.log()
    log_prob = shifted.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - log_sum
    entropy = None
    if with_entropy:
        # H = log(sum exp) - sum_v p_v (z_v - max): the second term as a batched dot product.
        weighted = torch.bmm(exp_shifted.unsqueeze(1), shifted.unsqueeze(2)).view(-1) / sum_exp
        entropy = log_sum - weighted
    return z_max + log_sum, log_prob, entropy


def _log_p_chunk(raw: Tensor, lse: Tensor, temperature: float, copy: bool) -> Tensor:
    """log p = raw / tau - lse for one chunk [R, V], in ``lse``'s dtype; a fresh buffer when ``copy``."""
    log_p = raw.to(lse.dtype)
    if copy and log_p.data_ptr() == raw.data_ptr():
        log_p = log_p.clone()
    if temperature != 1.0:
        log_p.mul_(1.0 / temperature)
    return log_p.sub_(lse.unsqueeze(-1))


def _logit_grad_chunk(
    log_p: Tensor,
    labels: Tensor,
    entropy: Optional[Tensor],
    grad_log_probs: Optional[Tensor],
    grad_entropy: Optional[Tensor],
    temperature: float,
) -> Tensor:
    """d loss / d (raw logits) of one chunk, written in place over ``log_p`` [R, V] (z = raw / tau).

    ``entropy``/``grad_entropy`` are None when the entropy carries no gradient.
    """
    p = log_p.exp()
    if grad_entropy is not None:
        # dH/dz = -p (log p + H)
        grad = log_p.add_(entropy.unsqueeze(-1)).mul_(p).mul_(-grad_entropy.to(p.dtype).unsqueeze(-1))
    else:
        grad = log_p.zero_()
    if grad_log_probs is not None:
        g_lp = grad_log_probs.to(p.dtype).unsqueeze(-1)
        # d log p_y / dz = onehot(y) - p
        grad.addcmul_(p, g_lp, value=-1.0)
        grad.scatter_add_(-1, labels.unsqueeze(-1), g_lp)
    del p
    if temperature != 1.0:
        grad.div_(temperature)
    return grad


def _all_finite(log_probs: Tensor, entropy: Optional[Tensor]) -> bool:
    return bool(torch.isfinite(log_probs).all()) and (entropy is None or bool(torch.isfinite(entropy).all()))


def _flat_view(logits: Tensor) -> Optional[Tensor]:
    """[B*T, V] view of [B, T, V] logits when the strides allow it without a copy, else None."""
    try:
        return logits.view(-1, logits.shape[-1])
    except RuntimeError:
        return None


def _row_chunks(n_rows: int, rows: Optional[Tensor], chunk_rows: int):
    """Yield (output slice, row selector) per chunk: a slice of logits, or the index tensor of masked rows."""
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        yield slice(start, stop), (slice(start, stop) if rows is None else rows[start:stop])


def _take(tensor: Tensor, selector) -> Tensor:
    return tensor[selector] if isinstance(selector, slice) else tensor.index_select(0, selector)


def _take_rows(logits: Tensor, selector, flat_view: Optional[Tensor]) -> Tensor:
    """Rows of the [B, T, V] logits by flat index; copies only the selected rows, never the whole tensor."""
    if flat_view is not None:
        return _take(flat_view, selector)
    seq = logits.shape[1]
    return logits[torch.div(selector, seq, rounding_mode="floor"), selector % seq]


class _ChunkedLogProbEntropy(torch.autograd.Function):
    """Autograd over [B, T, V] logits (optionally only the flat ``rows`` listed); saves only the logits
    and per-row statistics. Non-contiguous logits (e.g. ``logits[:, :-1]``) are read row by row."""

    @staticmethod
    def forward(
        ctx,
        logits: Tensor,
        labels1d: Tensor,
        rows: Optional[Tensor],
        temperature: float,
        chunk_rows: int,
        with_entropy: bool,
        check_finite: bool,
    ):
        flat_view = _flat_view(logits)
        if flat_view is None and rows is None:
            rows = torch.arange(labels1d.numel(), device=logits.device)
        n_rows = labels1d.numel() if rows is None else rows.numel()
        device = logits.device
        dtype = _compute_dtype(logits)
        lse = torch.empty(n_rows, dtype=dtype, device=device)
        log_probs = torch.empty(n_rows, dtype=dtype, device=device)
        entropy = torch.empty(n_rows if with_entropy else 0, dtype=dtype, device=device)
        for out, sel in _row_chunks(n_rows, rows, chunk_rows):
            shifted, z_max = _shifted_chunk(_take_rows(logits, sel, flat_view), dtype, 1.0 / temperature)
            chunk_lse, chunk_lp, chunk_h = _chunk_stats(shifted, z_max, _take(labels1d, sel), with_entropy)
            del shifted
            if check_finite and not _all_finite(chunk_lp, chunk_h):
                raise ValueError(
                    "logits contain NaN or inf (at a selected token): the log-prob or entropy is not "
                    "finite; check the model forward / mixed precision, or mask those positions"
                )
            lse[out] = chunk_lse
            log_probs[out] = chunk_lp
            if with_entropy:
                entropy[out] = chunk_h
        ctx.save_for_backward(
            logits, labels1d, rows if rows is not None else torch.empty(0, dtype=torch.long), lse, entropy
        )
        ctx.has_rows = rows is not None
        ctx.temperature = temperature
        ctx.chunk_rows = chunk_rows
        ctx.with_entropy = with_entropy
        ctx.mark_non_differentiable(lse)
        ctx.set_materialize_grads(False)
        return log_probs, entropy, lse

    @staticmethod
    def backward(ctx, grad_log_probs: Optional[Tensor], grad_entropy: Optional[Tensor], _grad_lse: Optional[Tensor]):
        logits, labels1d, rows, lse, entropy = ctx.saved_tensors
        rows = rows if ctx.has_rows else None
        flat_view = _flat_view(logits)
        nones = (None,) * 6
        if not ctx.needs_input_grad[0]:
            return (None,) + nones
        tau = ctx.temperature
        # A fresh contiguous gradient, written through its [B*T, V] view.
        grad_logits = logits.new_zeros(logits.shape) if rows is not None else logits.new_empty(logits.shape)
        grad_flat = grad_logits.view(-1, logits.shape[-1])
        use_entropy_grad = ctx.with_entropy and grad_entropy is not None
        for out, sel in _row_chunks(lse.numel(), rows, ctx.chunk_rows):
            log_p = _log_p_chunk(_take_rows(logits, sel, flat_view), lse[out], tau, copy=True)
            grad = _logit_grad_chunk(
                log_p,
                _take(labels1d, sel),
                entropy[out] if use_entropy_grad else None,
                grad_log_probs[out] if grad_log_probs is not None else None,
                grad_entropy[out] if use_entropy_grad else None,
                tau,
            )
            if isinstance(sel, slice):
                grad_flat[sel] = grad.to(grad_flat.dtype)
            else:
                grad_flat.index_copy_(0, sel, grad.to(grad_flat.dtype))
        return (grad_logits,) + nones


def _check_scalars(temperature: float, chunk_rows: int) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"temperature={temperature!r} must be a finite number > 0 (the sampling temperature, e.g. 1.0)"
        )
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows={chunk_rows!r} must be >= 1 (e.g. {DEFAULT_CHUNK_ROWS})")


def _check_inputs(logits: Tensor, labels: Tensor, temperature: float, mask: Optional[Tensor], chunk_rows: int) -> None:
    if logits.dim() != 3:
        raise ValueError(f"logits must be [B, T, V], got shape {tuple(logits.shape)}")
    if labels.shape != logits.shape[:2]:
        raise ValueError(
            f"labels must be [B, T] = {tuple(logits.shape[:2])} to match logits, got {tuple(labels.shape)}"
        )
    if mask is not None and mask.shape != labels.shape:
        raise ValueError(f"mask must be [B, T] = {tuple(labels.shape)} like labels, got {tuple(mask.shape)}")
    _check_scalars(temperature, chunk_rows)
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
        chunk_rows: rows per chunk (peak extra memory ~ 2 * chunk_rows * V * 4 bytes forward).
        with_entropy: also return the entropy (fused into the same pass); else ``None``.
        entropy_grad: if True the entropy carries a gradient to ``logits`` (entropy loss);
            if False it is returned detached.
        check_finite: raise a ValueError if a selected token's log-prob or entropy is not finite
            (NaN / +inf logits, or -inf at the label); checked per chunk, no extra pass.

    Returns:
        ``(log_probs, entropy)``, float32 [B, T] (float64 for float64 logits); ``entropy`` is None when
        ``with_entropy`` is False.
    """
    _check_inputs(logits, labels, temperature, mask, chunk_rows)
    batch, seq, vocab = logits.shape
    flat_labels = labels.reshape(batch * seq).long()
    rows = None
    if mask is not None:
        rows = mask.reshape(-1).bool().nonzero().squeeze(-1)
    selected_labels = flat_labels if rows is None else flat_labels.index_select(0, rows)
    if selected_labels.numel() and (int(selected_labels.min()) < 0 or int(selected_labels.max()) >= vocab):
        raise ValueError(
            f"labels contain ids outside [0, {vocab}); mask padding positions or fix the tokenizer/vocab size"
        )

    log_probs_sel, entropy_sel, _ = _ChunkedLogProbEntropy.apply(
        logits, flat_labels, rows, float(temperature), int(chunk_rows), bool(with_entropy), bool(check_finite)
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


# --------------------------------------------------------------------------------------------------
# From hidden states: the output projection is part of each chunk, the logits never exist whole
# --------------------------------------------------------------------------------------------------
class _ChunkedHeadLogProbEntropy(torch.autograd.Function):
    """Autograd over (hidden [N, H], head weight [V, H], bias [V] or None) for the listed hidden ``rows``.

    Forward: per chunk ``logits = hidden[rows] @ W^T + b`` in the model dtype, then the same statistics
    as :class:`_ChunkedLogProbEntropy`. Backward recomputes each chunk's logits from the saved hidden
    states and weight; only per-row statistics are kept between the passes. The weight gradient is
    accumulated in float32 (float64 for float64 weights) and cast once at the end.
    """

    @staticmethod
    def forward(
        ctx,
        hidden: Tensor,
        weight: Tensor,
        bias: Optional[Tensor],
        rows: Tensor,
        labels: Tensor,
        temperature: float,
        chunk_rows: int,
        with_entropy: bool,
        check_finite: bool,
    ):
        n_rows = rows.numel()
        dtype = _compute_dtype(hidden)
        lse = torch.empty(n_rows, dtype=dtype, device=hidden.device)
        log_probs = torch.empty(n_rows, dtype=dtype, device=hidden.device)
        entropy = torch.empty(n_rows if with_entropy else 0, dtype=dtype, device=hidden.device)
        for out, sel in _row_chunks(n_rows, rows, chunk_rows):
            logits = torch.nn.functional.linear(hidden.index_select(0, sel), weight, bias)
            shifted, z_max = _shifted_chunk(logits, dtype, 1.0 / temperature)
            del logits
            chunk_lse, chunk_lp, chunk_h = _chunk_stats(shifted, z_max, labels[out], with_entropy)
            del shifted
            if check_finite and not _all_finite(chunk_lp, chunk_h):
                raise ValueError(
                    "the output head produced NaN or inf logits at a selected token; check the model "
                    "forward / mixed precision"
                )
            lse[out] = chunk_lse
            log_probs[out] = chunk_lp
            if with_entropy:
                entropy[out] = chunk_h
        ctx.save_for_backward(hidden, weight, bias, rows, labels, lse, entropy)
        ctx.temperature = temperature
        ctx.chunk_rows = chunk_rows
        ctx.with_entropy = with_entropy
        if not with_entropy:
            ctx.mark_non_differentiable(entropy)
        ctx.set_materialize_grads(False)
        return log_probs, entropy

    @staticmethod
    def backward(ctx, grad_log_probs: Optional[Tensor], grad_entropy: Optional[Tensor]):
        hidden, weight, bias, rows, labels, lse, entropy = ctx.saved_tensors
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        nones = (None,) * 6
        use_entropy_grad = ctx.with_entropy and grad_entropy is not None
        if not (need_hidden or need_weight or need_bias) or (grad_log_probs is None and not use_entropy_grad):
            return (None, None, None) + nones
        tau = ctx.temperature
        accum_dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
        grad_hidden = torch.zeros_like(hidden) if need_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=accum_dtype, device=weight.device) if need_weight else None
        grad_bias = torch.zeros(bias.shape, dtype=accum_dtype, device=bias.device) if need_bias else None
        for out, sel in _row_chunks(rows.numel(), rows, ctx.chunk_rows):
            hidden_rows = hidden.index_select(0, sel)
            logits = torch.nn.functional.linear(hidden_rows, weight, bias)
            log_p = _log_p_chunk(logits, lse[out], tau, copy=False)
            del logits
            grad = _logit_grad_chunk(
                log_p,
                labels[out],
                entropy[out] if use_entropy_grad else None,
                grad_log_probs[out] if grad_log_probs is not None else None,
                grad_entropy[out] if use_entropy_grad else None,
                tau,
            )
            # The model-dtype logits were upcast: their gradient is cast back before the projection's backward.
            grad = grad.to(weight.dtype)
            if need_hidden:
                grad_hidden.index_copy_(0, sel, grad @ weight)
            if need_weight:
                if grad.dtype == accum_dtype:
                    grad_weight.addmm_(grad.t(), hidden_rows)
                else:
                    grad_weight.add_(grad.t() @ hidden_rows)
            if need_bias:
                grad_bias.add_(grad.sum(0, dtype=accum_dtype))
            del grad
        if need_weight:
            grad_weight = grad_weight.to(weight.dtype)
        if need_bias:
            grad_bias = grad_bias.to(bias.dtype)
        return (grad_hidden, grad_weight, grad_bias) + nones


def head_logprobs_and_entropy(
    hidden: Tensor,
    weight: Tensor,
    labels: Tensor,
    *,
    bias: Optional[Tensor] = None,
    rows: Optional[Tensor] = None,
    temperature: float = 1.0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    with_entropy: bool = True,
    entropy_grad: bool = False,
    check_finite: bool = False,
) -> Tuple[Tensor, Optional[Tensor]]:
    """Log-prob of ``labels`` and full-vocabulary entropy from hidden states and the output projection.

    The same quantities as :func:`token_logprobs_and_entropy` of ``logits = hidden @ weight.T + bias``,
    without ever holding more than ``chunk_rows`` rows of logits, forward or backward (each chunk is
    recomputed in backward). Each chunk's logits are computed in the model dtype, then upcast to
    float32 and divided by the temperature, as OpenRLHF does with the whole tensor.

    Args:
        hidden: [N, H] final hidden states (any leading shape is flattened to rows).
        weight: [V, H] output projection (``lm_head.weight``; the embedding for tied models).
        labels: [R] token ids, one per selected row.
        bias: optional [V] output bias.
        rows: [R] indices of the hidden rows to score (e.g. response positions); all rows if None.
        temperature, chunk_rows, with_entropy, entropy_grad, check_finite: as in
            :func:`token_logprobs_and_entropy` (``check_finite`` is off by default here: it synchronises
            with the device once per chunk).

    Returns:
        ``(log_probs, entropy)`` of shape [R], float32 (float64 for a float64 model); ``entropy`` is
        None when ``with_entropy`` is False.
    """
    if hidden.dim() < 2 or weight.dim() != 2 or hidden.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"hidden [..., H] and weight [V, H] must share H, got {tuple(hidden.shape)} and {tuple(weight.shape)}"
        )
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"bias must be [V] = [{weight.shape[0]}], got {tuple(bias.shape)}")
    hidden2d = hidden.reshape(-1, hidden.shape[-1])
    rows = torch.arange(hidden2d.shape[0], device=hidden.device) if rows is None else rows.reshape(-1).long()
    labels = labels.reshape(-1)
    if labels.shape != rows.shape:
        raise ValueError(f"labels must hold one id per selected row ({rows.numel()}), got {labels.numel()}")
    _check_scalars(temperature, chunk_rows)
    if labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"labels must be an integer tensor of token ids, got dtype {labels.dtype}")
    vocab = weight.shape[0]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= vocab):
        raise ValueError(f"labels contain ids outside [0, {vocab}); fix the tokenizer/vocab size")
    log_probs, entropy = _ChunkedHeadLogProbEntropy.apply(
        hidden2d,
        weight,
        bias,
        rows,
        labels.long(),
        float(temperature),
        int(chunk_rows),
        bool(with_entropy),
        bool(check_finite),
    )
    if not with_entropy:
        return log_probs, None
    return log_probs, entropy if entropy_grad else entropy.detach()


def naive_logprobs_and_entropy(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> Tuple[Tensor, Tensor]:
    """Reference implementation (full float32 log_softmax); for tests and the benchmark only."""
    log_softmax = torch.log_softmax(logits.float() / temperature, dim=-1)
    log_probs = log_softmax.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(log_softmax.exp() * log_softmax).sum(-1)
    return log_probs, entropy
