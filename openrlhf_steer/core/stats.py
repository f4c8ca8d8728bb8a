"""Statistics shared by the demo, its claims and the reproduction tables (pure functions, numpy/scipy).

* ``standard_error``: sample standard deviation (ddof 1) over sqrt(n), the error of a mean over seeds.
* ``spearman``: scipy's Spearman rho (average ranks for ties), None where it is undefined.
* ``agreement`` / ``scaled_agreement``: how well an estimate of the per-token entropy change matches the
  measured change (STEER Figure 2's MSE / PCC / SRCC, and the demo analysis' superset).
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy import stats as sps


def standard_error(values, axis: int = 0):
    """std(values, ddof=1) / sqrt(n) along ``axis`` (n = the length of that axis; needs n >= 2)."""
    array = np.asarray(values, dtype=np.float64)
    n = array.shape[axis]
    if n < 2:
        raise ValueError(f"a standard error needs >= 2 values along axis {axis}, got {n}")
    return array.std(axis=axis, ddof=1) / np.sqrt(n)


def paired_values(estimate: Sequence[float], truth: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """The two sides as float64 arrays; >= 3 pairs of equal shape, else a ValueError."""
    x = np.asarray(estimate, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"need >= 3 paired values, got {x.size} estimates and {y.size} measurements")
    return x, y


def _constant(values: np.ndarray) -> bool:
    return bool(np.ptp(values) == 0)  # exact: a constant side has no correlation


def pearson_spearman(x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """(Pearson r, Spearman rho) of validated pairs; NaN for both when a side is constant."""
    if _constant(x) or _constant(y):
        return math.nan, math.nan
    return float(sps.pearsonr(x, y)[0]), float(sps.spearmanr(x, y)[0])


def spearman(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Spearman's rho (scipy; tied values share their average rank); None for < 3 points or a constant side."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs paired values, got {len(x)} and {len(y)}")
    if len(x) < 3:
        return None
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if _constant(xs) or _constant(ys):
        return None
    return float(sps.spearmanr(xs, ys)[0])


def agreement(estimate: Sequence[float], truth: Sequence[float]) -> Dict[str, float]:
    """STEER Figure 2's columns: MSE, Pearson (PCC) and Spearman (SRCC) of a raw estimate against the
    measured change, and the number of pairs ``n``."""
    x, y = paired_values(estimate, truth)
    pcc, srcc = pearson_spearman(x, y)
    return {"MSE": float(np.mean((x - y) ** 2)), "PCC": pcc, "SRCC": srcc, "n": int(x.size)}


def scaled_agreement(estimate: Sequence[float], truth: Sequence[float]) -> Dict[str, float]:
    """Pearson, Spearman, sign agreement, raw MSE, and the MSE after the best single scale factor.

    The scale-fitted MSE ``min_c mean((truth - c * estimate)^2)`` makes estimators with different
    units comparable: a first-order formula predicts the entropy change only up to the (unknown)
    network kernel's scale, so what matters is how much of the variation it explains.
    """
    x, y = paired_values(estimate, truth)
    out: Dict[str, float] = {"n": float(x.size), "mse": float(np.mean((x - y) ** 2))}
    denom = float(np.dot(x, x))
    scale = float(np.dot(x, y) / denom) if denom > 0 else 0.0
    out["scale_fit"] = scale
    out["mse_scaled"] = float(np.mean((y - scale * x) ** 2))
    out["mse_baseline_zero"] = float(np.mean(y**2))  # predicting no change at all
    out["pearson"], out["spearman"] = pearson_spearman(x, y)
    nonzero = (x != 0) & (y != 0)
    out["sign_agreement"] = float(np.mean(np.sign(x[nonzero]) == np.sign(y[nonzero]))) if nonzero.any() else math.nan
    return out
