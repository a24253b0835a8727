"""The decision rules of SPEC §7 as pure functions of seed-level numbers.

Each rule returns ``(supported, values)``: whether the pre-registered criterion holds, and every
number behind that answer (for the report and the failure message). They know nothing about
claims, tables or profiles, and are unit-tested on both sides of every threshold.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from kag.stats import at_least, exceeds, lower_bound, mean_std, spearman


def seed_summary(values: Sequence[float]) -> dict[str, Any]:
    mean, std = mean_std(values)
    return {"seeds": [float(v) for v in values], "mean": mean, "std": std, "lower_bound": lower_bound(values)}


def rule_lower_bound_above(values: Sequence[float], threshold: float) -> tuple[bool, dict[str, Any]]:
    """Supported iff mean - 2 std over seeds > threshold."""
    s = seed_summary(values)
    return exceeds(s["lower_bound"], threshold), {**s, "threshold": threshold}


def rule_rho_at_least(x: Sequence[float], y: Sequence[float], threshold: float) -> tuple[bool, dict[str, Any]]:
    rho = spearman(x, y)
    return at_least(rho, threshold), {"x": [float(v) for v in x], "y": [float(v) for v in y], "rho": rho, "threshold": threshold}


def rule_scale_agnostic(per_condition: Mapping[str, Sequence[float]], min_lb: float, max_spread: float) -> tuple[bool, dict]:
    """C5: every condition's lower bound > min_lb, and max/min of the condition means <= max_spread."""
    summaries = {c: seed_summary(v) for c, v in per_condition.items()}
    means = np.array([s["mean"] for s in summaries.values()])
    spread = float(means.max() / means.min()) if means.min() > 0 else float("inf")
    all_above = all(exceeds(s["lower_bound"], min_lb) for s in summaries.values())
    ok = all_above and np.isfinite(spread) and spread <= max_spread
    return bool(ok), {"conditions": summaries, "spread": spread, "min_lower_bound": min_lb, "max_spread": max_spread}


def rule_all_above(per_condition: Mapping[str, Sequence[float]], min_lb: float) -> tuple[bool, dict]:
    """C6: every condition's lower bound > min_lb."""
    summaries = {c: seed_summary(v) for c, v in per_condition.items()}
    ok = all(exceeds(s["lower_bound"], min_lb) for s in summaries.values())
    return ok, {"conditions": summaries, "min_lower_bound": min_lb}


def rule_persists(near: Sequence[float], far: Sequence[float], min_lb: float, max_change: float) -> tuple[bool, dict]:
    """C7: far lower bound > min_lb and |mean(far)/mean(near) - 1| <= max_change."""
    s_near, s_far = seed_summary(near), seed_summary(far)
    change = s_far["mean"] / s_near["mean"] - 1.0 if s_near["mean"] else float("inf")
    ok = exceeds(s_far["lower_bound"], min_lb) and bool(np.isfinite(change)) and abs(change) <= max_change
    return ok, {"near": s_near, "far": s_far, "relative_change": change, "min_lower_bound": min_lb,
                "max_relative_change": max_change}


def rule_reduction(standard: Mapping[str, Sequence[float]], augmented: Mapping[str, Sequence[float]],
                   lo: float, hi: float, min_lb: float) -> tuple[bool, dict]:
    """C8: 1 - mean(aug)/mean(std) in [lo, hi] (means over conditions and seeds), aug lower bounds > min_lb."""
    mean_std_ = float(np.mean([np.mean(v) for v in standard.values()]))
    mean_aug = float(np.mean([np.mean(v) for v in augmented.values()]))
    reduction = 1.0 - mean_aug / mean_std_ if mean_std_ else float("nan")
    aug = {c: seed_summary(v) for c, v in augmented.items()}
    aug_above = all(exceeds(s["lower_bound"], min_lb) for s in aug.values())
    ok = bool(np.isfinite(reduction)) and lo <= reduction <= hi and aug_above
    return ok, {"mean_standard": mean_std_, "mean_augmented": mean_aug, "reduction": reduction, "range": [lo, hi],
                "augmented_conditions": aug, "augmented_all_above": aug_above, "min_lower_bound": min_lb}


def rule_mean_at_least(values: Sequence[float], threshold: float) -> tuple[bool, dict[str, Any]]:
    s = seed_summary(values)
    return at_least(s["mean"], threshold), {**s, "threshold": threshold}
