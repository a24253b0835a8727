"""The decision rules of SPEC §7 as pure functions of seed-level numbers, with three-way verdicts.

Each rule returns ``(verdict, values)``: the verdict word and every number behind it (for the
report and the failure message). A cell is

* ``"supported"`` when the pre-registered rule passes;
* ``"contradicted"`` when its mirror passes: the error bars (mean ± 2 std over seeds, ddof 1) lie
  wholly on the other side of the threshold (for a ρ criterion: ρ ≤ −threshold; for an interval
  criterion: the interval lies wholly outside it); a compound rule is contradicted when any one
  of its parts is;
* ``"inconclusive"`` otherwise. A NaN is never supported and never contradicted.

The rules know nothing about claims, tables or profiles, and are unit-tested on both sides of
every threshold and in the inconclusive middle.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from kag.repro.stats import at_least, exceeds, mean_std, spearman, spearman_rows

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
INVALID = "invalid"  # a control's cell whose inputs are NaN, Inf or constant over seeds (see degeneracies)
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, INVALID)


def verdict_of(supported: bool, contradicted: bool) -> str:
    """The verdict word; a rule must never be both (its mirror is disjoint from it)."""
    if supported and contradicted:
        raise ValueError("a cell cannot be both supported and contradicted: the rule and its mirror overlap")
    return SUPPORTED if supported else CONTRADICTED if contradicted else INCONCLUSIVE


def _below_or_at(value: float, threshold: float) -> bool:
    """``value <= threshold``, False for NaN (an undefined number never contradicts a claim)."""
    return bool(not math.isnan(value) and value <= threshold)


def _below(value: float, threshold: float) -> bool:
    """``value < threshold``, False for NaN."""
    return bool(not math.isnan(value) and value < threshold)


def error_sd(std: float, measurement_se: float | None) -> float:
    """The SD behind a cell's error bars: the larger of the seed SD and the cell's measurement SE
    (docs/SPEC.md §7). A seed SD below one seed's measurement error is luck, not precision. A NaN
    SE (not measured) leaves the seed SD; a NaN seed SD (one seed) stays NaN: no verdict."""
    if measurement_se is None or not math.isfinite(measurement_se) or math.isnan(std):
        return std
    return max(std, float(measurement_se))


def seed_summary(values: Sequence[float], measurement_se: float | None = None) -> dict[str, Any]:
    """Seeds, mean, std (ddof 1), the measurement SE when known, and the error bars mean ∓ 2 error
    SD, the error SD being the larger of the seed SD and the measurement SE (:func:`error_sd`)."""
    mean, std = mean_std(values)
    s = {"seeds": [float(v) for v in values], "mean": mean, "std": std}
    if measurement_se is not None:
        s["measurement_se"] = float(measurement_se)
    sd = error_sd(std, measurement_se)
    s["error_sd"] = sd
    return s | {"lower_bound": mean - 2.0 * sd, "upper_bound": mean + 2.0 * sd}


def measurement_se(per_seed_se: Sequence[float]) -> float:
    """A cell's measurement SE, on the scale of one seed's value: the mean of the per-seed SEs.

    Shown beside the seed SD, which it is compared with (SE/SD): each seed is measured on its own
    images and index samples (SPEC §9), so the seed SD already contains this error, and an SE near
    the SD says the cell's spread is mostly measurement, not seeds."""
    se = np.asarray(per_seed_se, dtype=np.float64)
    return float(se.mean())


def rho_measurement_se(x: Sequence[float], y: Sequence[float], y_se: Sequence[float], draws: int = 1000,
                       seed: int = 0) -> float:
    """SD of Spearman ρ(x, y) when each y is redrawn from a normal with its measurement SE ``y_se``.

    A parametric bootstrap: how much ρ would move under measurement noise alone. NaN when an SE is
    not finite; draws whose ρ is undefined are left out."""
    y, y_se = np.asarray(y, dtype=np.float64), np.asarray(y_se, dtype=np.float64)
    if y.shape != y_se.shape or not np.isfinite(y_se).all() or not np.isfinite(y).all():
        return math.nan
    noisy = y + np.random.default_rng(seed).standard_normal((draws, y.size)) * y_se
    rhos = spearman_rows(x, noisy)
    rhos = rhos[np.isfinite(rhos)]
    return float(rhos.std(ddof=1)) if rhos.size > 1 else math.nan


def difference_se(se_a: Sequence[float], se_b: Sequence[float]) -> list[float]:
    """Per-seed SE of a - b for independent measurement errors: sqrt(se_a² + se_b²)."""
    return [float(math.hypot(a, b)) for a, b in zip(se_a, se_b)]


# -- single-threshold rules -----------------------------------------------------------------------
def rule_lower_bound_above(values: Sequence[float], threshold: float, measurement_se: float | None = None
                           ) -> tuple[str, dict[str, Any]]:
    """Supported iff mean - 2 std > threshold; contradicted iff mean + 2 std <= threshold."""
    s = seed_summary(values, measurement_se)
    verdict = verdict_of(exceeds(s["lower_bound"], threshold), _below_or_at(s["upper_bound"], threshold))
    return verdict, {**s, "threshold": threshold}


def rule_rho_at_least(x: Sequence[float], y: Sequence[float], threshold: float,
                      measurement_se: float | None = None) -> tuple[str, dict[str, Any]]:
    """Supported iff Spearman ρ >= threshold; contradicted iff ρ <= -threshold; NaN ρ is inconclusive."""
    rho = spearman(x, y)
    return _rho_verdict(x, y, rho, at_least(rho, threshold), _below_or_at(rho, -threshold), threshold, measurement_se)


def rule_rho_at_most(x: Sequence[float], y: Sequence[float], threshold: float,
                     measurement_se: float | None = None) -> tuple[str, dict[str, Any]]:
    """Supported iff Spearman ρ <= threshold (a negative one: y falls with x); contradicted iff
    ρ >= -threshold; NaN ρ is inconclusive."""
    rho = spearman(x, y)
    return _rho_verdict(x, y, rho, at_least(-rho, -threshold), _below_or_at(-rho, threshold), threshold,
                        measurement_se)


def _rho_verdict(x: Sequence[float], y: Sequence[float], rho: float, supported: bool, contradicted: bool,
                 threshold: float, measurement_se: float | None) -> tuple[str, dict[str, Any]]:
    values = {"x": [float(v) for v in x], "y": [float(v) for v in y], "rho": rho}
    if measurement_se is not None:
        values["measurement_se"] = float(measurement_se)
    return verdict_of(supported, contradicted), values | {"threshold": threshold}


def rule_mean_at_least(values: Sequence[float], threshold: float, measurement_se: float | None = None
                       ) -> tuple[str, dict[str, Any]]:
    """Supported iff mean >= threshold; contradicted iff mean + 2 std < threshold."""
    s = seed_summary(values, measurement_se)
    verdict = verdict_of(at_least(s["mean"], threshold), _below(s["upper_bound"], threshold))
    return verdict, {**s, "threshold": threshold}


# -- compound rules (C5-C8) -----------------------------------------------------------------------
def _summaries(per_condition: Mapping[str, Sequence[float]], se: Mapping[str, float] | None = None
               ) -> dict[str, dict[str, Any]]:
    se = se or {}
    return {c: seed_summary(v, se.get(c)) for c, v in per_condition.items()}


def _lower_bounds_verdicts(summaries: Mapping[str, Mapping[str, Any]], min_lb: float) -> tuple[bool, bool]:
    """(every lower bound > min_lb, some upper bound <= min_lb)."""
    return (all(exceeds(s["lower_bound"], min_lb) for s in summaries.values()),
            any(_below_or_at(s["upper_bound"], min_lb) for s in summaries.values()))


def rule_scale_agnostic(per_condition: Mapping[str, Sequence[float]], min_lb: float, max_spread: float,
                        se: Mapping[str, float] | None = None) -> tuple[str, dict]:
    """C5: every condition's lower bound > min_lb, and max/min of the condition means <= max_spread.

    Contradicted when some condition's upper bound <= min_lb, or when even the smallest spread
    consistent with the error bars, max(lower bounds) / min(upper bounds), exceeds max_spread.
    """
    summaries = _summaries(per_condition, se)
    means = np.array([s["mean"] for s in summaries.values()])
    spread = float(means.max() / means.min()) if means.min() > 0 else float("inf")
    all_above, some_below = _lower_bounds_verdicts(summaries, min_lb)
    max_lb = max(s["lower_bound"] for s in summaries.values())
    min_ub = min(s["upper_bound"] for s in summaries.values())
    min_spread = max(1.0, max_lb / min_ub) if min_ub > 0 else float("nan")
    supported = all_above and bool(np.isfinite(spread)) and spread <= max_spread
    contradicted = some_below or exceeds(min_spread, max_spread)
    return verdict_of(supported, contradicted), {"conditions": summaries, "spread": spread, "min_spread": min_spread,
                                                 "min_lower_bound": min_lb, "max_spread": max_spread}


def rule_all_above(per_condition: Mapping[str, Sequence[float]], min_lb: float,
                   se: Mapping[str, float] | None = None) -> tuple[str, dict]:
    """C6: every condition's lower bound > min_lb; contradicted when some upper bound <= min_lb."""
    summaries = _summaries(per_condition, se)
    return verdict_of(*_lower_bounds_verdicts(summaries, min_lb)), {"conditions": summaries, "min_lower_bound": min_lb}


def rule_persists(near: Sequence[float], far: Sequence[float], min_lb: float, max_change: float,
                  se_near: float | None = None, se_far: float | None = None, change_se: float | None = None
                  ) -> tuple[str, dict]:
    """C7: far lower bound > min_lb and |mean(far)/mean(near) - 1| <= max_change.

    Contradicted when far's upper bound <= min_lb, or when the interval of the seed-paired changes
    (far_i/near_i - 1 per seed; mean ± 2 error SD, the error SD floored at ``change_se``, their
    measurement SE from paired bootstrap replicates) lies wholly outside ±max_change.
    """
    s_near, s_far = seed_summary(near, se_near), seed_summary(far, se_far)
    change = s_far["mean"] / s_near["mean"] - 1.0 if s_near["mean"] else float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        seed_changes = (np.asarray(far, dtype=np.float64) / np.asarray(near, dtype=np.float64) - 1.0).tolist()
    s_change = seed_summary(seed_changes, change_se)
    change_interval = [s_change["lower_bound"], s_change["upper_bound"]]
    supported = exceeds(s_far["lower_bound"], min_lb) and bool(np.isfinite(change)) and abs(change) <= max_change
    contradicted = (_below_or_at(s_far["upper_bound"], min_lb) or exceeds(change_interval[0], max_change)
                    or _below(change_interval[1], -max_change))
    contradicted = contradicted and not supported  # the point change may sit inside the band, its interval not
    return verdict_of(supported, contradicted), {
        "near": s_near, "far": s_far, "relative_change": change, "change": s_change,
        "change_interval": change_interval, "min_lower_bound": min_lb, "max_relative_change": max_change}


def rule_reduction(standard: Mapping[str, Sequence[float]], augmented: Mapping[str, Sequence[float]],
                   lo: float, hi: float, min_lb: float, se: Mapping[str, float] | None = None,
                   reduction_se: float | None = None) -> tuple[str, dict]:
    """C8: 1 - mean(aug)/mean(std) in [lo, hi] (means over conditions and seeds), aug lower bounds > min_lb.

    Contradicted when some augmented upper bound <= min_lb, or when the interval of the per-seed
    reductions (standard seed i paired with augmented seed i; mean ± 2 std over seeds) lies wholly
    outside [lo, hi]. ``se``: measurement SEs of the augmented conditions, when known;
    ``reduction_se``: the per-seed reduction's measurement SE (paired bootstrap), which floors the
    SD of its interval.
    """
    mean_std_ = float(np.mean([np.mean(v) for v in standard.values()]))
    mean_aug = float(np.mean([np.mean(v) for v in augmented.values()]))
    reduction = 1.0 - mean_aug / mean_std_ if mean_std_ else float("nan")
    per_seed_std = np.mean([np.asarray(v, dtype=np.float64) for v in standard.values()], axis=0)
    per_seed_aug = np.mean([np.asarray(v, dtype=np.float64) for v in augmented.values()], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        seed_reductions = (1.0 - per_seed_aug / per_seed_std).tolist()
    s_red = seed_summary(seed_reductions, reduction_se)
    interval = [s_red["lower_bound"], s_red["upper_bound"]]
    aug = _summaries(augmented, se)
    aug_above, aug_below = _lower_bounds_verdicts(aug, min_lb)
    supported = bool(np.isfinite(reduction)) and lo <= reduction <= hi and aug_above
    # The point estimate is a weighted mean of the per-seed reductions, so with at most 5 seeds it
    # lies inside their interval and the two cannot disagree; beyond that, supported wins.
    contradicted = not supported and (aug_below or _below(interval[1], lo) or exceeds(interval[0], hi))
    return verdict_of(supported, contradicted), {
        "mean_standard": mean_std_, "mean_augmented": mean_aug, "reduction": reduction, "range": [lo, hi],
        "seed_reductions": seed_reductions, "reduction_summary": s_red, "reduction_interval": interval, "augmented_conditions": aug,
        "augmented_all_above": aug_above, "min_lower_bound": min_lb}


# -- controls ---------------------------------------------------------------------------------------
def degeneracies(inputs: Mapping[str, Sequence[float]], seeds: Sequence[int] | None = None, *,
                 finite: bool = True, varying: bool = True) -> list[str]:
    """Why a control's inputs cannot be judged, one line each (empty when they can): a NaN or Inf
    value, naming the seed (``finite``), or a zero standard deviation over seeds (``varying``). A
    control judged on such numbers could say "no" for the wrong reason."""
    problems = []
    for name, values in inputs.items():
        arr = np.asarray(values, dtype=np.float64)
        ids = list(seeds) if seeds is not None and len(seeds) == arr.size else list(range(arr.size))
        for label, bad in (("NaN", np.isnan(arr)), ("Inf", np.isinf(arr))):
            if finite and bad.any():
                problems.append(f"{label} in {name} at seed {', '.join(str(ids[i]) for i in np.flatnonzero(bad))}")
        # zero up to rounding: a difference of equal values over seeds can carry 1e-16 of noise
        if varying and arr.size > 1 and np.isfinite(arr).all() and arr.std(ddof=1) <= 1e-12 * max(1.0, abs(arr.mean())):
            problems.append(f"zero standard deviation over seeds in {name} (every seed {arr[0]:.4g})")
    return problems


def control_verdict(verdicts: Sequence[str], problems: Sequence[str]) -> str:
    """A control cell judged by several rules: invalid when any input is degenerate, supported (the
    control shows the effect) when any rule is, contradicted when every rule is, else inconclusive."""
    if problems:
        return INVALID
    if SUPPORTED in verdicts:
        return SUPPORTED
    return CONTRADICTED if verdicts and all(v == CONTRADICTED for v in verdicts) else INCONCLUSIVE
