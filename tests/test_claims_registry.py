"""The claim registry: the decision rules on synthetic numbers, on both sides of every threshold
(thresholds are read from the criteria table, never repeated here), and every claim judged on
fake results tables whose values depend on the cell and the condition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kag.repro.claims import BY_ID, CLAIMS, CRITERIA, Claim, get_claim
from kag.repro.profiles import QUICK, SMOKE
from kag.repro.rules import (
    rule_all_above,
    rule_lower_bound_above,
    rule_mean_at_least,
    rule_persists,
    rule_reduction,
    rule_rho_at_least,
    rule_scale_agnostic,
)
from kag.stats import lower_bound, spearman

from fakes import FakeResults, kag_like

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
    thr = get_claim(cid).thresholds["min_lower_bound"]
    assert rule_lower_bound_above(seeds_with_lower_bound(thr + EPS), thr)[0]
    assert not rule_lower_bound_above(seeds_with_lower_bound(thr - EPS), thr)[0]
    assert not rule_lower_bound_above([float("nan")] * 3, thr)[0]  # undefined never supports


@pytest.mark.parametrize("cid", ["C4", "C11"])
def test_rank_correlation_rules_on_both_sides(cid):
    thr = get_claim(cid).thresholds["min_rho"]
    x = [1, 2, 3, 4, 5, 6]
    assert rule_rho_at_least(x, [1, 2, 3, 4, 5, 6], thr)[0]  # rho = 1
    y_low = [2, 1, 4, 3, 6, 5]  # rho = 0.829
    y_lower = [3, 1, 2, 6, 4, 5]  # rho = 0.657
    assert spearman(x, y_low) == pytest.approx(0.8286, abs=1e-3)
    assert rule_rho_at_least(x, y_low, thr)[0] == (spearman(x, y_low) >= thr)
    assert not rule_rho_at_least(x, y_lower, thr)[0]
    assert not rule_rho_at_least(x, [1, 1, 1, 1, 1, 1], thr)[0]  # undefined rho


def test_scale_agnostic_rule_on_both_sides():
    t = get_claim("C5").thresholds
    lb, spread = t["min_lower_bound"], t["max_spread"]
    ok = {"7": [1.5, 1.5, 1.5], "28": [1.5 * (spread - EPS)] * 3}
    assert rule_scale_agnostic(ok, lb, spread)[0]
    too_wide = {"7": [1.5, 1.5, 1.5], "28": [1.5 * (spread + EPS)] * 3}
    assert not rule_scale_agnostic(too_wide, lb, spread)[0]
    one_below = {"7": seeds_with_lower_bound(lb - EPS), "28": seeds_with_lower_bound(lb + EPS)}
    assert not rule_scale_agnostic(one_below, lb, spread)[0]


def test_every_region_rule_on_both_sides():
    lb = get_claim("C6").thresholds["min_lower_bound"]
    above = {p: seeds_with_lower_bound(lb + EPS) for p in ("top-left", "centre")}
    assert rule_all_above(above, lb)[0]
    assert not rule_all_above({**above, "centre": seeds_with_lower_bound(lb - EPS)}, lb)[0]


def test_far_apart_rule_on_both_sides():
    t = get_claim("C7").thresholds
    lb, change = t["min_lower_bound"], t["max_relative_change"]
    near = [2.0, 2.0, 2.0]
    assert rule_persists(near, [2.0 * (1 + change - EPS)] * 3, lb, change)[0]
    assert rule_persists(near, [2.0 * (1 - change + EPS)] * 3, lb, change)[0]
    assert not rule_persists(near, [2.0 * (1 + change + EPS)] * 3, lb, change)[0]
    assert not rule_persists(near, [2.0 * (1 - change - EPS)] * 3, lb, change)[0]
    far_low = seeds_with_lower_bound(lb - EPS, spread=0.01)
    assert not rule_persists(far_low, far_low, lb, change)[0]


def test_augmentation_reduction_rule_on_both_sides():
    t = get_claim("C8").thresholds
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
    thr = get_claim("C9").thresholds["min_standard"]
    assert rule_mean_at_least([thr + EPS] * 3, thr)[0]
    assert not rule_mean_at_least([thr - EPS] * 3, thr)[0]


# -- judging on fake results tables --------------------------------------------------------------
def _judge_all(results, cid):
    claim = get_claim(cid)
    return [claim.judge(cell, results) for cell in claim.cells(results.profile)]


def test_claims_are_supported_onkag_like_tables_and_n1_says_no():
    results = FakeResults(QUICK, kag_like)
    for cid in ("C1-PR", "C1-KL", "C1-RR", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11"):
        verdicts = _judge_all(results, cid)
        assert verdicts and all(v.supported for v in verdicts), (cid, [v.detail for v in verdicts if not v.supported])
    assert not any(v.supported for v in _judge_all(results, "N1"))


def test_claims_are_rejected_on_random_like_tables():
    flat = FakeResults(QUICK, lambda seed, observable, **_: 100.0 if observable == "pool_size" else [0.9, 1.0, 1.1][seed])
    for cid in ("C1-PR", "C2", "C3", "C5", "C6", "C7", "C8"):
        assert not any(v.supported for v in _judge_all(flat, cid)), cid
    assert all(not v.supported for v in _judge_all(flat, "N1"))  # the control is also not supported here


def test_n1_is_supported_when_the_null_shows_kag():
    rigged = FakeResults(QUICK, lambda role, **_: 2.0)
    assert all(v.supported and not v.as_expected for v in _judge_all(rigged, "N1"))


def _spatial(value_of_condition, regime_factor=lambda regime, eval_images: 1.0):
    def value(regime, eval_images, analysis, condition, observable, seed, **_):
        if observable == "pool_size":
            return 10.0 * float(condition) if analysis == "balls" else 100.0
        if analysis not in ("balls", "patches", "separation"):
            return 1.0
        return value_of_condition(analysis, condition) * regime_factor(regime, eval_images) + 0.001 * seed
    return value


def test_c5_judges_the_spread_over_radii():
    spread = get_claim("C5").thresholds["max_spread"]
    growth = {"within": spread - 0.05, "beyond": spread + 0.05}
    for case, top in growth.items():
        # PR ratio 2 at the smallest radius, rising to 2 * top at the largest
        radii = [str(r) for r in QUICK.metrics.radii]

        def by_radius(analysis, condition, top=top):
            return 2.0 * (1 + (top - 1) * radii.index(condition) / (len(radii) - 1)) if analysis == "balls" else 2.0

        verdicts = _judge_all(FakeResults(QUICK, _spatial(by_radius)), "C5")
        assert all(v.supported == (case == "within") for v in verdicts), case
        assert verdicts[0].values["spread"] == pytest.approx(top, rel=1e-2)
        assert verdicts[0].values["pool_size"] == {r: 10.0 * float(r) for r in radii}


def test_c5_fails_when_one_radius_is_not_above_one():
    def small_balls_flat(analysis, condition):
        return 0.95 if analysis == "balls" and condition == "7" else 1.2
    assert not any(v.supported for v in _judge_all(FakeResults(QUICK, _spatial(small_balls_flat)), "C5"))


def test_c7_compares_the_farthest_separation_with_d_zero():
    change = get_claim("C7").thresholds["max_relative_change"]
    far = str(max(QUICK.metrics.separations))
    for drop, expected in ((change - 0.05, True), (change + 0.05, False)):
        def by_distance(analysis, condition, drop=drop):
            return 2.0 * (1 - drop) if analysis == "separation" and condition == far else 2.0
        verdicts = _judge_all(FakeResults(QUICK, _spatial(by_distance)), "C7")
        assert all(v.supported is expected for v in verdicts), drop
        assert verdicts[0].values["relative_change"] == pytest.approx(-drop, abs=2e-3)
        assert verdicts[0].values["d_far"] == float(far) and verdicts[0].values["d_near"] == 0.0


def test_c8_reads_augmented_models_on_the_cell_s_evaluation_images():
    lo, hi = get_claim("C8").thresholds["min_reduction"], get_claim("C8").thresholds["max_reduction"]
    # 30% lower on clean test images (in range), 5% lower on shifted ones (out of range)
    factor = lambda regime, ev: 1.0 if regime == "standard" else (0.7 if ev == "clean" else 0.95)  # noqa: E731
    verdicts = _judge_all(FakeResults(QUICK, _spatial(lambda a, c: 2.0 + 0.1 * QUICK.metrics.radii[0], factor)), "C8")
    for v in verdicts:
        assert v.supported is (v.params["eval"] == "clean"), v.cell
        expected = 0.3 if v.params["eval"] == "clean" else 0.05
        assert v.values["reduction"] == pytest.approx(expected, abs=1e-3)
        assert lo < 0.3 < hi and not lo < 0.05


def test_c8_fails_when_augmentation_raises_the_pr_ratios():
    factor = lambda regime, ev: 1.0 if regime == "standard" else 1.3  # noqa: E731
    verdicts = _judge_all(FakeResults(QUICK, _spatial(lambda a, c: 2.0, factor)), "C8")
    assert not any(v.supported for v in verdicts)
    assert all(v.values["reduction"] == pytest.approx(-0.3, abs=1e-3) for v in verdicts)


def test_c9_reads_clean_or_shifted_accuracy_per_cell():
    thr = get_claim("C9").thresholds

    def accuracy(regime, condition, observable, **_):
        if observable != "test_accuracy":
            return 1.0
        if regime == "standard":
            return thr["min_standard"] + EPS
        return thr["min_augmented"] + EPS if condition == "clean" else thr["min_augmented"] - EPS

    for v in _judge_all(FakeResults(QUICK, accuracy), "C9"):
        shifted = v.params["regime"] == "augmented" and v.params["eval"] == "augmented"
        assert v.supported is not shifted, v.cell


def test_every_claim_has_cells_readable_ids_a_rule_and_a_key_number():
    ids = set()
    results = FakeResults(QUICK, kag_like)
    for claim in CLAIMS:
        assert isinstance(claim, Claim) and claim.id in CRITERIA
        assert "{" not in str(claim.rule)
        rows = []
        for cell in claim.cells(QUICK):
            assert " " not in cell.id and cell.id
            ids.add((claim.id, cell.id))
            assert claim.needs(cell, QUICK)
            v = claim.judge(cell, results).to_dict()
            rows.append({"cell": v["cell"], "values": v["values"]})
        assert claim.key_number(rows), claim.id
    assert {c.group for c in CLAIMS} == {f"C{i}" for i in range(1, 12)} | {"N1"}
    assert ("C1-PR", "n=256-k=3-L1") in ids and ("C5", "standard-L1-k=3-n=512") in ids
    assert get_claim("C5").cells(SMOKE)[0].p["n"] == max(SMOKE.spatial_widths)
    assert set(CRITERIA) == set(BY_ID)


def test_unknown_claim_is_a_one_line_error():
    with pytest.raises(ValueError, match="claim='C99' is unknown"):
        get_claim("C99")
