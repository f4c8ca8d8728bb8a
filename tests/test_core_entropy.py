"""Chunked log-prob + entropy pass against hand values and an independent naive formula."""

import math

import pytest
import torch

from openrlhf_steer.core.entropy import token_logprobs_and_entropy


def naive(logits, labels, temperature=1.0):
    # Independent reference: full float64 softmax written out here (not the module's helper).
    z = logits.double() / temperature
    p = torch.softmax(z, dim=-1)
    logp = torch.log(p)
    lp = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    h = -(p * logp).sum(-1)
    return lp, h


def test_hand_computed_two_token_vocab():
    # logits [0, ln 3] -> p = [1/4, 3/4]; label 1 -> log p = ln(3/4);
    # H = -(1/4 ln 1/4 + 3/4 ln 3/4) = 0.25*1.386294 + 0.75*0.287682 = 0.562335
    logits = torch.tensor([[[0.0, math.log(3.0)]]])
    lp, h = token_logprobs_and_entropy(logits, torch.tensor([[1]]))
    assert lp.item() == pytest.approx(math.log(0.75), abs=1e-6)
    assert h.item() == pytest.approx(0.5623351, abs=1e-6)
    # Temperature 2 on logits [0, 2 ln 3] gives the same distribution.
    lp2, h2 = token_logprobs_and_entropy(logits * 2, torch.tensor([[1]]), temperature=2.0)
    assert lp2.item() == pytest.approx(math.log(0.75), abs=1e-6)
    assert h2.item() == pytest.approx(0.5623351, abs=1e-6)


@pytest.mark.parametrize("chunk_rows", [1, 4, 1000])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_equals_naive(chunk_rows, temperature):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 50, generator=g) * 3
    labels = torch.randint(0, 50, (3, 7), generator=g)
    lp, h = token_logprobs_and_entropy(logits, labels, temperature=temperature, chunk_rows=chunk_rows)
    ref_lp, ref_h = naive(logits, labels, temperature)
    assert torch.allclose(lp.double(), ref_lp, atol=1e-5)
    assert torch.allclose(h.double(), ref_h, atol=1e-5)
    assert lp.dtype == torch.float32


def test_masked_rows_are_zero_and_others_exact():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 11, generator=g)
    labels = torch.randint(0, 11, (2, 5), generator=g)
    mask = torch.tensor([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=torch.bool)
    logits[0, 2] = float("nan")  # garbage at a masked position is never read
    lp, h = token_logprobs_and_entropy(logits, labels, mask=mask, chunk_rows=3)
    ref_lp, ref_h = naive(torch.nan_to_num(logits), labels)
    assert torch.all(lp[~mask] == 0) and torch.all(h[~mask] == 0)
    assert torch.allclose(lp[mask].double(), ref_lp[mask], atol=1e-5)
    assert torch.allclose(h[mask].double(), ref_h[mask], atol=1e-5)


def test_gradients_match_naive_autograd():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(2, 4, 9, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 9, (2, 4), generator=g)
    coeff_lp = torch.randn(2, 4, generator=g, dtype=torch.float64)
    coeff_h = torch.randn(2, 4, generator=g, dtype=torch.float64)

    x1 = base.clone().requires_grad_()
    lp, h = token_logprobs_and_entropy(x1, labels, temperature=0.8, chunk_rows=3, entropy_grad=True)
    ((lp * coeff_lp).sum() + (h * coeff_h).sum()).backward()

    x2 = base.clone().requires_grad_()
    ref_lp, ref_h = naive(x2, labels, 0.8)
    ((ref_lp * coeff_lp).sum() + (ref_h * coeff_h).sum()).backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-10)


def test_entropy_detached_by_default_and_gradcheck():
    x = torch.randn(1, 3, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[0, 4, 2]])
    lp, h = token_logprobs_and_entropy(x, labels)
    assert lp.requires_grad and not h.requires_grad

    def both(inp):
        a, b = token_logprobs_and_entropy(inp, labels, temperature=1.3, chunk_rows=2, entropy_grad=True)
        return a, b

    assert torch.autograd.gradcheck(both, (x,))


def test_bfloat16_logits_upcast_per_chunk():
    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(2, 3, 40, generator=g) * 4).to(torch.bfloat16)
    labels = torch.randint(0, 40, (2, 3), generator=g)
    lp, h = token_logprobs_and_entropy(logits, labels, chunk_rows=2)
    ref_lp, ref_h = naive(logits.float(), labels)
    assert lp.dtype == torch.float32
    assert torch.allclose(lp.double(), ref_lp, atol=1e-5) and torch.allclose(h.double(), ref_h, atol=1e-5)


def test_qwen_vocabulary_smoke():
    vocab = 152064
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(1, 3, vocab, generator=g)
    labels = torch.tensor([[0, 1000, vocab - 1]])
    lp, h = token_logprobs_and_entropy(logits, labels, chunk_rows=2)
    ref_lp, ref_h = naive(logits, labels)
    assert torch.allclose(lp.double(), ref_lp, atol=1e-4) and torch.allclose(h.double(), ref_h, atol=1e-4)
    # Near-uniform logits: entropy just below ln V = 11.932
    assert 11.0 < float(h.max()) < math.log(vocab)


def test_bad_inputs_raise_clear_errors():
    logits = torch.zeros(1, 2, 4)
    labels = torch.tensor([[0, 1]])
    bad = logits.clone()
    bad[0, 1, 2] = float("inf")
    with pytest.raises(ValueError, match="logits contain NaN or inf"):
        token_logprobs_and_entropy(bad, labels)
    with pytest.raises(ValueError, match="labels must be"):
        token_logprobs_and_entropy(logits, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs_and_entropy(logits, labels, temperature=0.0)
    with pytest.raises(ValueError, match="outside"):
        token_logprobs_and_entropy(logits, torch.tensor([[0, 4]]))
    with pytest.raises(ValueError, match="chunk_rows"):
        token_logprobs_and_entropy(logits, labels, chunk_rows=0)
    # Empty mask: defined zeros, no error.
    lp, h = token_logprobs_and_entropy(logits, labels, mask=torch.zeros(1, 2, dtype=torch.bool))
    assert lp.abs().sum() == 0 and h.abs().sum() == 0


def test_masked_rows_gradient_matches_naive_and_is_zero_on_padding():
    g = torch.Generator().manual_seed(5)
    base = torch.randn(2, 5, 7, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 7, (2, 5), generator=g)
    mask = torch.tensor([[1, 0, 1, 1, 0], [1, 1, 0, 0, 1]], dtype=torch.bool)
    x1 = base.clone().requires_grad_()
    lp, h = token_logprobs_and_entropy(x1, labels, mask=mask, chunk_rows=2, entropy_grad=True, temperature=1.7)
    (lp.sum() + 0.5 * h.sum()).backward()
    x2 = base.clone().requires_grad_()
    ref_lp, ref_h = naive(x2, labels, 1.7)
    ((ref_lp * mask).sum() + 0.5 * (ref_h * mask).sum()).backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-10)
    assert x1.grad[~mask].abs().sum() == 0


def test_non_contiguous_logits_slice_matches_naive_with_gradients():
    # OpenRLHF passes logits[:, :-1, :], which cannot be viewed as [B*T, V]; rows are read in place.
    g = torch.Generator().manual_seed(6)
    full = torch.randn(3, 6, 9, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 9, (3, 5), generator=g)
    sliced = full[:, :-1, :]
    assert not sliced.is_contiguous()
    for mask in (None, torch.tensor([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 1]], dtype=torch.bool)):
        keep = torch.ones(3, 5, dtype=torch.bool) if mask is None else mask
        lp, h = token_logprobs_and_entropy(sliced, labels, temperature=0.9, chunk_rows=4, entropy_grad=True, mask=mask)
        (lp.sum() + 0.3 * h.sum()).backward()
        ours = full.grad.clone()
        full.grad = None
        ref_lp, ref_h = naive(full[:, :-1, :], labels, 0.9)
        ((ref_lp * keep).sum() + 0.3 * (ref_h * keep).sum()).backward()
        assert torch.allclose(lp, ref_lp * keep, atol=1e-10) and torch.allclose(h, ref_h * keep, atol=1e-10)
        assert torch.allclose(ours, full.grad, atol=1e-10)
        full.grad = None


def test_minus_inf_logits_policy():
    # -inf on a non-label token: the log-prob alone is well defined (vocabulary masking) ...
    logits = torch.tensor([[[0.0, math.log(3.0), -float("inf")]]])
    lp, h = token_logprobs_and_entropy(logits, torch.tensor([[1]]), with_entropy=False)
    assert h is None and lp.item() == pytest.approx(math.log(0.75), abs=1e-6)
    # ... but the entropy is requested: 0 * -inf is undefined, so it is an error, as is -inf at the label
    with pytest.raises(ValueError, match="NaN or inf"):
        token_logprobs_and_entropy(logits, torch.tensor([[1]]))
    with pytest.raises(ValueError, match="NaN or inf"):
        token_logprobs_and_entropy(logits, torch.tensor([[2]]), with_entropy=False)


# --------------------------------------------------------------------------------------------------
# From hidden states and the output projection (head_logprobs_and_entropy)
# --------------------------------------------------------------------------------------------------
def _head_case(dtype=torch.float64, n=11, hidden=6, vocab=30, seed=5):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, hidden, generator=g, dtype=torch.float64).to(dtype)
    w = (torch.randn(vocab, hidden, generator=g, dtype=torch.float64) * 1.5).to(dtype)
    b = torch.randn(vocab, generator=g, dtype=torch.float64).to(dtype)
    rows = torch.tensor([0, 2, 3, 7, 9, 10])
    labels = torch.randint(0, vocab, (rows.numel(),), generator=g)
    return h, w, b, rows, labels


@pytest.mark.parametrize("chunk_rows", [1, 4, 100])
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_head_pass_equals_naive_values_and_gradients(chunk_rows, temperature):
    from openrlhf_steer.core.entropy import head_logprobs_and_entropy

    h, w, b, rows, labels = _head_case()
    g = torch.Generator().manual_seed(6)
    c_lp, c_h = (
        torch.randn(rows.numel(), generator=g, dtype=torch.float64),
        torch.randn(rows.numel(), generator=g, dtype=torch.float64),
    )
    ours = [t.clone().requires_grad_() for t in (h, w, b)]
    lp, ent = head_logprobs_and_entropy(
        ours[0],
        ours[1],
        labels,
        bias=ours[2],
        rows=rows,
        temperature=temperature,
        chunk_rows=chunk_rows,
        entropy_grad=True,
    )
    ((lp * c_lp).sum() + (ent * c_h).sum()).backward()

    ref = [t.clone().requires_grad_() for t in (h, w, b)]
    ref_lp, ref_h = naive((ref[0][rows] @ ref[1].T + ref[2]).unsqueeze(0), labels.unsqueeze(0), temperature)
    ((ref_lp[0] * c_lp).sum() + (ref_h[0] * c_h).sum()).backward()
    assert torch.allclose(lp, ref_lp[0], atol=1e-12) and torch.allclose(ent, ref_h[0], atol=1e-12)
    for mine, theirs in zip(ours, ref):
        assert torch.allclose(mine.grad, theirs.grad, atol=1e-10)
    unselected = torch.ones(h.shape[0], dtype=torch.bool)
    unselected[rows] = False
    assert torch.all(ours[0].grad[unselected] == 0)


def test_head_pass_gradcheck_and_detached_entropy():
    from openrlhf_steer.core.entropy import head_logprobs_and_entropy

    h, w, b, rows, labels = _head_case(n=5, hidden=3, vocab=7)
    rows, labels = rows[:3], labels[:3] % 7
    inputs = tuple(t.clone().requires_grad_() for t in (h, w, b))

    def both(hh, ww, bb):
        return head_logprobs_and_entropy(
            hh, ww, labels, bias=bb, rows=rows, temperature=1.4, chunk_rows=2, entropy_grad=True
        )

    assert torch.autograd.gradcheck(both, inputs)
    lp, ent = head_logprobs_and_entropy(*inputs[:2], labels, rows=rows)
    assert lp.requires_grad and not ent.requires_grad
    lp_only, none = head_logprobs_and_entropy(*inputs[:2], labels, rows=rows, with_entropy=False)
    assert none is None and torch.equal(lp_only, lp)


def test_head_pass_bfloat16_model_follows_openrlhf_precision():
    """bf16 model: logits in bf16, then float32 (OpenRLHF's order); gradients cast back to bf16."""
    from openrlhf_steer.core.entropy import head_logprobs_and_entropy

    h, w, _, rows, labels = _head_case(dtype=torch.bfloat16, n=40, hidden=16, vocab=300)
    ours = [t.clone().requires_grad_() for t in (h, w)]
    lp, ent = head_logprobs_and_entropy(ours[0], ours[1], labels, rows=rows, chunk_rows=4, entropy_grad=True)
    (lp.sum() + 0.5 * ent.sum()).backward()
    ref = [t.clone().requires_grad_() for t in (h, w)]
    logits = torch.nn.functional.linear(ref[0][rows], ref[1]).float()
    log_softmax = torch.log_softmax(logits, dim=-1)
    ref_lp = log_softmax.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    ref_h = -(log_softmax.exp() * log_softmax).sum(-1)
    (ref_lp.sum() + 0.5 * ref_h.sum()).backward()
    assert lp.dtype == torch.float32 and ours[1].grad.dtype == torch.bfloat16
    assert torch.allclose(lp, ref_lp, atol=1e-5) and torch.allclose(ent, ref_h, atol=1e-5)
    for mine, theirs in zip(ours, ref):
        assert float((mine.grad.float() - theirs.grad.float()).norm() / theirs.grad.float().norm()) < 1e-2


def test_head_pass_frozen_weight_and_bad_inputs():
    from openrlhf_steer.core.entropy import head_logprobs_and_entropy

    h, w, _, rows, labels = _head_case()
    hh = h.clone().requires_grad_()
    lp, _ = head_logprobs_and_entropy(hh, w, labels, rows=rows)  # a frozen head (e.g. LoRA): no weight gradient
    lp.sum().backward()
    assert hh.grad is not None and w.grad is None
    with pytest.raises(ValueError, match="share H"):
        head_logprobs_and_entropy(h, w[:, :3], labels, rows=rows)
    with pytest.raises(ValueError, match="one id per selected row"):
        head_logprobs_and_entropy(h, w, labels[:2], rows=rows)
    with pytest.raises(ValueError, match="outside"):
        head_logprobs_and_entropy(h, w, labels + 100, rows=rows)
    with pytest.raises(ValueError, match="bias"):
        head_logprobs_and_entropy(h, w, labels, rows=rows, bias=torch.zeros(3, dtype=w.dtype))
