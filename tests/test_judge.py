"""The decision rules on synthetic numbers, on both sides of every threshold (thresholds are read
from claims/criteria.py, never repeated here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from claims.criteria import BY_ID, CRITERIA, rule_text
from claims.judge import (
    cells,
    judge,
    rule_all_above,
    rule_lower_bound_above,
    rule_mean_at_least,
    rule_persists,
    rule_reduction,
    rule_rho_at_least,
    rule_scale_agnostic,
)
from kag.profiles import QUICK, SMOKE
from kag.stats import lower_bound, spearman

EPS = 1e-3


def seeds_with_lower_bound(lb: float, spread: float = 0.05) -> list[float]:
    """Three seed values whose mean - 2 std equals ``lb``."""
    base = np.array([-1.0, 0.0, 1.0]) * spread
    return list(base + lb + 2 * base.std(ddof=1))


def test_lower_bound_is_mean_minus_two_sample_std():
    assert lower_bound([1.0, 2.0, 3.0]) == pytest.approx(2.0 - 2 * 1.0)
    assert math.isnan(lower_bound([1.0, float("nan")]))


@pytest.mark.parametrize("cid", ["C1-PR", "C1-RR", "C1-KL", "C2", "C3", "C10"])
def test_lower_bound_rules_on_both_sides(cid):
    thr = BY_ID[cid].thresholds["min_lower_bound"]
    assert rule_lower_bound_above(seeds_with_lower_bound(thr + EPS), thr)[0]
    assert not rule_lower_bound_above(seeds_with_lower_bound(thr - EPS), thr)[0]
    assert not rule_lower_bound_above([float("nan")] * 3, thr)[0]  # undefined never supports


@pytest.mark.parametrize("cid", ["C4", "C11"])
def test_rank_correlation_rules_on_both_sides(cid):
    thr = BY_ID[cid].thresholds["min_rho"]
    x = [1, 2, 3, 4, 5, 6]
    assert rule_rho_at_least(x, [1, 2, 3, 4, 5, 6], thr)[0]  # rho = 1
    y_low = [2, 1, 4, 3, 6, 5]  # rho = 0.829
    y_lower = [3, 1, 2, 6, 4, 5]  # rho = 0.657
    assert spearman(x, y_low) == pytest.approx(0.8286, abs=1e-3)
    assert rule_rho_at_least(x, y_low, thr)[0] == (spearman(x, y_low) >= thr)
    assert not rule_rho_at_least(x, y_lower, thr)[0]
    assert not rule_rho_at_least(x, [1, 1, 1, 1, 1, 1], thr)[0]  # undefined rho


def test_scale_agnostic_rule_on_both_sides():
    t = BY_ID["C5"].thresholds
    lb, spread = t["min_lower_bound"], t["max_spread"]
    ok = {"7": [1.5, 1.5, 1.5], "28": [1.5 * (spread - EPS)] * 3}
    assert rule_scale_agnostic(ok, lb, spread)[0]
    too_wide = {"7": [1.5, 1.5, 1.5], "28": [1.5 * (spread + EPS)] * 3}
    assert not rule_scale_agnostic(too_wide, lb, spread)[0]
    one_below = {"7": seeds_with_lower_bound(lb - EPS), "28": seeds_with_lower_bound(lb + EPS)}
    assert not rule_scale_agnostic(one_below, lb, spread)[0]


def test_every_region_rule_on_both_sides():
    lb = BY_ID["C6"].thresholds["min_lower_bound"]
    above = {p: seeds_with_lower_bound(lb + EPS) for p in ("top-left", "centre")}
    assert rule_all_above(above, lb)[0]
    assert not rule_all_above({**above, "centre": seeds_with_lower_bound(lb - EPS)}, lb)[0]


def test_far_apart_rule_on_both_sides():
    t = BY_ID["C7"].thresholds
    lb, change = t["min_lower_bound"], t["max_relative_change"]
    near = [2.0, 2.0, 2.0]
    assert rule_persists(near, [2.0 * (1 + change - EPS)] * 3, lb, change)[0]
    assert rule_persists(near, [2.0 * (1 - change + EPS)] * 3, lb, change)[0]
    assert not rule_persists(near, [2.0 * (1 + change + EPS)] * 3, lb, change)[0]
    assert not rule_persists(near, [2.0 * (1 - change - EPS)] * 3, lb, change)[0]
    far_low = seeds_with_lower_bound(lb - EPS, spread=0.01)
    assert not rule_persists(far_low, far_low, lb, change)[0]


def test_augmentation_reduction_rule_on_both_sides():
    t = BY_ID["C8"].thresholds
    lo, hi, lb = t["min_reduction"], t["max_reduction"], t["min_lower_bound"]
    std = {"7": [4.0] * 3, "14": [4.0] * 3}
    for reduction, expected in ((lo + EPS, True), (hi - EPS, True), (lo - EPS, False), (hi + EPS, False)):
        aug = {c: [4.0 * (1 - reduction)] * 3 for c in std}
        assert rule_reduction(std, aug, lo, hi, lb)[0] is expected, reduction
    # the right reduction but augmented PR ratios not above 1
    std_small = {"7": [1.0] * 3}
    aug_small = {"7": [1.0 * (1 - (lo + hi) / 2)] * 3}
    assert not rule_reduction(std_small, aug_small, lo, hi, lb)[0]


def test_accuracy_rule_on_both_sides():
    thr = BY_ID["C9"].thresholds["min_standard"]
    assert rule_mean_at_least([thr + EPS] * 3, thr)[0]
    assert not rule_mean_at_least([thr - EPS] * 3, thr)[0]


# -- judge() on fake tables --------------------------------------------------------------------
class FakeResults:
    """Tables built from one function of (width, regime, layer, k, seed) -> PR ratio."""

    def __init__(self, profile, pr, null=lambda *a: 1.0, rr=lambda *a: 1.0):
        self.profile, self.pr, self.null, self.rr = profile, pr, null, rr

    def tables(self, n, regime, eval_images="clean"):
        m = self.profile.metrics
        out = []
        for s, seed in enumerate(self.profile.seeds):
            glob = {layer: {str(k): {"pr_ratio": self.pr(n, regime, layer, k, s), "pr_ratio_null": self.null(n, layer, k, s),
                                     "kl": 1.0 + 0.1 * s, "kl_null": 0.1, "rr_ratio": self.rr(n, layer, k, s),
                                     "rr_ratio_null": self.null(n, layer, k, s)} for k in m.ks} for layer in ("L1", "L2")}
            sp_val = lambda cond: {"pr_ratio": self.pr(n, regime, "L1", 2, s), "pool_size": 10.0}  # noqa: E731
            spatial = {a: {layer: {str(k): {str(c): sp_val(c) for c in conds} for k in m.spatial_ks} for layer in ("L1", "L2")}
                       for a, conds in (("balls", m.radii), ("patches", ("top-left", "centre")),
                                        ("separation", m.separations))}
            epochs = list(range(5))
            out.append({"seed": seed, "global": glob, "spatial": spatial, "test_accuracy": 0.99,
                        "shifted_test_accuracy": 0.96,
                        "zero_rows": {"L1": {"trained": 0.05 + 0.001 * s, "init": 0.01}},
                        "timeline": {"epochs": epochs, "pr_ratio": [1 + 0.1 * e for e in epochs]}})
        return out


def _judge_all(results, cid):
    return [judge(BY_ID[cid], cell, results) for cell in cells(BY_ID[cid], results.profile)]


def test_judge_supports_claims_on_kag_like_tables_and_n1_says_no():
    growing = FakeResults(QUICK, pr=lambda n, r, layer, k, s: (1.2 + n / 512 + k / 3 + (0.3 if layer == "L1" else 0))
                          * (0.75 if r == "augmented" else 1.0) + 0.001 * s,
                          rr=lambda n, layer, k, s: 1.5 + 0.01 * s,
                          null=lambda n, layer, k, s: [0.9, 1.0, 1.1][s])
    for cid in ("C1-PR", "C1-KL", "C1-RR", "C2", "C3", "C4", "C6", "C10", "C11"):
        assert all(v.supported for v in _judge_all(growing, cid)), cid
    assert not any(v.supported for v in _judge_all(growing, "N1"))


def test_judge_rejects_claims_on_random_like_tables():
    flat = FakeResults(QUICK, pr=lambda n, r, layer, k, s: [0.9, 1.0, 1.1][s])
    for cid in ("C1-PR", "C2", "C3", "C6"):
        assert not any(v.supported for v in _judge_all(flat, cid)), cid
    assert all(not v.supported for v in _judge_all(flat, "N1"))  # the control is also not supported here


def test_n1_is_supported_when_the_null_shows_kag():
    rigged = FakeResults(QUICK, pr=lambda *a: 2.0, null=lambda *a: 2.0)
    assert all(v.supported and not v.as_expected for v in _judge_all(rigged, "N1"))


def test_every_criterion_has_cells_readable_ids_and_a_rule():
    ids = set()
    for c in CRITERIA:
        assert "{" not in rule_text(c)
        for cell in cells(c, QUICK):
            assert " " not in cell.id and cell.id
            ids.add((c.id, cell.id))
    assert {c.group for c in CRITERIA} == {f"C{i}" for i in range(1, 12)} | {"N1"}
    assert ("C1-PR", "n=256-k=3-L1") in ids and ("C5", "standard-L1-k=3-n=512") in ids
    assert cells(BY_ID["C5"], SMOKE)[0].p["n"] == max(SMOKE.spatial_widths)
