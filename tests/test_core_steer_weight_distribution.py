"""Issue 22: STEER logs its weight distribution per loss call (median, 10th percentile, share below 0.95),
computed on the device without host reads, checked against hand-computed values and torch.quantile."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from steertest_loss_batch import LOSS_CONFIG, count_host_syncs  # noqa: E402

from openrlhf_steer.core.loss import PolicyLoss  # noqa: E402
from openrlhf_steer.core.metrics import MetricWindow  # noqa: E402
from openrlhf_steer.core.types import LossConfig, LossInputs  # noqa: E402
from openrlhf_steer.methods import build_method  # noqa: E402
from openrlhf_steer.methods.steer import masked_linear_quantiles, weight_distribution  # noqa: E402

D = torch.float64
KEYS = ("method/weight_median", "method/weight_p10", "method/weight_frac_below_0.95")


def test_hand_built_weights_with_padding_that_must_not_count():
    # valid weights 1 1 0.7 0.7 1 -> sorted 0.7 0.7 1 1 1: median 1; p10 at rank 0.4 between 0.7 and 0.7;
    # 2 of 5 below 0.95. The padded positions hold 0.1 and 5.0, which would move every statistic.
    weights = torch.tensor([[1.0, 1.0, 0.7, 0.1], [0.7, 1.0, 5.0, 0.1]], dtype=D)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    with count_host_syncs() as calls:
        stats = weight_distribution(weights, mask)
    assert calls == []
    assert {k: float(v) for k, v in stats.items()} == pytest.approx(
        {"weight_median": 1.0, "weight_p10": 0.7, "weight_frac_below_0.95": 0.4}, abs=1e-12
    )


def test_interpolates_between_order_statistics_like_torch_quantile():
    # valid 0.6 0.8 0.9 1.0: median at rank 1.5 -> 0.85; p10 at rank 0.3 -> 0.6 + 0.3 * 0.2 = 0.66
    weights = torch.tensor([[1.0, 0.6, 0.9, 0.8, 0.0]], dtype=D)
    mask = torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool)
    stats = weight_distribution(weights, mask)
    assert float(stats["weight_median"]) == pytest.approx(0.85, abs=1e-12)
    assert float(stats["weight_p10"]) == pytest.approx(0.66, abs=1e-12)
    assert float(stats["weight_frac_below_0.95"]) == pytest.approx(0.75, abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_random_batches_equal_torch_quantile(seed):
    g = torch.Generator().manual_seed(seed)
    rows, width = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 12, (1,), generator=g))
    values = torch.rand(rows, width, generator=g, dtype=D) * 1.4
    mask = torch.rand(rows, width, generator=g) > 0.4
    mask.view(-1)[int(torch.randint(0, rows * width, (1,), generator=g))] = True  # at least one valid token
    qs = torch.rand(5, generator=g, dtype=D).tolist() + [0.0, 1.0]
    expected = torch.quantile(values[mask], torch.tensor(qs, dtype=D))
    assert torch.allclose(masked_linear_quantiles(values, mask, qs), expected, rtol=0, atol=1e-12)
    stats = weight_distribution(values, mask)
    assert float(stats["weight_median"]) == pytest.approx(float(torch.quantile(values[mask], 0.5)), abs=1e-12)
    assert float(stats["weight_p10"]) == pytest.approx(float(torch.quantile(values[mask], 0.1)), abs=1e-12)
    assert float(stats["weight_frac_below_0.95"]) == pytest.approx(float((values[mask] < 0.95).double().mean()))


def test_no_valid_token_gives_neutral_finite_values():
    weights = torch.rand(2, 3, dtype=D)
    stats = weight_distribution(weights, torch.zeros(2, 3, dtype=torch.bool))
    assert {k: float(v) for k, v in stats.items()} == {
        "weight_median": 1.0,
        "weight_p10": 1.0,
        "weight_frac_below_0.95": 0.0,
    }
    assert torch.isnan(masked_linear_quantiles(weights, torch.zeros(2, 3, dtype=torch.bool), [0.5])).all()


def _binary_batch(advantage_sign: float = 1.0) -> LossInputs:
    # ten valid tokens with distinct |Omega| (probabilities differ, A = +-1), one padded token
    p = torch.tensor([[0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]], dtype=D)
    mask = torch.ones_like(p)
    mask[0, -1] = 0
    return LossInputs(
        log_probs=p.log().requires_grad_(),
        old_log_probs=p.log(),
        advantages=torch.full_like(p, advantage_sign),
        action_mask=mask,
        entropy=torch.full_like(p, 1.5),
        old_entropy=torch.full_like(p, 1.5),
    )


def test_the_loss_logs_the_binary_mappings_distribution_by_hand():
    # the top 20% of 10 tokens by |Omega| (2) get lambda_min 0.7, the other 8 get 1: sorted 0.7 0.7 1 x 8;
    # median 1, p10 at rank 0.9 between 0.7 and 0.7, share below 0.95 = 2/10
    loss_fn = PolicyLoss(LossConfig(**LOSS_CONFIG), build_method("steer", {"mapping": "binary", "lambda_min": 0.7}))
    _, metrics = loss_fn(_binary_batch())
    assert {k: metrics[k] for k in KEYS} == pytest.approx(
        {"method/weight_median": 1.0, "method/weight_p10": 0.7, "method/weight_frac_below_0.95": 0.2}, abs=1e-12
    )


@pytest.mark.parametrize(
    "options", [{}, {"mapping": "linear", "lambda_max": 1.2}, {"entropy_control_mode": "asymmetric"}], ids=str
)
def test_the_loss_logs_torch_quantile_of_the_methods_weights(options):
    g = torch.Generator().manual_seed(3)
    old = -torch.rand(4, 7, generator=g, dtype=D) * 3 - 1e-3
    mask = torch.rand(4, 7, generator=g) > 0.3
    mask[:, 0] = True
    inputs = LossInputs(
        log_probs=(old + 0.2 * torch.randn(4, 7, generator=g, dtype=D)).clamp(max=-1e-4).requires_grad_(),
        old_log_probs=old,
        advantages=torch.randn(4, 1, generator=g, dtype=D).expand(4, 7).clone(),
        action_mask=mask,
        entropy=torch.rand(4, 7, generator=g, dtype=D) * 2,
        old_entropy=torch.rand(4, 7, generator=g, dtype=D) * 2,
    )
    method = build_method("steer", options)
    with torch.no_grad():
        valid = build_method("steer", options).token_weights(inputs)[mask]
    _, metrics = PolicyLoss(LossConfig(**LOSS_CONFIG), method)(inputs)
    assert metrics["method/weight_median"] == pytest.approx(float(torch.quantile(valid, 0.5)), abs=1e-12)
    assert metrics["method/weight_p10"] == pytest.approx(float(torch.quantile(valid, 0.1)), abs=1e-12)
    assert metrics["method/weight_frac_below_0.95"] == pytest.approx(float((valid < 0.95).double().mean()))


def test_a_window_logs_the_token_weighted_mean_of_its_micro_batches():
    """The documented window value: token-weighted mean of per-micro-batch values (exact for the share,
    a mean of per-micro-batch quantiles for the median and p10)."""
    window = MetricWindow()
    first = {"method/weight_median": 1.0, "method/weight_p10": 0.7, "method/weight_frac_below_0.95": 0.2}
    second = {"method/weight_median": 0.8, "method/weight_p10": 0.6, "method/weight_frac_below_0.95": 1.0}
    window.add(first, 10.0)
    window.add(second, 30.0)
    reduced = window.reduce()
    assert reduced["method/weight_median"] == pytest.approx(0.25 * 1.0 + 0.75 * 0.8)
    assert reduced["method/weight_p10"] == pytest.approx(0.25 * 0.7 + 0.75 * 0.6)
    assert reduced["method/weight_frac_below_0.95"] == pytest.approx((2 + 30) / 40)
