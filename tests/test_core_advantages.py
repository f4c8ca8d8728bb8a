"""Group advantages: GRPO, W-REINFORCE, OPO, unlikeliness reward, Edge-GRPO, GTPO / GRPO-S."""

import math

import pytest
import torch
from steertest_core import t

from openrlhf_steer.core.advantages import compute_advantages
from openrlhf_steer.methods import GroupInputs, build_method
from openrlhf_steer.methods.gtpo import gtpo_token_rewards


def group(rewards, ids, mask, **kw):
    return GroupInputs(
        rewards=torch.tensor(rewards, dtype=torch.float32),
        group_ids=torch.tensor(ids),
        response_mask=torch.tensor(mask, dtype=torch.bool),
        **kw,
    )


MASK4 = [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]]


def test_grpo_by_hand():
    # one group r = [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735 -> A = +-0.866025
    adv = compute_advantages(group([1.0, 0.0, 0.0, 1.0], [0, 0, 0, 0], MASK4))
    a = 0.5 / math.sqrt(1.0 / 3.0)
    assert torch.allclose(adv, torch.tensor([[a, a, a], [-a, -a, 0], [-a, 0, 0], [a, a, a]]), atol=1e-5)
    # Dr.GRPO (no std): +-0.5; a size-1 group: mean 0, std 1 -> r / (1 + eps)
    adv = compute_advantages(group([1.0, 0.0, 0.0, 1.0], [0, 0, 0, 0], MASK4), norm_by_std=False)
    assert adv[0, 0].item() == pytest.approx(0.5) and adv[1, 0].item() == pytest.approx(-0.5)
    single = compute_advantages(group([1.0, 1.0, 0.0], [7, 8, 8], [[1], [1], [1]]))
    assert single[0, 0].item() == pytest.approx(1.0, abs=1e-5)
    # all-equal group: 0
    assert compute_advantages(group([1.0, 1.0], [0, 0], [[1], [1]])).abs().sum() == 0


def test_w_reinforce_modes():
    g = group([1.0, 0.0, 0.5], [0, 0, 0], [[1, 1], [1, 1], [1, 0]])
    adv = compute_advantages(g, build_method("w_reinforce"))
    assert torch.allclose(adv, torch.tensor([[0.1, 0.1], [-1.0, -1.0], [0.5, 0.0]]))
    assert torch.allclose(
        compute_advantages(g, build_method("w_reinforce", mode="psr"))[:, 0], torch.tensor([1.0, 0.0, 0.5])
    )
    assert torch.allclose(
        compute_advantages(g, build_method("w_reinforce", mode="nsr"))[:, 0], torch.tensor([0.0, -1.0, 0.5])
    )


def test_opo_length_weighted_baseline():
    # lengths L = [3, 2, 1, 3], r = [1, 0, 1, 0]: baseline = (3 + 1) / 9 = 4/9
    adv = compute_advantages(group([1.0, 0.0, 1.0, 0.0], [0, 0, 0, 0], MASK4), build_method("opo"))
    b = 4.0 / 9.0
    assert torch.allclose(adv, torch.tensor([[1 - b] * 3, [-b, -b, 0], [1 - b, 0, 0], [-b] * 3]), atol=1e-6)
    # size-1 group: baseline 0
    adv1 = compute_advantages(group([1.0], [0], [[1, 1]]), build_method("opo"))
    assert torch.allclose(adv1, torch.tensor([[1.0, 1.0]]))


def test_unlikeliness_reward_ranks_then_grpo():
    # mean log-probs [-1, -3, -2, -0.5] -> ranks (0 = least likely) [2, 0, 1, 3]; G = 4, beta 0.25
    # r' = r (1 - 0.25 rank / 4) with r = [1, 1, 0, 1] -> [0.875, 1.0, 0.0, 0.8125]
    old = torch.tensor([[-1.0, -1.0], [-3.0, -3.0], [-2.0, -2.0], [-0.5, -9.0]])
    mask = [[1, 1], [1, 1], [1, 1], [1, 0]]  # masked -9 must not enter the mean
    g = group([1.0, 1.0, 0.0, 1.0], [0, 0, 0, 0], mask, old_log_probs=old)
    method = build_method("unlikeliness_reward")
    shaped = method.shape_rewards(g)
    assert torch.allclose(shaped, torch.tensor([0.875, 1.0, 0.0, 0.8125]))
    r = [0.875, 1.0, 0.0, 0.8125]
    mean = sum(r) / 4
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    adv = compute_advantages(g, method)
    assert torch.allclose(adv[:, 0], torch.tensor([(x - mean) / (std + 1e-6) for x in r]), atol=1e-5)
    with pytest.raises(ValueError, match="old_log_probs"):
        compute_advantages(group([1.0], [0], [[1]]), method)


def test_edge_grpo_entropy_scaling():
    # r = [1, 0]: A = +-0.5 / (0.707107 + 1e-4); entropies: seq0 [1, 3] (mean 2), seq1 [1, (pad 5)]
    entropy = torch.tensor([[1.0, 3.0], [1.0, 5.0]])
    g = group([1.0, 0.0], [0, 0], [[1, 1], [1, 0]], entropy=entropy)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    # masked (default): P = [2, 1], mean 1.5 -> A' = [a / 2 * 1.5, -a / 1 * 1.5]
    adv = compute_advantages(g, build_method("edge_grpo"))
    assert torch.allclose(adv, torch.tensor([[0.75 * a, 0.75 * a], [-1.5 * a, 0.0]]), atol=1e-6)
    # all positions (authors' code): P = [2, 3], mean 2.5 -> [a * 1.25, -a * 2.5 / 3]
    adv = compute_advantages(g, build_method("edge_grpo", entropy_mean="all"))
    assert torch.allclose(adv, torch.tensor([[1.25 * a, 1.25 * a], [-a * 2.5 / 3, 0.0]]), atol=1e-6)


def test_edge_grpo_normalizes_by_the_group_not_the_rollout():
    # Two prompts, r = [1, 0] each: A = +-a, a = 0.5 / (sqrt(0.5) + 1e-4). Masked mean entropies P = [2, 1 | 4, 4].
    entropy = torch.tensor([[1.0, 3.0], [1.0, 0.0], [4.0, 4.0], [4.0, 4.0]])
    g = group([1.0, 0.0, 1.0, 0.0], [0, 0, 1, 1], [[1, 1], [1, 0], [1, 1], [1, 1]], entropy=entropy)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    # group (default; STEER Table 3 "normalized entropy across the group"): means 1.5 and 4
    adv = compute_advantages(g, build_method("edge_grpo"))
    assert torch.allclose(adv[:, 0], torch.tensor([a / 2 * 1.5, -a / 1 * 1.5, a, -a]), atol=1e-6)
    # batch: one mean over the rollout, (2 + 1 + 4 + 4) / 4 = 2.75
    adv = compute_advantages(g, build_method("edge_grpo", entropy_normalizer="batch"))
    assert torch.allclose(adv[:, 0], torch.tensor([a / 2 * 2.75, -a * 2.75, a / 4 * 2.75, -a / 4 * 2.75]), atol=1e-6)
    with pytest.raises(ValueError, match="entropy_normalizer"):
        build_method("edge_grpo", entropy_normalizer="prompt")


def test_gtpo_token_rewards_by_hand():
    # Group of 3: seq0 correct [H 1, 3], seq1 correct [H 3, (pad)], seq2 wrong [H 2, 4]; a1 = 1, a2 = 0.1
    # position 0: O+ alive {0, 1}, d = 2, H share = 1/4, 3/4; O- alive {2}, h = 1, 1/H share = 1
    # position 1: O+ alive {0}, d = 1, share 1; O- alive {2}, share 1
    # r+ = 1 + 0.1 * share * d ; r- = -1 - 0.1 * share * h
    rewards = t([1.0, 1.0, 0.0])
    entropy = t([[1.0, 3.0], [3.0, 0.0], [2.0, 4.0]])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]], dtype=torch.bool)
    shaped = gtpo_token_rewards(rewards, entropy, mask, alpha1=1.0, alpha2=0.1, reward_threshold=0.5, eps=1e-12)
    expected = t([[1 + 0.1 * 0.25 * 2, 1 + 0.1 * 1 * 1], [1 + 0.1 * 0.75 * 2, 0.0], [-1.1, -1.1]])
    assert torch.allclose(shaped, expected)
    # Two wrong responses alive at t: 1/H shares; H = [1, 4] -> shares [0.8, 0.2], h = 2 -> -1 - 0.1*[1.6, 0.4]
    shaped_neg = gtpo_token_rewards(
        t([0.0, 0.0]),
        t([[1.0], [4.0]]),
        torch.ones(2, 1, dtype=torch.bool),
        alpha1=1.0,
        alpha2=0.1,
        reward_threshold=0.5,
        eps=1e-12,
    )
    assert torch.allclose(shaped_neg, t([[-1.16], [-1.04]]))


def test_gtpo_advantages_group_normalisation():
    rewards = [1.0, 1.0, 0.0]
    entropy = torch.tensor([[1.0, 3.0], [3.0, 0.0], [2.0, 4.0]])
    g = group(rewards, [0, 0, 0], [[1, 1], [1, 0], [1, 1]], entropy=entropy)
    adv = compute_advantages(g, build_method("gtpo", eps=1e-12))
    vals = [1.05, 1.1, 1.15, -1.1, -1.1]  # shaped rewards of the 5 valid tokens
    mean = sum(vals) / 5
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / 5)
    expected = torch.tensor(
        [
            [(1.05 - mean) / std, (1.1 - mean) / std],
            [(1.15 - mean) / std, 0.0],
            [(-1.1 - mean) / std, (-1.1 - mean) / std],
        ]
    )
    assert torch.allclose(adv, expected, atol=1e-5)
    # split: O+ tokens [1.05, 1.1, 1.15] standardised alone; O- tokens all equal -> 0
    split = compute_advantages(g, build_method("gtpo", normalization="split", eps=1e-12))
    s = math.sqrt(((0.05) ** 2 * 2) / 3)
    assert torch.allclose(split, torch.tensor([[-0.05 / s, 0.0], [0.05 / s, 0.0], [0.0, 0.0]]), atol=1e-4)


def test_grpo_s_sequence_level():
    # mean entropies: seq0 2, seq1 3 (correct), seq2 3 (wrong, alone); a2 share * |O+|:
    # r+ = 1 + 0.1 * [2/5, 3/5] * 2 = [1.08, 1.12]; r- = -1 - 0.1 * 1 * 1 = -1.1; then token-level standardise
    entropy = torch.tensor([[1.0, 3.0], [3.0, 0.0], [2.0, 4.0]])
    g = group([1.0, 1.0, 0.0], [0, 0, 0], [[1, 1], [1, 0], [1, 1]], entropy=entropy)
    adv = compute_advantages(g, build_method("gtpo", level="sequence", eps=1e-12))
    vals = [1.08, 1.08, 1.12, -1.1, -1.1]
    mean = sum(vals) / 5
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / 5)
    assert adv[0, 0].item() == pytest.approx((1.08 - mean) / std, abs=1e-5)
    assert adv[1, 0].item() == pytest.approx((1.12 - mean) / std, abs=1e-5)
    assert adv[2, 1].item() == pytest.approx((-1.1 - mean) / std, abs=1e-5)


def test_group_input_errors():
    with pytest.raises(ValueError, match="rewards contains NaN"):
        compute_advantages(group([float("nan")], [0], [[1]]))
    with pytest.raises(ValueError, match="group_ids"):
        compute_advantages(group([1.0, 0.0], [0], [[1], [1]]))
    with pytest.raises(ValueError, match="GroupInputs.entropy"):
        compute_advantages(group([1.0, 0.0], [0, 0], [[1], [1]]), build_method("gtpo"))
