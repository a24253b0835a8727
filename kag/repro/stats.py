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
    # rounded: a rank correlation of a few points takes exact values (four points: 0.8 after one
    # adjacent swap), which float arithmetic returns as 0.7999999999999999; a rule "rho >= 0.8" must see 0.8
    return round(float(stats.spearmanr(x, y).statistic), 12)


def spearman_rows(x: Sequence[float], ys: np.ndarray) -> np.ndarray:
    """:func:`spearman` of ``x`` against every row of ``ys [draws, len(x)]`` at once (average ranks for
    ties, as scipy); NaN for a row where it is undefined."""
    x = np.asarray(x, dtype=np.float64)
    ys = np.atleast_2d(np.asarray(ys, dtype=np.float64))
    if ys.shape[1] != x.size:
        raise ValueError(f"x has {x.size} values but the rows of ys have {ys.shape[1]}: they must match")
    out = np.full(ys.shape[0], math.nan)
    if x.size < 2 or not np.isfinite(x).all() or np.ptp(x) == 0:
        return out
    ok = np.isfinite(ys).all(axis=1)
    ok[ok] = np.ptp(ys[ok], axis=1) > 0
    rx = stats.rankdata(x)
    rx -= rx.mean()
    ry = stats.rankdata(ys[ok], axis=1)
    ry -= ry.mean(axis=1, keepdims=True)
    # elementwise sums, not a matrix product: identical rows give identical values (no BLAS blocking)
    # and one square root of the product, so that identical ranks give exactly 1
    out[ok] = np.clip((ry * rx).sum(axis=1) / np.sqrt((ry * ry).sum(axis=1) * float((rx * rx).sum())), -1.0, 1.0)
    return np.round(out, 12)  # as spearman: exact values stay exact


def exceeds(value: float, threshold: float) -> bool:
    """``value > threshold``, False for NaN (an undefined number never supports a claim)."""
    return bool(np.isfinite(value) and value > threshold)


def at_least(value: float, threshold: float) -> bool:
    """``value >= threshold``, False for NaN."""
    return bool(np.isfinite(value) and value >= threshold)
