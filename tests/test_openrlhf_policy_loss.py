"""EntropyControlPolicyLoss against OpenRLHF's own PolicyLoss: with the neutral method (grpo) both compute the
same clipped surrogate, so losses and gradients must match for every aggregation and normaliser."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("openrlhf")

from openrlhf.models.loss import PolicyLoss as OpenRLHFPolicyLoss  # noqa: E402

from openrlhf_steer.integration.policy_loss import EntropyControlPolicyLoss, openrlhf_denominators  # noqa: E402
from openrlhf_steer.methods import build_method  # noqa: E402
from openrlhf_steer.methods.base import LossConfig  # noqa: E402


def _tensors(seed=0, b=4, t=9):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(b, t, generator=g) * 3
    new = (old + 0.6 * torch.randn(b, t, generator=g)).requires_grad_(True)
    adv = torch.randn(b, 1, generator=g).expand(b, t).clone()
    mask = torch.rand(b, t, generator=g) > 0.25
    mask[0] = False  # an empty row
    return new, old, adv, mask


@pytest.mark.parametrize("token_level", [True, False])
@pytest.mark.parametrize("dual_clip", [None, 3.0])
@pytest.mark.parametrize("normaliser", [None, (2, 37.0, 6.0)])
def test_grpo_equals_openrlhf_policy_loss(token_level, dual_clip, normaliser):
    kwargs = dict(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip=dual_clip, token_level_loss=token_level)
    theirs = OpenRLHFPolicyLoss(**kwargs)
    ours = EntropyControlPolicyLoss(**kwargs)
    agg = "token-mean" if token_level else "seq-mean-token-mean"
    ours.bind(build_method("grpo"), LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=dual_clip, loss_agg_mode=agg))
    extra = (
        {}
        if normaliser is None
        else dict(
            dp_size=normaliser[0],
            batch_num_tokens=torch.tensor(normaliser[1]),
            global_batch_size=torch.tensor(normaliser[2]),
        )
    )
    new, old, adv, mask = _tensors()
    loss_theirs = theirs(new, old, adv, action_mask=mask, **extra)[0]
    (grad_theirs,) = torch.autograd.grad(loss_theirs, new)
    loss_ours, clip_ratio, ppo_kl, vllm_kl, is_filter = ours(new, old, adv, action_mask=mask, **extra)
    (grad_ours,) = torch.autograd.grad(loss_ours, new)
    assert float(loss_ours.detach()) == pytest.approx(float(loss_theirs.detach()), rel=1e-6, abs=1e-8)
    assert torch.allclose(grad_ours, grad_theirs, atol=1e-8)
    assert vllm_kl is None and is_filter is None
    expected_kl = float(((old - new.detach()) * mask).sum() / mask.sum())
    assert float(ppo_kl) == pytest.approx(expected_kl, rel=1e-6)
    assert 0.0 <= float(clip_ratio) <= 1.0


def test_unbound_is_openrlhf_loss():
    theirs, ours = OpenRLHFPolicyLoss(dual_clip=3.0), EntropyControlPolicyLoss(dual_clip=3.0)
    new, old, adv, mask = _tensors(seed=3)
    a, b = theirs(new, old, adv, action_mask=mask), ours(new, old, adv, action_mask=mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_denominator_conversion():
    assert openrlhf_denominators(4, torch.tensor(100.0), torch.tensor(8.0)) == (25.0, 2.0)
    assert openrlhf_denominators(1, None, None) == (None, None)
