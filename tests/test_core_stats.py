"""core.stats: the one standard error, Spearman and agreement statistics, against scipy and hand values."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from openrlhf_steer.core import stats


def test_standard_error_hand_computed():
    # [1, 2, 3]: mean 2, sample variance (1 + 0 + 1) / 2 = 1 -> SE 1 / sqrt(3)
    assert stats.standard_error([1.0, 2.0, 3.0]) == pytest.approx(1.0 / math.sqrt(3.0))
    # per column (seeds x steps): column 0 [0, 2] -> sd sqrt(2), SE 1; column 1 constant -> 0
    assert stats.standard_error(np.array([[0.0, 5.0], [2.0, 5.0]]), axis=0).tolist() == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match=">= 2 values"):
        stats.standard_error([1.0])


@pytest.mark.parametrize(
    "x, y",
    [
        ([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]),
        ([1, 2, 3, 4], [1, 1, 2, 3]),  # ties in y
        ([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]),  # ties on both sides
        ([0.5, 0.5, 0.5, 1.0], [1.0, 2.0, 2.0, 2.0]),
    ],
)
def test_spearman_equals_scipy_with_ties(x, y):
    assert stats.spearman(x, y) == pytest.approx(float(sps.spearmanr(x, y)[0]), abs=1e-15)


def test_spearman_ties_by_hand_and_undefined_cases():
    # ranks x [1, 2, 3, 4], y [1.5, 1.5, 3, 4]: sum dx dy = 4.5, sum dx^2 = 5, sum dy^2 = 4.5
    assert stats.spearman([1, 2, 3, 4], [1, 1, 2, 3]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert stats.spearman([1, 2], [1, 2]) is None
    assert stats.spearman([1, 2, 3], [5, 5, 5]) is None
    with pytest.raises(ValueError, match="paired"):
        stats.spearman([1, 2, 3], [1, 2])


def test_agreement_and_scaled_agreement_share_the_correlations():
    x, y = [0.0, 1.0, 2.0, 10.0], [0.0, 2.0, 1.0, 3.0]
    raw, scaled = stats.agreement(x, y), stats.scaled_agreement(x, y)
    assert raw["PCC"] == scaled["pearson"] == pytest.approx(14.5 / math.sqrt(313.75))
    assert raw["SRCC"] == scaled["spearman"] == pytest.approx(0.8)
    assert raw["MSE"] == scaled["mse"] == pytest.approx(12.75)
    constant = stats.agreement([1.0, 1.0, 1.0], [0.1, 0.2, 0.3])
    assert math.isnan(constant["PCC"]) and math.isnan(constant["SRCC"])
