"""The clipped surrogate, dual clip, aggregation modes, metrics and bad input of PolicyLoss."""

import math

import pytest
import torch
from steertest_core import LN, make_inputs, t

from openrlhf_steer.core.loss import PolicyLoss, aggregate_loss, clipped_surrogate
from openrlhf_steer.methods import LossConfig, build_method


def five_token_case():
    # old log-prob 0, current log-prob ln r: ratios r = [1.5, 0.5, 0.5, 1.5, 4.0]; A = [1, 1, -1, -1, -1].
    ratios = [1.5, 0.5, 0.5, 1.5, 4.0]
    return make_inputs([[LN(r) for r in ratios]], [[1.0, 1.0, -1.0, -1.0, -1.0]], old_log_probs=[[0.0] * 5])


def test_clipped_surrogate_by_hand_with_and_without_dual_clip():
    # Per token l = max(-A r, -A clip(r, 0.8, 1.2)):
    #   t0 A=+1 r=1.5: max(-1.5, -1.2) = -1.2 (upper clip binds, grad 0)
    #   t1 A=+1 r=0.5: max(-0.5, -0.8) = -0.5 (grad dl/dlogp = -A r = -0.5)
    #   t2 A=-1 r=0.5: max(0.5, 0.8)   =  0.8 (lower clip binds, grad 0)
    #   t3 A=-1 r=1.5: max(1.5, 1.2)   =  1.5 (grad = 1.5)
    #   t4 A=-1 r=4.0: max(4.0, 1.2)   =  4.0 ; dual clip c=3: min(4.0, 3) = 3 (grad 0)
    inputs = five_token_case()
    loss, metrics = PolicyLoss(LossConfig())(inputs)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 0.8 + 1.5 + 4.0) / 5)
    loss.backward()
    assert torch.allclose(inputs.log_probs.grad, t([[0.0, -0.5, 0.0, 1.5, 4.0]]) / 5)

    inputs = five_token_case()
    loss, metrics = PolicyLoss(LossConfig(dual_clip=3.0))(inputs)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 0.8 + 1.5 + 3.0) / 5)
    loss.backward()
    assert torch.allclose(inputs.log_probs.grad, t([[0.0, -0.5, 0.0, 1.5, 0.0]]) / 5)
    assert metrics["clip/frac_high"] == pytest.approx(1 / 5)
    assert metrics["clip/frac_low"] == pytest.approx(1 / 5)
    assert metrics["clip/frac_dual"] == pytest.approx(1 / 5)
    assert metrics["clip/frac"] == pytest.approx(3 / 5)


def aggregation_inputs():
    # r = 1 and no clip effect, so l = -A per token. seq0: A = [1, 2, 3]; seq1: A = [4, 5, (pad 99)].
    return make_inputs(
        [[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]], [[1.0, 2.0, 3.0], [4.0, 5.0, 99.0]], mask=[[1, 1, 1], [1, 1, 0]]
    )


@pytest.mark.parametrize(
    "mode,num_tokens,num_seqs,expected",
    [
        ("token-mean", None, None, -(1 + 2 + 3 + 4 + 5) / 5),  # -3
        ("seq-mean-token-mean", None, None, -((6 / 3) + (9 / 2)) / 2),  # -3.25
        ("seq-mean-token-sum", None, None, -(6 + 9) / 2),  # -7.5
        ("token-mean", 10, None, -15 / 10),  # global window token count
        ("seq-mean-token-mean", None, 4, -6.5 / 4),
        ("seq-mean-token-sum", None, 4, -15 / 4),
    ],
)
def test_aggregation_modes(mode, num_tokens, num_seqs, expected):
    loss, _ = PolicyLoss(LossConfig(loss_agg_mode=mode))(aggregation_inputs(), num_tokens=num_tokens, num_seqs=num_seqs)
    assert loss.item() == pytest.approx(expected)


def test_aggregate_loss_ignores_nan_on_padding():
    values = t([[1.0, float("nan")]])
    assert aggregate_loss(values, t([[1, 0]]).bool(), "token-mean").item() == 1.0


def test_weights_are_detached_gradient_is_weight_times_plain_gradient():
    g = torch.Generator().manual_seed(0)
    lp = -torch.rand(3, 6, generator=g, dtype=torch.float64) * 3 - 0.05
    old = lp + 0.05 * torch.randn(3, 6, generator=g, dtype=torch.float64)
    adv = t([[1.5], [-0.7], [0.4]]).expand(3, 6).clone()
    old_h = torch.rand(3, 6, generator=g, dtype=torch.float64) * 2
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[2, 4:] = False

    def grad_for(method):
        x = lp.clone().requires_grad_()
        inputs = make_inputs(
            x.detach().tolist(), adv.tolist(), mask=mask.tolist(), old_log_probs=old.tolist(), old_entropy=old_h
        )
        loss, _ = PolicyLoss(LossConfig(dual_clip=3.0), method)(inputs)
        loss.backward()
        return inputs.log_probs.grad

    steer = build_method("steer")
    plain = grad_for(None)
    weighted = grad_for(steer)
    weights = steer.token_weights(
        make_inputs(lp.tolist(), adv.tolist(), mask=mask.tolist(), old_log_probs=old.tolist(), old_entropy=old_h)
    )
    assert weights.grad_fn is None and not weights.requires_grad
    assert torch.allclose(weighted, weights * plain, atol=1e-12)
    assert not torch.allclose(weights[mask], torch.ones_like(weights[mask]))  # the check is not vacuous


def test_empty_mask_gives_zero_loss_and_defined_metrics():
    inputs = make_inputs([[-1.0, -2.0]], [[1.0, -1.0]], mask=[[0, 0]], old_entropy=[[1.0, 1.0]])
    for name in ("grpo", "steer", "forking_tokens", "clip_cov", "kl_cov", "quadrant"):
        extra = {"entropy": t([[0.5, 0.5]])}
        inputs = make_inputs([[-1.0, -2.0]], [[1.0, -1.0]], mask=[[0, 0]], old_entropy=[[1.0, 1.0]], **extra)
        loss, metrics = PolicyLoss(LossConfig(), build_method(name))(inputs)
        loss.backward()
        assert loss.item() == 0.0
        assert all(math.isfinite(v) for v in metrics.values()), name
        assert metrics["tokens/valid"] == 0.0


def test_all_zero_advantages_weights_one_loss_zero():
    inputs = make_inputs(
        [[-0.3, -1.2, -2.0]], [[0.0, 0.0, 0.0]], old_log_probs=[[-0.5, -1.0, -2.5]], old_entropy=[[0.4, 1.1, 2.0]]
    )
    for mapping in ("exp", "linear", "binary"):
        loss, metrics = PolicyLoss(LossConfig(), build_method("steer", mapping=mapping))(inputs)
        assert loss.item() == 0.0
        assert metrics["weights/mean"] == 1.0 and metrics["weights/min"] == 1.0


def test_metrics_quadrants_entropy_and_names():
    # p_old = [0.9, 0.2, 0.6, 0.1], A = [+1, +1, -1, 0]:
    # pos_high: t0; pos_low: t1; neg_high: t2; zero: t3.
    inputs = make_inputs(
        [[LN(0.9), LN(0.2), LN(0.6), LN(0.1)]],
        [[1.0, 1.0, -1.0, 0.0]],
        entropy=[[0.5, 1.5, 1.0, 3.0]],
        old_entropy=[[1.0, 1.0, 1.0, 1.0]],
    )
    _, m = PolicyLoss(LossConfig())(inputs)
    assert m["quadrant/pos_high_prob"] == 0.25 and m["quadrant/pos_low_prob"] == 0.25
    assert m["quadrant/neg_high_prob"] == 0.25 and m["quadrant/neg_low_prob"] == 0.0
    assert m["quadrant/zero_adv"] == 0.25
    assert m["entropy/mean"] == pytest.approx(1.5)  # current entropy (0.5+1.5+1+3)/4
    assert m["entropy/old_mean"] == pytest.approx(1.0)
    # sampled-token estimate -mean(log p_old) = -(ln .9 + ln .2 + ln .6 + ln .1)/4
    assert m["entropy/sampled_nll"] == pytest.approx(-(LN(0.9) + LN(0.2) + LN(0.6) + LN(0.1)) / 4)
    for key in ("clip/frac_low", "clip/frac_high", "weights/mean", "weights/min", "method/frac_changed", "loss/total"):
        assert isinstance(m[key], float)


def test_bad_input_errors_name_the_tensor():
    ok = dict(old_entropy=[[1.0, 1.0]])
    nan_adv = make_inputs([[-1.0, -1.0]], [[float("nan"), 1.0]], **ok)
    with pytest.raises(ValueError, match="advantages"):
        PolicyLoss()(nan_adv)
    inf_lp = make_inputs([[-float("inf"), -1.0]], [[1.0, 1.0]], old_log_probs=[[-1.0, -1.0]])
    with pytest.raises(ValueError, match="log_probs"):
        PolicyLoss()(inf_lp)
    # NaN on a masked position is allowed (padding).
    masked_nan = make_inputs([[-1.0, -1.0]], [[1.0, float("nan")]], mask=[[1, 0]])
    loss, _ = PolicyLoss()(masked_nan)
    assert math.isfinite(loss.item())
    mismatch = make_inputs([[-1.0, -1.0]], [[1.0, 1.0]])
    mismatch.old_log_probs = t([[-1.0, -1.0, -1.0]])
    with pytest.raises(ValueError, match="old_log_probs has shape"):
        PolicyLoss()(mismatch)
    with pytest.raises(ValueError, match="LossInputs.old_entropy"):
        PolicyLoss(method=build_method("steer"))(make_inputs([[-1.0]], [[1.0]]))
    with pytest.raises(ValueError, match="loss_agg_mode"):
        PolicyLoss(LossConfig(loss_agg_mode="sum"))
    with pytest.raises(ValueError, match="dual_clip"):
        PolicyLoss(LossConfig(dual_clip=0.5))
    with pytest.raises(ValueError, match="num_tokens"):
        PolicyLoss()(make_inputs([[-1.0]], [[1.0]]), num_tokens=0)


WEIGHT_OR_MASK_METHODS = [
    ("steer", {}),
    ("steer", {"mapping": "linear", "lambda_max": 1.2}),
    ("pos_adv_reweight", {"schedule": "constant"}),
    ("positive_only", {}),
    ("negative_only", {}),
    ("quadrant", {"fraction": 0.5, "action": "upweight", "prob_threshold": 0.5}),
    ("forking_tokens", {}),
    ("rand_pos_clip", {"budget": "fraction", "clip_fraction": 0.5}),
    ("clip_cov", {"cov_lb": -10.0, "clip_ratio": 0.3}),
]


@pytest.mark.parametrize("name,options", WEIGHT_OR_MASK_METHODS)
def test_every_weight_or_mask_is_detached(name, options):
    # grad_with_method == (weight * mask) * grad_plain, token by token, with the weight/mask taken from
    # the method on an identical copy of the inputs (same seed for the random ones).
    g = torch.Generator().manual_seed(1)
    lp = (-torch.rand(2, 8, generator=g, dtype=torch.float64) * 2 - 0.05).tolist()
    old = (t(lp) + 0.05 * torch.randn(2, 8, generator=g, dtype=torch.float64)).tolist()
    adv = [[1.0] * 8, [-0.5] * 8]
    extra = dict(
        entropy=torch.rand(2, 8, generator=g, dtype=torch.float64),
        old_entropy=torch.rand(2, 8, generator=g, dtype=torch.float64),
    )

    def run(method):
        inputs = make_inputs(lp, adv, old_log_probs=old, generator=torch.Generator().manual_seed(7), **extra)
        loss, metrics = PolicyLoss(LossConfig(dual_clip=3.0), method)(inputs)
        loss.backward()
        return inputs.log_probs.grad, metrics

    plain, _ = run(None)
    method = build_method(name, **options)
    weighted, metrics = run(method)
    probe = make_inputs(lp, adv, old_log_probs=old, generator=torch.Generator().manual_seed(7), **extra)
    w = method.token_weights(probe)
    w = torch.ones(2, 8, dtype=torch.float64) if w is None else w
    per_token = clipped_surrogate(probe.log_probs, probe.old_log_probs, probe.advantages, LossConfig(dual_clip=3.0))
    per_token["advantages"] = probe.advantages
    m = method.clip_mask(probe, per_token)
    m = torch.ones(2, 8, dtype=torch.float64) if m is None else m
    assert not w.requires_grad and not m.requires_grad
    assert torch.allclose(weighted, w * m * plain, atol=1e-12)
    assert metrics["method/frac_changed"] > 0  # the method did act on this batch


def test_grpo_method_equals_no_method():
    loss_a, _ = PolicyLoss(LossConfig(dual_clip=3.0))(five_token_case())
    loss_b, _ = PolicyLoss(LossConfig(dual_clip=3.0), build_method("grpo"))(five_token_case())
    assert loss_a.item() == loss_b.item() == pytest.approx((-1.2 - 0.5 + 0.8 + 1.5 + 3.0) / 5)


@pytest.mark.parametrize(
    "field,value",
    [
        ("eps_low", -0.1),
        ("eps_low", float("nan")),
        ("eps_high", -1.0),
        ("log_ratio_clamp", 0.0),
        ("clip", "yes"),
        ("dual_clip", 1.0),
    ],
)
def test_loss_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        LossConfig(**{field: value}).validate()
