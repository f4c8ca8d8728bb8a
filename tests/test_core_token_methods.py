"""Per-token weight / mask methods: Pos-Adv-Reweight, sign-only, Rand-Pos-Clip, quadrant, forking tokens."""

import pytest
import torch
from steertest_core import LN, make_inputs, t

from openrlhf_steer.core.loss import PolicyLoss
from openrlhf_steer.methods import LossConfig, build_method

# Four tokens at r = 1 (log_probs == old), A = [+1, -1, +2, 0]: the plain per-token loss is -A.
LP = [[-0.5, -1.0, -1.5, -2.0]]
ADV = [[1.0, -1.0, 2.0, 0.0]]


def loss_of(method, **kw):
    inputs = make_inputs(LP, ADV, **kw)
    loss, metrics = PolicyLoss(LossConfig(), method)(inputs)
    loss.backward()
    return loss.item(), inputs.log_probs.grad, metrics


@pytest.mark.parametrize("step,expected_lambda", [(0, 0.0), (4, 0.0), (5, 0.0), (7, 0.4), (10, 1.0)])
def test_pos_adv_stage_schedule(step, expected_lambda):
    # total 10 steps, split 0.5: lambda = 0 for s < 5, then (s - 5) / 5
    loss, grad, m = loss_of(build_method("pos_adv_reweight", schedule="stage"), step=step, total_steps=10)
    # loss = -(lam*1 + 1*(-1) + lam*2 + 0) / 4
    assert loss == pytest.approx(-(3 * expected_lambda - 1) / 4)
    assert torch.allclose(grad, t([[-expected_lambda, 1.0, -2 * expected_lambda, 0.0]]) / 4)
    assert m["method/pos_adv_lambda"] == pytest.approx(expected_lambda)


def test_pos_adv_epoch_schedule_and_errors():
    loss, _, _ = loss_of(build_method("pos_adv_reweight", schedule="epoch"), epoch=2, total_epochs=3)  # lambda 0.5
    assert loss == pytest.approx(-(3 * 0.5 - 1) / 4)
    with pytest.raises(ValueError, match="total_epochs"):
        loss_of(build_method("pos_adv_reweight", schedule="epoch"), epoch=1, total_epochs=1)
    with pytest.raises(ValueError, match="total_steps"):
        loss_of(build_method("pos_adv_reweight", schedule="stage"))
    loss, _, _ = loss_of(build_method("pos_adv_reweight", schedule="constant", lambda_value=0.25))
    assert loss == pytest.approx(-(3 * 0.25 - 1) / 4)


def test_pos_adv_entropy_guided_controller_and_round_trip():
    method = build_method("pos_adv_reweight", schedule="entropy", entropy_target=0.2, step_size=0.05, lambda_init=0.0)
    assert method.required_inputs() == ("old_entropy",)
    # H >= delta raises lambda, H < delta lowers it, clipped to [0, 1]
    for entropy, expected in [(0.3, 0.05), (0.5, 0.10), (0.1, 0.05), (0.1, 0.0), (0.1, 0.0)]:
        method.on_step_end({"entropy/old_mean": entropy})
        assert method.lam == pytest.approx(expected)
    method.on_step_end({"entropy/old_mean": 0.9})
    saved = method.state_dict()
    fresh = build_method("pos_adv_reweight", schedule="entropy")
    fresh.load_state_dict(saved)
    for entropy in (0.25, 0.15, 0.35):
        method.on_step_end({"entropy/old_mean": entropy})
        fresh.on_step_end({"entropy/old_mean": entropy})
        assert fresh.lam == method.lam and fresh.controller_values() == method.controller_values()
    loss, _, m = loss_of(method, old_entropy=[[1.0] * 4])
    assert m["controller/pos_adv_lambda"] == pytest.approx(method.lam)
    assert loss == pytest.approx(-(3 * method.lam - 1) / 4)
    with pytest.raises(ValueError, match="entropy/old_mean"):
        method.on_step_end({"entropy/mean": 0.1})


def test_positive_and_negative_only():
    loss, grad, _ = loss_of(build_method("positive_only"))
    assert loss == pytest.approx(-(1 + 2) / 4) and torch.allclose(grad, t([[-1.0, 0.0, -2.0, 0.0]]) / 4)
    loss, grad, _ = loss_of(build_method("negative_only"))
    assert loss == pytest.approx(1 / 4) and torch.allclose(grad, t([[0.0, 1.0, 0.0, 0.0]]) / 4)


def test_rand_pos_clip_zeroes_seeded_positive_tokens():
    # 8 tokens, 6 with A > 0; fraction 0.5 -> round(3) = 3 positive tokens lose their gradient.
    adv = [[1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 0.0]]
    lp = [[-1.0] * 8]

    def run(seed):
        inputs = make_inputs(lp, adv, generator=torch.Generator().manual_seed(seed))
        loss, m = PolicyLoss(LossConfig(), build_method("rand_pos_clip", budget="fraction", clip_fraction=0.5))(inputs)
        loss.backward()
        return loss.item(), inputs.log_probs.grad, m

    loss, grad, m = run(0)
    zeroed = (grad == 0) & (t(adv) > 0)
    assert int(zeroed.sum()) == 3 and m["method/rand_pos_clipped"] == 3
    assert grad[0, 3].item() == pytest.approx(1 / 8)  # negative token untouched
    assert loss == pytest.approx((-(6 - 3) + 1) / 8)  # -(3 kept positives) + 1 (negative) over 8 tokens
    loss2, grad2, _ = run(0)
    assert torch.equal(grad, grad2)  # same seed, same tokens


def test_quadrant_mask_and_upweight():
    # p_old = [0.9, 0.8, 0.7, 0.6, 0.2, 0.9], A = [+, +, +, +, +, -]: pos/high quadrant = t0..t3 (4 tokens)
    lp = [[LN(0.9), LN(0.8), LN(0.7), LN(0.6), LN(0.2), LN(0.9)]]
    adv = [[1.0, 1.0, 1.0, 1.0, 1.0, -1.0]]
    method = build_method("quadrant", sign="pos", band="high", fraction=0.5, action="mask", prob_threshold=0.5)
    inputs = make_inputs(lp, adv, generator=torch.Generator().manual_seed(3))
    w = method.token_weights(inputs)
    assert int((w == 0).sum()) == 2 and bool((w[0, :4] == 0).sum() == 2)  # round(0.5 * 4) = 2, inside t0..t3
    assert w[0, 4] == 1 and w[0, 5] == 1
    up = build_method(
        "quadrant", sign="neg", band="high", fraction=1.0, action="upweight", upweight_factor=3.0, prob_threshold=0.5
    )
    w_up = up.token_weights(make_inputs(lp, adv))
    assert torch.allclose(w_up, t([[1.0, 1.0, 1.0, 1.0, 1.0, 3.0]]))
    # quantile threshold: median of p over valid tokens = (0.7 + 0.8)/2 = 0.75 -> low band pos = t2, t3, t4
    low = build_method(
        "quadrant", band="low", threshold_mode="quantile", prob_threshold=0.5, fraction=1.0, action="mask"
    )
    w_low = low.token_weights(make_inputs(lp, adv))
    assert torch.allclose(w_low, t([[1.0, 1.0, 0.0, 0.0, 0.0, 1.0]]))
    assert low.last_metrics()["quadrant_threshold"] == pytest.approx(0.75)


def test_forking_tokens_top_quantile_over_valid_tokens_only():
    # H = 0.1 .. 1.0 on 10 valid tokens plus a masked token with H = 50 (must not move the quantile).
    # tau = quantile(H_valid, 0.8) = 0.8 + 0.2 * (0.9 - 0.8) = 0.82 -> keep H in {0.9, 1.0}
    entropy = [[0.1 * (i + 1) for i in range(10)] + [50.0]]
    mask = [[1] * 10 + [0]]
    inputs = make_inputs([[-1.0] * 11], [[1.0] * 11], mask=mask, entropy=entropy)
    method = build_method("forking_tokens")
    w = method.token_weights(inputs)
    assert torch.allclose(w, t([[0.0] * 8 + [1.0, 1.0, 0.0]]))
    assert method.last_metrics()["forking_threshold"] == pytest.approx(0.82)
    loss, _ = PolicyLoss(LossConfig(), method)(inputs)
    assert loss.item() == pytest.approx(-2 / 10)  # denominator stays all 10 valid tokens
    # mini-batch scope: tau over two micro-batches
    mb = build_method("forking_tokens", stat_scope="mini_batch", top_entropy_fraction=0.5)
    a = make_inputs([[-1.0, -1.0]], [[1.0, 1.0]], entropy=[[1.0, 2.0]])
    b = make_inputs([[-1.0, -1.0]], [[1.0, 1.0]], entropy=[[3.0, 4.0]])
    stats = mb.window_stats([a, b])
    assert stats["forking_tokens/threshold"] == pytest.approx(2.5)  # median of [1, 2, 3, 4]
    a.window_stats = stats
    assert torch.allclose(mb.token_weights(a), t([[0.0, 0.0]]))  # micro-batch scope would keep H = 2


@pytest.mark.parametrize("name", ["steer", "forking_tokens", "entropy_advantage"])
@pytest.mark.parametrize("source,field", [("current", "entropy"), ("old", "old_entropy")])
def test_entropy_source_selects_the_entropy_tensor(name, source, field):
    method = build_method(name, entropy_source=source)
    assert method.required_inputs() == (field,)
    # the two entropies differ; the method must read the one its config names
    inputs = make_inputs([[-1.0, -2.0]], [[1.0, 1.0]], entropy=[[0.1, 0.2]], old_entropy=[[0.7, 0.9]])
    expected = [[0.1, 0.2]] if source == "current" else [[0.7, 0.9]]
    assert torch.equal(method.source_entropy(inputs), t(expected))


def test_forking_tokens_ranks_by_old_entropy_when_asked():
    # current entropy ranks token 0 highest, old entropy ranks token 1 highest; keep the top half
    inputs = make_inputs([[-1.0, -1.0]], [[1.0, 1.0]], entropy=[[2.0, 1.0]], old_entropy=[[1.0, 2.0]])
    current = build_method("forking_tokens", top_entropy_fraction=0.5, entropy_source="current")
    old = build_method("forking_tokens", top_entropy_fraction=0.5, entropy_source="old")
    assert torch.allclose(current.token_weights(inputs), t([[1.0, 0.0]]))
    assert torch.allclose(old.token_weights(inputs), t([[0.0, 1.0]]))


def test_linear_quantile_matches_torch_and_has_no_size_limit():
    from openrlhf_steer.methods.sampling import linear_quantile

    g = torch.Generator().manual_seed(0)
    values = torch.rand(1001, generator=g, dtype=torch.float64)
    for q in (0.0, 0.2, 0.5, 0.8, 1.0):
        assert linear_quantile(values, q) == pytest.approx(float(torch.quantile(values, q)))
    # above torch.quantile's 2**24-element limit: values 0..N-1, median (N-1)/2
    big = torch.arange(2**24 + 2, dtype=torch.float32)
    assert linear_quantile(big, 0.5) == pytest.approx((2**24 + 1) / 2)


def test_pos_adv_normalize_by_weights():
    # lambda = 0.25 (constant): weights [0.25, 1, 0.25, 1] sum 2.5 over 4 valid tokens -> rescaled by 4 / 2.5,
    # so the token-mean loss equals sum(w * l) / sum(w) = -(0.25*1 - 1 + 0.25*2 + 0) / 2.5
    method = build_method("pos_adv_reweight", schedule="constant", lambda_value=0.25, normalize_by="weights")
    loss, _, _ = loss_of(method)
    assert loss == pytest.approx(-(0.25 - 1 + 0.5) / 2.5)
