"""Agreement statistics between an estimate and a measured value (pure functions)."""

from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np
from scipy import stats as sps


def agreement(estimate: Sequence[float], truth: Sequence[float]) -> Dict[str, float]:
    """Pearson, Spearman, sign agreement, raw MSE, and the MSE after the best single scale factor.

    The scale-fitted MSE ``min_c mean((truth - c * estimate)^2)`` makes estimators with different
    units comparable: a first-order formula predicts the entropy change only up to the (unknown)
    network kernel's scale, so what matters is how much of the variation it explains.
    """
    x = np.asarray(estimate, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"need >= 3 paired values, got {x.size} estimates and {y.size} measurements")
    out: Dict[str, float] = {"n": float(x.size), "mse": float(np.mean((x - y) ** 2))}
    denom = float(np.dot(x, x))
    scale = float(np.dot(x, y) / denom) if denom > 0 else 0.0
    out["scale_fit"] = scale
    out["mse_scaled"] = float(np.mean((y - scale * x) ** 2))
    out["mse_baseline_zero"] = float(np.mean(y**2))  # predicting no change at all
    constant = np.std(x) == 0 or np.std(y) == 0
    out["pearson"] = math.nan if constant else float(sps.pearsonr(x, y)[0])
    out["spearman"] = math.nan if constant else float(sps.spearmanr(x, y)[0])
    nonzero = (x != 0) & (y != 0)
    out["sign_agreement"] = float(np.mean(np.sign(x[nonzero]) == np.sign(y[nonzero]))) if nonzero.any() else math.nan
    return out
