"""Clip-range variants, entropy bonus, adaptive entropy, KL penalty, Clip-Cov, KL-Cov, entropy advantage."""

import math

import pytest
import torch
from steertest_core import LN, make_inputs, t

from openrlhf_steer.core.loss import PolicyLoss
from openrlhf_steer.methods import LossConfig, build_method


def single(ratio, adv, method=None, config=None):
    inputs = make_inputs([[LN(ratio)]], [[adv]], old_log_probs=[[0.0]])
    loss, metrics = PolicyLoss(config or LossConfig(), method)(inputs)
    loss.backward()
    return loss.item(), inputs.log_probs.grad.item()


def test_clip_higher_lower_tighter_free():
    # A = +1, r = 1.25: default clips at 1.2 -> -1.2 (grad 0); clip_higher 0.28 -> -1.25 (grad -1.25)
    assert single(1.25, 1.0) == pytest.approx((-1.2, 0.0))
    assert single(1.25, 1.0, build_method("clip_higher")) == pytest.approx((-1.25, -1.25))
    # A = -1, r = 0.75: default lower bound 0.8 -> 0.8 (grad 0); clip_lower bound 0.72 -> 0.75 (grad 0.75)
    assert single(0.75, -1.0) == pytest.approx((0.8, 0.0))
    assert single(0.75, -1.0, build_method("clip_lower")) == pytest.approx((0.75, 0.75))
    # A = -1, r = 0.85: default unclipped 0.85; clip_tighter bound 0.88 -> 0.88 (grad 0)
    assert single(0.85, -1.0) == pytest.approx((0.85, 0.85))
    assert single(0.85, -1.0, build_method("clip_tighter")) == pytest.approx((0.88, 0.0))
    # clip_free: A = +1, r = 1.5 -> -1.5; A = -1, r = 5 with dual clip 3 configured -> still 5 (dual off)
    assert single(1.5, 1.0, build_method("clip_free")) == pytest.approx((-1.5, -1.5))
    assert single(5.0, -1.0, build_method("clip_free"), LossConfig(dual_clip=3.0)) == pytest.approx((5.0, 5.0))


def test_entropy_loss_term_and_gradient():
    # loss = pg - c * mean_valid(H); pg = 0 (A = 0); H = [1, 2, (masked 9)], c = 0.01 -> -0.015
    entropy = t([[1.0, 2.0, 9.0]]).requires_grad_()
    inputs = make_inputs([[-1.0, -1.0, -1.0]], [[0.0, 0.0, 0.0]], mask=[[1, 1, 0]], entropy=entropy)
    loss, m = PolicyLoss(LossConfig(), build_method("entropy_loss", coef=0.01))(inputs)
    assert loss.item() == pytest.approx(-0.015)
    assert m["loss/entropy_bonus"] == pytest.approx(-0.015)
    loss.backward()
    assert torch.allclose(entropy.grad, t([[-0.005, -0.005, 0.0]]))


def test_adaptive_entropy_controller_and_round_trip():
    method = build_method("adaptive_entropy", target_entropy=0.2, coef_delta=1e-4, coef_max=2.5e-4)
    # H < target: c += delta and enabled; H >= target: c -= delta and disabled; clip to [0, 2.5e-4]
    sequence = [
        (0.1, 1e-4, True),
        (0.1, 2e-4, True),
        (0.1, 2.5e-4, True),
        (0.3, 1.5e-4, False),
        (0.3, 0.5e-4, False),
        (0.3, 0.0, False),
    ]
    for entropy, coef, enabled in sequence:
        method.on_step_end({"entropy/sampled_nll": entropy})
        assert method.coef == pytest.approx(coef) and method.enabled is enabled
    method.on_step_end({"entropy/sampled_nll": 0.05})
    fresh = build_method("adaptive_entropy", target_entropy=0.2, coef_delta=1e-4, coef_max=2.5e-4)
    fresh.load_state_dict(method.state_dict())
    for entropy in (0.1, 0.4, 0.15):
        method.on_step_end({"entropy/sampled_nll": entropy})
        fresh.on_step_end({"entropy/sampled_nll": entropy})
        assert fresh.state_dict() == method.state_dict()
    # Loss uses the current coefficient only while enabled: here c = 1e-4 after (0.05, 0.1, 0.4, 0.15)
    assert method.enabled and method.coef == pytest.approx(2e-4)
    inputs = make_inputs([[-1.0, -1.0]], [[0.0, 0.0]], entropy=[[1.0, 3.0]])
    loss, m = PolicyLoss(LossConfig(), method)(inputs)
    assert loss.item() == pytest.approx(-2e-4 * 2.0)
    assert m["controller/entropy_coef"] == pytest.approx(2e-4) and m["controller/entropy_enabled"] == 1.0
    method.on_step_end({"entropy/sampled_nll": 0.5})  # disabled now -> no bonus
    loss, _ = PolicyLoss(LossConfig(), method)(inputs)
    assert loss.item() == 0.0


@pytest.mark.parametrize(
    "kind,value,grad",
    [
        # log p = ln 0.5, log p_ref = ln 0.25, log r = ln(p_ref / p) = ln 0.5
        ("k1", math.log(2.0), 1.0),  # k1 = -log r; d/dlogp = 1
        ("k2", 0.5 * math.log(2.0) ** 2, math.log(2.0)),  # k2 = (log r)^2 / 2; d/dlogp = -log r
        ("k3", 0.5 - 1.0 + math.log(2.0), 0.5),  # k3 = r - 1 - log r; d/dlogp = 1 - r
    ],
)
def test_kl_penalty_estimators(kind, value, grad):
    inputs = make_inputs([[LN(0.5)]], [[0.0]], ref_log_probs=[[LN(0.25)]])
    loss, m = PolicyLoss(LossConfig(), build_method("kl_penalty", coef=0.1, estimator=kind))(inputs)
    assert loss.item() == pytest.approx(0.1 * value)
    loss.backward()
    assert inputs.log_probs.grad.item() == pytest.approx(0.1 * grad)
    with pytest.raises(ValueError, match="ref_log_probs"):
        PolicyLoss(LossConfig(), build_method("kl_penalty"))(make_inputs([[-1.0]], [[0.0]]))


def cov_case():
    # A = [3, 1, -1, -3] (mean 0), log p = [-0.5, -1, -2, -2.5] (mean -1.5)
    # cov = A * (log p + 1.5) = [3, 0.5, 0.5, 3]
    return [[-0.5, -1.0, -2.0, -2.5]], [[3.0, 1.0, -1.0, -3.0]]


def test_clip_cov_zeroes_a_candidate():
    lp, adv = cov_case()
    # lb 1 < cov < ub 5 -> candidates t0, t3; n = max(int(2e-4 * 4), 1) = 1 token drawn from them.
    method = build_method("clip_cov")
    inputs = make_inputs(lp, adv, generator=torch.Generator().manual_seed(0))
    loss, m = PolicyLoss(LossConfig(), method)(inputs)
    loss.backward()
    grad = inputs.log_probs.grad
    assert m["method/clip_cov_candidates"] == 2 and m["method/clip_cov_clipped"] == 1
    zero = (grad[0] == 0).nonzero().squeeze(-1).tolist()
    assert len(zero) == 1 and zero[0] in (0, 3)
    # surviving tokens: plain -A r gradient at r = 1 -> -A / 4
    keep = [i for i in range(4) if i != zero[0]]
    assert torch.allclose(grad[0, keep], -t(adv)[0, keep] / 4)
    # with ub = 2 there are no candidates -> nothing clipped
    loss2, m2 = PolicyLoss(LossConfig(), build_method("clip_cov", cov_ub=2.0))(make_inputs(lp, adv))
    assert m2["method/clip_cov_clipped"] == 0 and loss2.item() == pytest.approx(-(3 + 1 - 1 - 3) / 4)


def test_kl_cov_penalises_top_cov_token_without_clipping():
    lp, adv = cov_case()
    old = [[-0.5 - 0.4, -1.0, -2.0, -2.5 + 0.1]]  # ratios r0 = e^0.4 (beyond 1.2), r3 = e^-0.1
    # top-k: k = max(1, int(4 * 0.25)) = 1; cov ties at 3 (t0, t3) -> topk takes one of them
    method = build_method("kl_cov", kl_ratio=0.25, kl_coef=1.0)
    inputs = make_inputs(lp, adv, old_log_probs=old)
    loss, m = PolicyLoss(LossConfig(), method)(inputs)
    r0, r3 = math.exp(0.4), math.exp(-0.1)
    pg = (-3 * r0 - 1 + 1 + 3 * r3) / 4  # no clip: -A r on every token
    assert m["method/kl_cov_selected"] == 1
    assert loss.item() in (pytest.approx(pg + 0.4 / 4), pytest.approx(pg + 0.1 / 4))
    # a clear winner: make cov of t0 largest
    adv2 = [[4.0, 1.0, -1.0, -3.0]]
    loss2, _ = PolicyLoss(LossConfig(), build_method("kl_cov", kl_ratio=0.25))(make_inputs(lp, adv2, old_log_probs=old))
    # means: A 0.25, logp -1.5: cov0 = 3.75 * 1 = 3.75, cov3 = -3.25 * -1 = 3.25 -> t0 selected
    pg2 = (-4 * r0 - 1 + 1 + 3 * r3) / 4
    assert loss2.item() == pytest.approx(pg2 + 0.4 / 4)


def test_entropy_advantage_by_hand():
    # A = [1, -1, 0], H = [0.5, 5, 3], alpha 0.4, kappa 2: bonus = min(0.4 H, |A| / 2) = [0.2, 0.5, 0]
    # A' = [1.2, -0.5, 0]; at r = 1 loss = -(1.2 - 0.5 + 0) / 3
    inputs = make_inputs([[-1.0, -1.0, -1.0]], [[1.0, -1.0, 0.0]], entropy=[[0.5, 5.0, 3.0]])
    loss, m = PolicyLoss(LossConfig(), build_method("entropy_advantage"))(inputs)
    assert loss.item() == pytest.approx(-(1.2 - 0.5) / 3)
    loss.backward()
    assert torch.allclose(inputs.log_probs.grad, t([[-1.2, 0.5, 0.0]]) / 3)
    assert m["method/frac_changed"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="kappa"):
        build_method("entropy_advantage", kappa=1.0)


def test_covariance_window_scope_and_cross_rank_reduction():
    # Two micro-batches; window means: A (3 + 1 - 1 - 3 + 4) / 5 = 0.8, log p (-0.5 -1 -2 -2.5 -1) / 5 = -1.4
    lp, adv = cov_case()
    a = make_inputs(lp, adv)
    b = make_inputs([[-1.0]], [[4.0]])
    method = build_method("kl_cov", stat_scope="mini_batch", kl_ratio=0.25)
    stats = method.window_stats([a, b])
    # as two data-parallel ranks: sum the per-rank values listed by window_stats_reduction
    per_rank = [method.window_stats([a]), method.window_stats([b])]
    reduction = method.window_stats_reduction()
    assert set(reduction.values()) == {"sum"}
    assert {k: sum(r[k] for r in per_rank) for k in reduction} == pytest.approx(stats)
    a.window_stats = stats
    from openrlhf_steer.core.estimators import covariance_entropy_change

    cov = covariance_entropy_change(a.log_probs, a.advantages, a.action_mask, means=(0.8, -1.4))
    # cov = (A - 0.8)(log p + 1.4) = [2.2*0.9, 0.2*0.4, -1.8*-0.6, -3.8*-1.1] = [1.98, 0.08, 1.08, 4.18]
    assert torch.allclose(cov, t([[1.98, 0.08, 1.08, 4.18]]))
    _, m = PolicyLoss(LossConfig(), method)(a)
    assert m["method/kl_cov_selected"] == 1
    # The top token by window cov is t3 (by local cov it would tie t0 and t3): move only t3 off-policy.
    shifted = make_inputs(lp, adv, old_log_probs=[[-0.5, -1.0, -2.0, -2.6]])
    shifted.window_stats = stats
    loss2, _ = PolicyLoss(LossConfig(), method)(shifted)
    pg = (-3 - 1 + 1 + 3 * math.exp(0.1)) / 4
    assert loss2.item() == pytest.approx(pg + 0.1 / 4)


def test_steer_window_reduction_across_ranks():
    steer = build_method("steer", stat_scope="mini_batch")
    a = make_inputs([[LN(0.5)]], [[1.0]], old_entropy=[[1.0]])
    b = make_inputs([[LN(0.5), LN(0.5)]], [[2.0, 0.5]], old_entropy=[[1.0, 1.0]])
    whole = steer.window_stats([a, b])
    ranks = [steer.window_stats([a]), steer.window_stats([b])]
    ops = {"max": max, "min": min, "sum": sum}
    reduced = {k: ops[op](r[k] for r in ranks) for k, op in steer.window_stats_reduction().items()}
    for key in ("steer/max", "steer/min", "steer/count"):
        assert reduced[key] == pytest.approx(whole[key])
