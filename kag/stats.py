"""Seed-level statistics for the decision rules (SPEC §7): error bars and rank correlation."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"values of shape {arr.shape} are not allowed: expected a non-empty 1-D sequence")
    return arr


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value). NaN if any value is NaN."""
    arr = _finite(values)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std


def lower_bound(values: Sequence[float]) -> float:
    """The paper's error bar: mean - 2·std over seeds (ddof 1). NaN propagates (never "supported")."""
    mean, std = mean_std(values)
    return mean - 2.0 * std


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation; NaN when undefined (fewer than 2 points, constant input, NaN)."""
    x, y = _finite(x), _finite(y)
    if x.shape != y.shape:
        raise ValueError(f"x has {x.size} values but y has {y.size}: they must match")
    if x.size < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def exceeds(value: float, threshold: float) -> bool:
    """``value > threshold``, False for NaN (an undefined number never supports a claim)."""
    return bool(np.isfinite(value) and value > threshold)


def at_least(value: float, threshold: float) -> bool:
    """``value >= threshold``, False for NaN."""
    return bool(np.isfinite(value) and value >= threshold)
