"""The claims machinery on given numbers: intervals, verdicts and skipped claims computed by hand."""

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from openrlhf_steer.apps.demo.claims import CLAIMS, evaluate_claims
from openrlhf_steer.apps.demo.claims_stats import mean_interval, paired_differences, verdict
from openrlhf_steer.apps.demo.mechanism_claims import MECHANISM_CLAIMS
from openrlhf_steer.core.estimators import clip_indicator
from openrlhf_steer.core.estimators import covariance_entropy_change_estimate as cov_estimate
from openrlhf_steer.core.estimators import omega_entropy_change as omega_estimate
from openrlhf_steer.core.stats import agreement as agreement_raw
from openrlhf_steer.apps.demo.task import get_task

SE3 = 1 / math.sqrt(3)  # standard error of three values with sample standard deviation 1


def test_mean_interval_is_mean_plus_minus_two_standard_errors():
    interval = mean_interval([1.0, 2.0, 3.0])  # mean 2, sd 1
    assert interval.mean == pytest.approx(2.0)
    assert interval.low == pytest.approx(2.0 - 2 * SE3) and interval.high == pytest.approx(2.0 + 2 * SE3)
    assert interval.n == 3
    with pytest.raises(ValueError, match=">= 2"):
        mean_interval([1.0])


def test_verdict_needs_the_whole_interval_on_the_claimed_side():
    interval = mean_interval([1.0, 2.0, 3.0])  # [0.845, 3.155]
    assert verdict(interval, above=0.8) and not verdict(interval, above=0.9)
    assert verdict(interval, below=3.2) and not verdict(interval, below=3.0)
    assert verdict(interval, above=0.5, below=3.5) and not verdict(interval, above=0.5, below=3.0)
    with pytest.raises(ValueError):
        verdict(interval)


def test_paired_differences_per_seed():
    assert paired_differences([0.5, 0.4], [0.2, 0.6]) == pytest.approx([0.3, -0.2])
    with pytest.raises(ValueError):
        paired_differences([1.0], [1.0, 2.0])


def _result(**values):
    return {
        "heldout_entropy": 0.5,
        "rollout_entropy_last": 0.5,
        "distinct_correct": 2.0,
        "config": {"entropy_target": 0.3},
        **values,
    }


def _claims(results, start):
    return {c["id"]: c for c in evaluate_claims(results, start)}


def test_ratio_and_paired_claims_on_given_numbers():
    start = {"entropy": 1.0, "distinct_correct": 3.0}
    results = {
        "grpo_extreme": {
            0: _result(heldout_entropy=0.1),
            1: _result(heldout_entropy=0.2),
            2: _result(heldout_entropy=0.3),
        },
        "steer_extreme": {
            0: _result(heldout_entropy=0.6),
            1: _result(heldout_entropy=0.8),
            2: _result(heldout_entropy=1.0),
        },
    }
    claims = _claims(results, start)
    # 1a: ratios 0.1, 0.2, 0.3 (sd 0.1): 0.2 +- 2 * 0.1 / sqrt(3), all below 0.5
    assert claims["1a"]["value"] == pytest.approx(0.2)
    assert claims["1a"]["interval"] == pytest.approx([0.2 - 0.2 * SE3, 0.2 + 0.2 * SE3])
    assert claims["1a"]["held"] is True
    # 1b: ratios 0.6, 0.8, 1.0 (sd 0.2): [0.569, 1.031] inside [0.5, 1.5]
    assert (
        claims["1b"]["interval"] == pytest.approx([0.8 - 0.4 * SE3, 0.8 + 0.4 * SE3]) and claims["1b"]["held"] is True
    )
    # 1c: paired differences 0.5, 0.6, 0.7 > 0
    assert claims["1c"]["per_seed"] == pytest.approx([0.5, 0.6, 0.7]) and claims["1c"]["held"] is True
    # every other claim lacks a run: skipped with the missing names, no verdict
    assert claims["2b"]["held"] is None and "clip_higher" in claims["2b"]["skipped"]
    # the mechanism claims (no mechanism records here) are listed too, skipped
    assert {c.id for c in CLAIMS} | {c.id for c in MECHANISM_CLAIMS} == set(claims)
    assert claims["M1-I"]["held"] is None and claims["M1-I"]["level"] == "mechanism"
    assert claims["1a"]["level"] == "training" and claims["6-MSE"]["level"] == "mechanism"


def test_a_noisy_difference_is_not_held():
    start = {"entropy": 1.0, "distinct_correct": 3.0}
    results = {
        "clip_higher": {s: _result(heldout_entropy=h) for s, h in enumerate([0.5, 0.3, 0.7])},
        "grpo": {s: _result(heldout_entropy=h) for s, h in enumerate([0.4, 0.4, 0.4])},
    }
    claim = _claims(results, start)["2b"]
    # differences 0.1, -0.1, 0.3: mean 0.1, sd 0.2, interval [-0.131, 0.331] contains 0
    assert claim["value"] == pytest.approx(0.1)
    assert claim["interval"] == pytest.approx([0.1 - 0.4 * SE3, 0.1 + 0.4 * SE3])
    assert claim["held"] is False


def test_target_claim_uses_the_relative_distance_to_the_controller_target():
    results = {"pos_adv_reweight": {s: _result(rollout_entropy_last=h) for s, h in enumerate([0.3, 0.33, 0.27])}}
    claim = _claims(results, {"entropy": 1.0, "distinct_correct": 1.0})["4"]
    # |H - 0.3| / 0.3 = 0, 0.1, 0.1: mean 1/15, sd 0.0577
    assert claim["per_seed"] == pytest.approx([0.0, 0.1, 0.1])
    sd = float(np.std([0.0, 0.1, 0.1], ddof=1))
    assert claim["interval"] == pytest.approx([1 / 15 - 2 * sd / math.sqrt(3), 1 / 15 + 2 * sd / math.sqrt(3)])
    assert claim["held"] is True


def test_estimator_claims_compare_per_seed_and_keep_the_paper_numbers():
    def change(omega, cov):
        return {"tokens": 10, "omega": omega, "cov": cov, "zero": {"MSE": omega["MSE"] * 2}}

    seeds = {
        0: _result(
            entropy_change=change({"MSE": 1e-4, "PCC": 0.5, "SRCC": 0.6}, {"MSE": 0.3, "PCC": 0.1, "SRCC": 0.7})
        ),
        1: _result(
            entropy_change=change({"MSE": 2e-4, "PCC": 0.4, "SRCC": 0.5}, {"MSE": 0.2, "PCC": 0.0, "SRCC": 0.6})
        ),
        2: _result(
            entropy_change=change({"MSE": 3e-4, "PCC": 0.6, "SRCC": 0.4}, {"MSE": 0.4, "PCC": 0.2, "SRCC": 0.5})
        ),
    }
    claims = _claims({"grpo": seeds}, {"entropy": 1.0, "distinct_correct": 3.0})
    assert claims["6-MSE"]["per_seed"] == pytest.approx([0.3 - 1e-4, 0.2 - 2e-4, 0.4 - 3e-4])
    assert claims["6-MSE"]["held"] is True
    assert claims["6-PCC"]["per_seed"] == pytest.approx([0.4, 0.4, 0.4]) and claims["6-PCC"]["held"] is True
    assert claims["6-SRCC"]["per_seed"] == pytest.approx([-0.1, -0.1, -0.1]) and claims["6-SRCC"]["held"] is False
    assert claims["6-MSE"]["ours"] == pytest.approx({"Omega": 2e-4, "Cov": 0.3, "zero": 4e-4})
    assert claims["6-MSE"]["paper"] == {"Omega": 4e-4, "Cov": 0.29}  # STEER Figure 2, Qwen-Math-7B
    assert claims["6-SRCC"]["paper"] == {"Omega": 0.61, "Cov": 0.06}


def test_an_undefined_per_seed_value_gives_no_verdict_instead_of_failing():
    nan = None  # JSON's null for a NaN statistic
    seeds = {
        s: _result(
            entropy_change={
                "tokens": 5,
                "omega": {"MSE": 1e-4, "PCC": p, "SRCC": 0.1},
                "cov": {"MSE": 0.3, "PCC": 0.0, "SRCC": 0.0},
            }
        )
        for s, p in enumerate([nan, 0.2])
    }
    claims = _claims({"grpo": seeds}, {"entropy": 1.0, "distinct_correct": 3.0})
    assert claims["6-PCC"]["held"] is None and "no interval" in claims["6-PCC"]["skipped"]
    assert claims["6-MSE"]["held"] is True  # the other metrics keep their verdicts


def test_diversity_claims():
    start = {"entropy": 1.0, "distinct_correct": 3.0}
    results = {
        "grpo": {
            s: _result(heldout_entropy=h, distinct_correct=d)
            for s, (h, d) in enumerate([(0.2, 1.0), (0.3, 1.5), (0.1, 1.2)])
        },
        "negative_only": {
            s: _result(heldout_entropy=h, distinct_correct=d)
            for s, (h, d) in enumerate([(0.8, 2.5), (0.9, 2.9), (0.7, 2.4)])
        },
        "positive_only": {
            s: _result(heldout_entropy=h, distinct_correct=d)
            for s, (h, d) in enumerate([(0.4, 2.0), (0.1, 1.9), (0.5, 2.0)])
        },
    }
    claims = _claims(results, start)
    assert claims["7a"]["per_seed"] == pytest.approx([-2.0, -1.5, -1.8]) and claims["7a"]["held"] is True
    # Spearman per seed over the three runs, by hand: seed 0 ranks agree (1), seed 1 agree (1), seed 2: entropy
    # 0.1 < 0.5 < 0.7 against distinct 1.2 < 2.0 < 2.4: 1
    expected = [
        float(
            sps.spearmanr(
                [results[r][s]["heldout_entropy"] for r in results],
                [results[r][s]["distinct_correct"] for r in results],
            )[0]
        )
        for s in range(3)
    ]
    assert expected == pytest.approx([1.0, 0.5, 1.0])
    assert claims["7b"]["per_seed"] == pytest.approx(expected)


def test_one_seed_gives_no_verdict():
    claims = _claims({"grpo_extreme": {0: _result()}}, {"entropy": 1.0, "distinct_correct": 1.0})
    assert claims["1a"]["held"] is None and "1 seed" in claims["1a"]["skipped"]


def test_single_answer_task_skips_the_diversity_claims():
    results = {"grpo": {s: {**_result(), "distinct_correct": None} for s in range(3)}}
    claims = _claims(results, {"entropy": 1.0})
    assert claims["7a"]["held"] is None and claims["7b"]["held"] is None


def test_omega_and_cov_estimates_by_hand():
    lp = torch.log(torch.tensor([[0.5, 0.25]], dtype=torch.float64))
    entropy = torch.tensor([[0.8, 1.2]], dtype=torch.float64)
    adv = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    got = omega_estimate(lp, lp, entropy, adv, lr=0.1, eps_low=0.2, eps_high=0.2)
    # -eta * A r (1 - p)^2 (log p + H), r = 1
    expected = [-0.1 * 1 * 0.25 * (math.log(0.5) + 0.8), -0.1 * -1 * 0.5625 * (math.log(0.25) + 1.2)]
    assert got[0].tolist() == pytest.approx(expected)
    # a ratio above 1 + eps_high with A > 0 has no gradient: the estimate is 0
    assert omega_estimate(lp + 0.5, lp, entropy, adv, lr=0.1, eps_low=0.2, eps_high=0.2)[0, 0] == 0.0
    ratio = torch.tensor([0.5, 0.5, 1.5])
    indicator = clip_indicator(ratio.log(), torch.zeros(3), torch.tensor([-1.0, 1.0, 1.0]), 0.2, 0.2)
    assert indicator.tolist() == [0, 1, 0]
    mask = torch.ones_like(adv)
    # means: A 0, log p (log .5 + log .25) / 2; estimate -(A - 0)(log p - mean)
    mean_lp = (math.log(0.5) + math.log(0.25)) / 2
    assert cov_estimate(lp, adv, mask)[0].tolist() == pytest.approx(
        [-(math.log(0.5) - mean_lp), (math.log(0.25) - mean_lp)]
    )


def test_summarise_reports_both_estimates_and_the_no_change_floor():
    from openrlhf_steer.apps.demo.entropy_change import summarise

    rows = [
        {"step": 0, "omega": [0.1, 0.0], "cov": [1.0, -1.0], "true": [0.2, -0.1]},
        {"step": 1, "omega": [0.3], "cov": [0.5], "true": [0.1]},
    ]
    got = summarise(rows)
    assert got["tokens"] == 3 and got["steps"] == 2
    assert got["zero"]["MSE"] == pytest.approx((0.04 + 0.01 + 0.01) / 3)
    assert got["omega"]["MSE"] == pytest.approx((0.01 + 0.01 + 0.04) / 3)
    assert got["cov"]["MSE"] == pytest.approx((0.64 + 0.81 + 0.16) / 3)


def test_agreement_raw_has_no_fitted_scale():
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.1, 5.9, 8.0]
    got = agreement_raw(x, y)
    assert got["MSE"] == pytest.approx(np.mean((np.array(x) - np.array(y)) ** 2))  # 2x off: a large raw MSE
    assert got["PCC"] == pytest.approx(np.corrcoef(x, y)[0, 1]) and got["SRCC"] == pytest.approx(1.0)


def test_split_task_accepts_every_decomposition():
    task = get_task("split")
    assert task.question((4, 9)) == "13=" and task.target((4, 9)) == "4+9"
    assert task.reward((4, 9), "9+4") == 1.0 and task.reward((4, 9), "6+7") == 1.0
    assert (
        task.reward((4, 9), "5+9") == 0.0 and task.reward((4, 9), "13") == 0.0 and task.reward((4, 9), "4+9+0") == 0.0
    )
    assert task.answer_key((4, 9), "6+7") == "6+7" and task.answer_key((4, 9), "6+8") is None
    assert (
        task.correct_answers((4, 9)) == 6 and task.correct_answers((0, 0)) == 1 and task.correct_answers((4, 5)) == 10
    )
    pool, prompts = task.split(seed=0, num_heldout=0)
    assert sorted(p[0] + p[1] for p in prompts) == list(range(19))
    assert set(pool) == {(a, b) for a in range(10) for b in range(10)}
    # the pool prefers small first digits: (0, b) 16 times, (1, b) ceil(16 * 0.6) = 10 times, (9, b) once
    assert pool.count((0, 5)) == 16 and pool.count((1, 5)) == 10 and pool.count((9, 5)) == 1
