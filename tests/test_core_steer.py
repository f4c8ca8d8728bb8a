"""STEER weights against hand-computed Omega and mappings (Hao et al., arXiv 2510.10150)."""

import math

import pytest
import torch
from steertest_core import LN, make_inputs, t

import openrlhf_steer
from openrlhf_steer.core.loss import PolicyLoss
from openrlhf_steer.methods import LossConfig, build_method

# Token design (p = p_old = 0.5, H = 1):
#   Omega = A / p_old * p (1 - p)^2 (ln p + H) = A * 2 * 0.5 * 0.25 * (1 - ln 2) = A * 0.25 * 0.3068528
OMEGA_UNIT = 0.25 * (1.0 - math.log(2.0))  # 0.0767132 for A = 1
OMEGA_UNIT_P1 = 0.5 * (1.0 - math.log(2.0))  # (1 - p)^1: 0.1534264
HALF = LN(0.5)


def tensors(adv=(1.0, 2.0, 0.0, 5.0), mask=(1, 1, 1, 0)):
    lp = t([[HALF] * 4])
    return lp, lp.clone(), t([[1.0] * 4]), t([list(adv)]), t([list(mask)]).bool()


def test_omega_by_hand_power_2_and_1():
    lp, old, h, adv, mask = tensors()
    _, omega = openrlhf_steer.steer_weights(lp, old, h, adv, mask)
    assert torch.allclose(omega, t([[OMEGA_UNIT, 2 * OMEGA_UNIT, 0.0, 0.0]]))  # masked token -> 0
    _, omega1 = openrlhf_steer.steer_weights(lp, old, h, adv, mask, prob_power=1)
    assert omega1[0, 0].item() == pytest.approx(OMEGA_UNIT_P1)
    # p_old = 0.25 doubles Omega (factor p / p_old)
    _, omega_off = openrlhf_steer.steer_weights(lp, t([[LN(0.25)] * 4]), h, adv, mask)
    assert omega_off[0, 0].item() == pytest.approx(2 * OMEGA_UNIT)


def test_exp_mapping_by_hand():
    # k = -ln(0.8) / max|Omega| so w = 0.8 ** (|Omega| / max|Omega|): [0.8**0.5, 0.8, 1, masked 0]
    lp, old, h, adv, mask = tensors()
    w, _ = openrlhf_steer.steer_weights(lp, old, h, adv, mask)
    assert torch.allclose(w, t([[math.sqrt(0.8), 0.8, 1.0, 0.0]]))
    assert w.grad_fn is None


def test_exp_mapping_floor_binds_for_tiny_omega():
    # All |Omega| far below the 0.02 floor: k = -ln 0.8 / 0.02, w = 0.8 ** (|Omega| / 0.02)
    lp, old, h, _, mask = tensors()
    adv = t([[0.01, 0.02, 0.0, 0.0]])
    w, omega = openrlhf_steer.steer_weights(lp, old, h, adv, mask)
    expected = [0.8 ** (0.01 * OMEGA_UNIT / 0.02), 0.8 ** (0.02 * OMEGA_UNIT / 0.02), 1.0, 0.0]
    assert torch.allclose(w, t([expected]))


def test_linear_mapping_by_hand():
    # |Omega| in [0, 2u] -> [1.2, 0.8]: t0 (u) -> 1.0, t1 (2u) -> 0.8, t2 (0) -> 1.2
    lp, old, h, adv, mask = tensors()
    w, _ = openrlhf_steer.steer_weights(lp, old, h, adv, mask, mapping="linear", lambda_max=1.2)
    assert torch.allclose(w, t([[1.0, 0.8, 1.2, 0.0]]))
    # Single valid token with nonzero Omega: midpoint (0.8 + 1.2) / 2 as in the authors' code
    w1, _ = openrlhf_steer.steer_weights(lp, old, h, adv, t([[1, 0, 0, 0]]).bool(), mapping="linear", lambda_max=1.2)
    assert w1[0, 0].item() == pytest.approx(1.0) and w1[0, 1:].abs().sum() == 0


def test_binary_mapping_top_fraction():
    # |Omega| over valid = [u, 2u, 0]; 0.8-quantile (linear) = u + 0.6 u = 1.6u -> only t1 gets lambda_min
    lp, old, h, adv, mask = tensors()
    w, _ = openrlhf_steer.steer_weights(lp, old, h, adv, mask, mapping="binary")
    assert torch.allclose(w, t([[1.0, 0.8, 1.0, 0.0]]))


def test_entropy_source_old_default_current_option():
    lp, _, _, adv, mask = tensors()
    inputs = make_inputs(
        lp.tolist(), adv.tolist(), mask=mask.double().tolist(), old_entropy=[[1.0] * 4], entropy=[[0.0] * 4]
    )
    w_old = build_method("steer").token_weights(inputs)
    assert torch.allclose(w_old, t([[math.sqrt(0.8), 0.8, 1.0, 0.0]]))
    # Current entropy H0 = 1 + (1 - ln 2) doubles (ln p + H) of t0, so |Omega0| = 2u = |Omega1|:
    # both get lambda_min with entropy_source=current (the old entropy is ignored).
    inputs.entropy = t([[1.0 + (1 - math.log(2)), 1.0, 1.0, 1.0]])
    w_cur = build_method("steer", entropy_source="current").token_weights(inputs)
    assert torch.allclose(w_cur, t([[0.8, 0.8, 1.0, 0.0]]))


def test_mini_batch_scope_uses_window_max():
    steer = build_method("steer", stat_scope="mini_batch")
    mb1 = make_inputs([[HALF]], [[1.0]], old_entropy=[[1.0]])  # |Omega| = u
    mb2 = make_inputs([[HALF]], [[2.0]], old_entropy=[[1.0]])  # |Omega| = 2u
    stats = steer.window_stats([mb1, mb2])
    assert stats["steer/max"] == pytest.approx(2 * OMEGA_UNIT)
    mb1.window_stats = stats
    assert steer.token_weights(mb1).item() == pytest.approx(math.sqrt(0.8))  # vs 0.8 per micro-batch
    assert build_method("steer").token_weights(mb1).item() == pytest.approx(0.8)
    with pytest.raises(ValueError, match="window_stats"):
        steer.token_weights(mb2)


def test_steer_loss_and_gradient_by_hand():
    # r = 1 on every token, token-mean over 3 valid tokens: loss = -(w0*1 + w1*2 + w2*0)/3
    lp, _, _, adv, mask = tensors()
    inputs = make_inputs(lp.tolist(), adv.tolist(), mask=mask.double().tolist(), old_entropy=[[1.0] * 4])
    loss, metrics = PolicyLoss(LossConfig(), build_method("steer"))(inputs)
    assert loss.item() == pytest.approx(-(math.sqrt(0.8) * 1 + 0.8 * 2) / 3)
    loss.backward()
    # d/dlogp of -A r w at r = 1 is -A w
    assert torch.allclose(inputs.log_probs.grad, t([[-math.sqrt(0.8), -1.6, 0.0, 0.0]]) / 3)
    assert metrics["weights/min"] == pytest.approx(0.8)
    assert metrics["method/frac_changed"] == pytest.approx(2 / 3)


def test_steer_config_validation():
    with pytest.raises(ValueError, match="lambda_min"):
        build_method("steer", lambda_min=0.0)
    with pytest.raises(ValueError, match="mapping"):
        build_method("steer", mapping="cubic")
    with pytest.raises(ValueError, match="prob_power"):
        build_method("steer", prob_power=3)
    with pytest.raises(ValueError, match="lambda_max"):
        build_method("steer", lambda_min=0.9, lambda_max=0.8)
    with pytest.raises(ValueError, match="stat_scope"):
        build_method("steer", stat_scope="global")
    lp, old, h, adv, mask = tensors()
    with pytest.raises(ValueError, match="entropy has shape"):
        openrlhf_steer.steer_weights(lp, old, h[:, :2], adv, mask)


# --------------------------------------------------------------------------------------------------
# Binary mapping: which tail the signed rule ranks (STEER Table 2 binary row; issue 20 item 1)
# --------------------------------------------------------------------------------------------------
# Ten tokens with p = p_old = 0.5 and H = ln 2 + 4 |c|, A = sign(c): the code's metric is
#   A * (1 - 0.5)^2 * (ln 0.5 + H) = sign(c) * 0.25 * 4 |c| = c,
# and the paper's Omega (Eq. 7: -eta * ... * (log p + H), > 0 raises entropy) is -c up to eta > 0.
CODE_METRIC = [4.0, -3.0, 2.0, -1.0, 0.5, 0.1, -0.1, 0.2, -0.2, 0.05]
RANK_H = [[math.log(2.0) + 4.0 * abs(c) for c in CODE_METRIC]]
RANK_ADV = [[math.copysign(1.0, c) for c in CODE_METRIC]]
RANK_LP = [[HALF] * len(CODE_METRIC)]
# Top 20% (Q_0.8, linear interpolation over 10 values: sorted[7] + 0.2 (sorted[8] - sorted[7])):
#   paper Omega -c sorted [-4, -2, -0.5, -0.2, -0.1, -0.05, 0.1, 0.2, 1, 3]: Q = 0.36 -> tokens 1 (3), 3 (1)
#   |Omega|        sorted [0.05, 0.1, 0.1, 0.2, 0.2, 0.5, 1, 2, 3, 4]:    Q = 2.2  -> tokens 0 (4), 1 (3)
#   code sign c    sorted [-3, -1, -0.2, -0.1, 0.05, 0.1, 0.2, 0.5, 2, 4]: Q = 0.8  -> tokens 0 (4), 2 (2)
PAPER_SIGNED_PICKS = {1, 3}
ABS_PICKS = {0, 1}
CODE_SIGN_PICKS = {0, 2}  # what binary_rank=signed ranked before the fix: the most entropy-lowering tokens


def _picked(weights):
    return {i for i, w in enumerate(weights.reshape(-1).tolist()) if w == pytest.approx(0.7)}


def test_binary_signed_rank_uses_the_papers_sign_not_the_codes():
    lp, h, adv = t(RANK_LP), t(RANK_H), t(RANK_ADV)
    mask = torch.ones_like(lp, dtype=torch.bool)
    w_signed, metric = openrlhf_steer.steer_weights(
        lp, lp, h, adv, mask, mapping="binary", lambda_min=0.7, binary_rank="signed"
    )
    assert torch.allclose(metric, t([CODE_METRIC]))  # the shared estimator keeps the code's sign
    assert _picked(w_signed) == PAPER_SIGNED_PICKS
    assert set(w_signed.reshape(-1).tolist()) == {0.7, 1.0}
    w_abs, _ = openrlhf_steer.steer_weights(lp, lp, h, adv, mask, mapping="binary", lambda_min=0.7)
    assert _picked(w_abs) == ABS_PICKS
    assert len({frozenset(PAPER_SIGNED_PICKS), frozenset(ABS_PICKS), frozenset(CODE_SIGN_PICKS)}) == 3
    # the method object, per micro-batch and over an optimizer-step window split in two, agrees
    inputs = make_inputs(RANK_LP, RANK_ADV, old_entropy=RANK_H)
    method = build_method("steer", mapping="binary", lambda_min=0.7, binary_rank="signed")
    assert _picked(method.token_weights(inputs)) == PAPER_SIGNED_PICKS
    window = build_method("steer", mapping="binary", lambda_min=0.7, binary_rank="signed", stat_scope="mini_batch")
    parts = [
        make_inputs([RANK_LP[0][:4]], [RANK_ADV[0][:4]], old_entropy=[RANK_H[0][:4]]),
        make_inputs([RANK_LP[0][4:]], [RANK_ADV[0][4:]], old_entropy=[RANK_H[0][4:]]),
    ]
    stats = window.window_stats(parts)
    assert stats["steer/threshold"] == pytest.approx(0.36)
    picked = set()
    for offset, part in zip((0, 4), parts):
        part.window_stats = stats
        picked |= {offset + i for i in _picked(window.token_weights(part))}
    assert picked == PAPER_SIGNED_PICKS
