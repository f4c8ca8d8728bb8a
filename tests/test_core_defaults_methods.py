"""Method defaults the papers state (issue 12, part 5), each checked against hand-computed values.

Rand-Pos-Clip's budget (Pos-Adv App. E.2), Edge-GRPO's per-response mean entropy, the STEER paper's
quadrant design (App. D.2) and STEER's signed binary rule (Sec. 5.2, Table 2).
"""

import math

import pytest
import torch
from steertest_core import LN, make_inputs, t

from openrlhf_steer.core.advantages import compute_advantages
from openrlhf_steer.methods import build_method
from openrlhf_steer.core.types import GroupInputs
from openrlhf_steer.methods.covariance import clip_cov_budget
from openrlhf_steer.methods.steer import steer_weights


# --------------------------------------------------------------------------------------------------
# Rand-Pos-Clip: as many zeroed A > 0 tokens as Clip-Cov zeroes, max(int(2e-4 * N_valid), 1)
# --------------------------------------------------------------------------------------------------
def _rand_pos_zeroed(method, advantages, mask=None, seed=0):
    inputs = make_inputs(
        torch.full(advantages.shape, -1.0).tolist(),
        advantages.tolist(),
        mask=None if mask is None else mask.tolist(),
        generator=torch.Generator().manual_seed(seed),
    )
    keep = method.clip_mask(inputs, {})
    return (keep == 0), inputs


def test_rand_pos_clip_zeroes_clip_cov_budget_of_10000_valid_tokens():
    # 10,000 valid tokens, 5,000 with A > 0: Clip-Cov's budget int(2e-4 * 10,000) = 2.
    adv = torch.tensor([1.0, -1.0] * 5000).view(10, 1000)
    zeroed, _ = _rand_pos_zeroed(build_method("rand_pos_clip"), adv)
    assert int(zeroed.sum()) == 2
    assert bool((adv[zeroed] > 0).all())  # only positive-advantage tokens
    assert clip_cov_budget(10_000, 2e-4) == 2  # the very count Clip-Cov uses
    # The fraction option keeps the old behaviour: 10% of the 5,000 positive tokens.
    zeroed, _ = _rand_pos_zeroed(build_method("rand_pos_clip", budget="fraction", clip_fraction=0.1), adv)
    assert int(zeroed.sum()) == 500


def test_rand_pos_clip_budget_counts_valid_tokens_only_and_floors_at_one():
    # 2 rows x 8 positions, 11 valid (8 + 3), all positive: int(2e-4 * 11) = 0 -> at least 1.
    adv = torch.ones(2, 8)
    mask = torch.tensor([[1] * 8, [1, 1, 1, 0, 0, 0, 0, 0]])
    zeroed, _ = _rand_pos_zeroed(build_method("rand_pos_clip"), adv, mask)
    assert int(zeroed.sum()) == 1 and bool(mask.bool()[zeroed].all())
    # 12,000 of 20,000 positions valid: int(2e-4 * 12,000) = 2 (not 4 from the padded 20,000).
    mask = torch.zeros(20, 1000)
    mask[:12] = 1
    zeroed, _ = _rand_pos_zeroed(build_method("rand_pos_clip"), torch.ones(20, 1000), mask)
    assert int(zeroed.sum()) == 2
    # a larger ratio: int(0.01 * 12,000) = 120
    zeroed, _ = _rand_pos_zeroed(build_method("rand_pos_clip", clip_ratio=0.01), torch.ones(20, 1000), mask)
    assert int(zeroed.sum()) == 120
    # no positive token: nothing to zero
    zeroed, _ = _rand_pos_zeroed(build_method("rand_pos_clip"), -torch.ones(2, 8))
    assert int(zeroed.sum()) == 0


def test_clip_cov_uses_the_same_budget_helper():
    assert [clip_cov_budget(n, 2e-4) for n in (0, 1, 4999, 5000, 10_000, 14_999)] == [0, 1, 1, 1, 2, 2]


# --------------------------------------------------------------------------------------------------
# Edge-GRPO: P_i is the mean entropy over the response's own tokens
# --------------------------------------------------------------------------------------------------
def _edge_group():
    """One prompt, four responses: correct with 10 and 100 tokens, wrong with 50 and 50; H = 0.7 per token,
    the rollout entropy zero-filled past each response's end (T = 100)."""
    lengths = [10, 100, 50, 50]
    mask = torch.zeros(4, 100, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    entropy = 0.7 * mask.float()
    return GroupInputs(
        rewards=torch.tensor([1.0, 1.0, 0.0, 0.0]),
        group_ids=torch.zeros(4, dtype=torch.long),
        response_mask=mask,
        entropy=entropy,
    ), mask


def test_edge_grpo_default_does_not_depend_on_length():
    group, mask = _edge_group()
    # GRPO: mean 0.5, unbiased std sqrt(1/3); A = +-0.5 / (sqrt(1/3) + 1e-4) = +-0.865875.
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    # Every P_i = 0.7, so A'_i = A_i / 0.7 * 0.7 = A_i: both correct answers get the same advantage.
    adv = compute_advantages(group, build_method("edge_grpo"))
    expected = torch.tensor([a, a, -a, -a])[:, None] * mask.float()
    assert torch.allclose(adv, expected, atol=1e-6)
    assert adv[0, 0].item() == pytest.approx(0.8659, abs=1e-4)


def test_edge_grpo_all_positions_option_reproduces_the_length_bias():
    group, _ = _edge_group()
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    # P = sum/T = [0.07, 0.7, 0.35, 0.35], mean 0.3675: A' = a * 0.3675 / P
    adv = compute_advantages(group, build_method("edge_grpo", entropy_mean="all"))
    assert adv[0, 0].item() == pytest.approx(a * 5.25, rel=1e-6)  # 4.55
    assert adv[1, 0].item() == pytest.approx(a * 0.525, rel=1e-6)  # 0.45
    assert adv[2, 0].item() == pytest.approx(-a * 1.05, rel=1e-6)
    assert round(adv[0, 0].item(), 2) == 4.55 and round(adv[1, 0].item(), 2) == 0.45


# --------------------------------------------------------------------------------------------------
# Quadrants: STEER App. D.2 / Figure 6 design
# --------------------------------------------------------------------------------------------------
# 10 tokens per quadrant plus tokens outside every band: p = 0.9 / 0.1 in the bands, 0.5 and the band
# edges 0.79 / 0.21 outside them.
QUAD_P = [0.9] * 10 + [0.1] * 10 + [0.1] * 10 + [0.9] * 10 + [0.5, 0.5, 0.79, 0.21, 0.79, 0.21]
QUAD_A = [1.0] * 10 + [1.0] * 10 + [-1.0] * 10 + [-1.0] * 10 + [1.0, -1.0, 1.0, 1.0, -1.0, -1.0]
QUAD_SLICES = {"I": slice(0, 10), "II": slice(10, 20), "III": slice(20, 30), "IV": slice(30, 40)}


def _quadrant_weights(seed=0, **options):
    method = build_method("quadrant", **options)
    inputs = make_inputs([[LN(p) for p in QUAD_P]], [QUAD_A], generator=torch.Generator().manual_seed(seed))
    return method.token_weights(inputs)[0], method


@pytest.mark.parametrize(
    "sign,band,quadrant,value",
    [
        ("pos", "high", "I", 0.0),
        ("pos", "low", "II", 2.0),
        ("neg", "low", "III", 0.0),
        ("neg", "high", "IV", 2.0),
    ],
)
def test_quadrant_default_is_the_paper_design(sign, band, quadrant, value):
    # p > 0.8 / p < 0.2; 10% of the quadrant's 10 tokens = 1 token; masked in I and III, doubled in II and IV.
    w, method = _quadrant_weights(sign=sign, band=band)
    assert method.config.quadrant == quadrant
    inside = QUAD_SLICES[quadrant]
    changed = (w != 1.0).nonzero().squeeze(-1).tolist()
    assert len(changed) == 1 and inside.start <= changed[0] < inside.stop
    assert w[changed[0]].item() == value
    assert method.last_metrics()["quadrant_candidates"] == 10 and method.last_metrics()["quadrant_chosen"] == 1


def test_quadrant_defaults_match_the_paper_numbers():
    c = build_method("quadrant").config
    assert (c.sign, c.band, c.action, c.high_threshold, c.low_threshold, c.fraction, c.upweight_factor) == (
        "pos",
        "high",
        "paper",
        0.8,
        0.2,
        0.1,
        2.0,
    )
    assert c.prob_threshold is None and c.effective_action == "mask"


def test_quadrant_mask_everywhere_option_and_single_split_option():
    w, _ = _quadrant_weights(sign="pos", band="low", action="mask", fraction=1.0)  # all 10 of Quadrant II masked
    expected = torch.ones(len(QUAD_P), dtype=torch.float64)
    expected[QUAD_SLICES["II"]] = 0.0
    assert torch.equal(w, expected)
    # one split at 0.5: low = p <= 0.5 -> Quadrant II tokens plus the A > 0 tokens at p = 0.5 and 0.21
    w, method = _quadrant_weights(sign="pos", band="low", action="mask", fraction=1.0, prob_threshold=0.5)
    expected[40] = expected[43] = 0.0
    assert torch.equal(w, expected) and method.last_metrics()["quadrant_threshold"] == 0.5


# --------------------------------------------------------------------------------------------------
# STEER binary mapping: |Omega| rule (default) and the paper's signed rule
# --------------------------------------------------------------------------------------------------
# p = 0.5 and ratio 1 for every token: the code's metric A (1 - p)^2 (log p + H) = 0.25 (ln 0.5 + H). With
# H = ln 2 + k, it is 0.25 k: k = [-12, -4, 2, 4, 8] gives [-3, -1, 0.5, 1, 2]. The paper's Omega (Eq. 7,
# > 0 raises entropy) is minus that: [3, 1, -0.5, -1, -2].
OMEGA = [-3.0, -1.0, 0.5, 1.0, 2.0]
STEER_LP = [[LN(0.5)] * 5]
STEER_H = [[math.log(2.0) + 4.0 * o for o in OMEGA]]


def test_steer_binary_signed_rule_by_hand():
    # signed: Q_0.8 of the paper's Omega [-2, -1, -0.5, 1, 3] = 1 + 0.2 * (3 - 1) = 1.4; Omega > 1.4 only for
    #         the first token (the most entropy-raising one).
    # abs:    Q_0.8 of [0.5, 1, 1, 2, 3]  = 2 + 0.2 * (3 - 2) = 2.2; |Omega| >= 2.2 only for the first.
    lp, h, adv, mask = t(STEER_LP), t(STEER_H), t([[1.0] * 5]), torch.ones(1, 5, dtype=torch.bool)
    w_signed, omega = steer_weights(lp, lp, h, adv, mask, mapping="binary", lambda_min=0.7, binary_rank="signed")
    assert torch.allclose(omega, t([OMEGA]))
    assert torch.allclose(w_signed, t([[0.7, 1.0, 1.0, 1.0, 1.0]]))
    w_abs, _ = steer_weights(lp, lp, h, adv, mask, mapping="binary", lambda_min=0.7)
    assert torch.allclose(w_abs, t([[0.7, 1.0, 1.0, 1.0, 1.0]]))
    method = build_method("steer", mapping="binary", lambda_min=0.7, binary_rank="signed")
    w = method.token_weights(make_inputs(STEER_LP, [[1.0] * 5], old_entropy=STEER_H))
    assert torch.allclose(w, w_signed)
    assert build_method("steer").config.binary_rank == "abs"


def test_steer_binary_signed_rule_over_the_optimizer_step_window():
    # Two micro-batches (paper Omega [3, 1, -0.5] and [-1, -2]): the window threshold is the same 1.4.
    method = build_method("steer", mapping="binary", lambda_min=0.7, binary_rank="signed", stat_scope="mini_batch")
    parts = [
        make_inputs([STEER_LP[0][:3]], [[1.0] * 3], old_entropy=[STEER_H[0][:3]]),
        make_inputs([STEER_LP[0][3:]], [[1.0] * 2], old_entropy=[STEER_H[0][3:]]),
    ]
    stats = method.window_stats(parts)
    assert stats["steer/threshold"] == pytest.approx(1.4)
    assert list(method.window_values(parts)) == ["steer/omega"]
    weights = []
    for part in parts:
        part.window_stats = stats
        weights.append(method.token_weights(part))
    assert torch.allclose(torch.cat(weights, dim=1), t([[0.7, 1.0, 1.0, 1.0, 1.0]]))


# --------------------------------------------------------------------------------------------------
# STEER entropy_control_mode=asymmetric (experimental, third-party source, not the authors'): m = paper's Omega
# --------------------------------------------------------------------------------------------------
def _asym(**options):
    method = build_method("steer", entropy_control_mode="asymmetric", **options)
    return method.token_weights(make_inputs(STEER_LP, [[1.0] * 5], old_entropy=STEER_H))[0]


def test_steer_asymmetric_exp_by_hand():
    # m = -Omega = [3, 1, -0.5, -1, -2]; k = -ln(0.7) / max|m| = -ln(0.7) / 3, so exp(k m) = 0.7 ** (-m / 3)
    expected_raw = [0.7 ** (-m / 3) for m in (3.0, 1.0, -0.5, -1.0, -2.0)]  # [1.4286, 1.1262, 0.9423, 0.8879, 0.7884]
    w = _asym(lambda_min=0.7)  # lambda_max 1.0: entropy-raising tokens keep 1
    assert torch.allclose(w, t([min(1.0, v) for v in expected_raw]))
    assert torch.allclose(w, t([1.0, 1.0, 0.7 ** (1 / 6), 0.7 ** (1 / 3), 0.7 ** (2 / 3)]))
    w = _asym(lambda_min=0.7, lambda_max=1.2)  # upper clamp at lambda_max
    assert torch.allclose(w, t([1.2, 0.7 ** (-1 / 3), 0.7 ** (1 / 6), 0.7 ** (1 / 3), 0.7 ** (2 / 3)]))
    # the symmetric default on the same tokens: exp(-k |Omega|), k = -ln(0.7) / 3 -> 0.7 ** (|Omega| / 3)
    sym = build_method("steer", lambda_min=0.7).token_weights(make_inputs(STEER_LP, [[1.0] * 5], old_entropy=STEER_H))
    assert torch.allclose(sym[0], t([0.7, 0.7 ** (1 / 3), 0.7 ** (0.5 / 3), 0.7 ** (1 / 3), 0.7 ** (2 / 3)]))


def test_steer_asymmetric_linear_by_hand():
    # ascending from lambda_min at min m = -2 to lambda_max at max m = 3: w = 0.8 + (m + 2) * 0.4 / 5
    w = _asym(mapping="linear", lambda_min=0.8, lambda_max=1.2)
    assert torch.allclose(w, t([1.2, 1.04, 0.92, 0.88, 0.8]))
    # symmetric linear: descending in |Omega| = [3, 1, 0.5, 1, 2]: w = 1.2 - (|Omega| - 0.5) * 0.4 / 2.5
    sym = build_method("steer", mapping="linear", lambda_min=0.8, lambda_max=1.2)
    assert torch.allclose(
        sym.token_weights(make_inputs(STEER_LP, [[1.0] * 5], old_entropy=STEER_H))[0], t([0.8, 1.12, 1.2, 1.12, 0.96])
    )
    # all m equal: the midpoint (lambda_min + lambda_max) / 2
    flat = build_method("steer", entropy_control_mode="asymmetric", mapping="linear", lambda_min=0.8, lambda_max=1.0)
    same = flat.token_weights(make_inputs([[LN(0.5)] * 2], [[1.0] * 2], old_entropy=[[STEER_H[0][4]] * 2]))
    assert torch.allclose(same, t([[0.9, 0.9]]))


def test_steer_asymmetric_window_scope_and_pure_function_agree():
    lp, h, adv, mask = t(STEER_LP), t(STEER_H), t([[1.0] * 5]), torch.ones(1, 5, dtype=torch.bool)
    w_fn, _ = steer_weights(lp, lp, h, adv, mask, lambda_min=0.7, entropy_control_mode="asymmetric")
    assert torch.allclose(w_fn, t([[1.0, 1.0, 0.7 ** (1 / 6), 0.7 ** (1 / 3), 0.7 ** (2 / 3)]]))
    method = build_method("steer", entropy_control_mode="asymmetric", lambda_min=0.7, stat_scope="mini_batch")
    parts = [
        make_inputs([STEER_LP[0][:3]], [[1.0] * 3], old_entropy=[STEER_H[0][:3]]),
        make_inputs([STEER_LP[0][3:]], [[1.0] * 2], old_entropy=[STEER_H[0][3:]]),
    ]
    stats = method.window_stats(parts)
    assert stats["steer/max"] == pytest.approx(3.0) and stats["steer/min"] == pytest.approx(-2.0)
    weights = []
    for part in parts:
        part.window_stats = stats
        weights.append(method.token_weights(part))
    assert torch.allclose(torch.cat(weights, dim=1), w_fn)
    with pytest.raises(ValueError, match="asymmetric"):
        build_method("steer", entropy_control_mode="asymmetric", mapping="binary")
    assert build_method("steer").config.entropy_control_mode == "symmetric"
