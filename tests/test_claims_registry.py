"""The claim registry: the decision rules on synthetic numbers, on both sides of every threshold and
in the inconclusive middle (thresholds are read from the criteria table, never repeated here), and
every claim judged on fake results tables whose values depend on the cell and the condition."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.stats
import pytest

from kag.repro.claims import BY_ID, CLAIMS, CRITERIA, get_claim
from kag.repro.criteria import Claim
from kag.repro.profiles import QUICK, SMOKE
from kag.repro.rules import (
    CONTRADICTED,
    INCONCLUSIVE,
    INVALID,
    SUPPORTED,
    control_verdict,
    degeneracies,
    difference_se,
    measurement_se,
    rho_measurement_se,
    rule_all_above,
    rule_lower_bound_above,
    rule_mean_at_least,
    rule_persists,
    rule_reduction,
    rule_rho_at_least,
    rule_rho_at_most,
    rule_scale_agnostic,
)
from kag.repro.stats import lower_bound, spearman
from kag.experiments.table import ResultTable

from fakes import FakeResults, anti_kag, kag_like, noisy

ROOT = Path(__file__).resolve().parents[1]

EPS = 1e-3
NAN = float("nan")


def seeds(mean: float, std: float) -> list[float]:
    """Three seed values with this mean and sample std: error bars mean ± 2 std."""
    return [mean - std, mean, mean + std]


def seeds_with_lower_bound(lb: float, spread: float = 0.05) -> list[float]:
    return seeds(lb + 2 * spread, spread)


def seeds_with_upper_bound(ub: float, spread: float = 0.05) -> list[float]:
    return seeds(ub - 2 * spread, spread)


def verdict(rule_result) -> str:
    return rule_result[0]


def test_lower_bound_is_mean_minus_two_sample_std():
    assert lower_bound([1.0, 2.0, 3.0]) == pytest.approx(2.0 - 2 * 1.0)
    assert math.isnan(lower_bound([1.0, NAN]))


# -- the rules on both sides of every threshold, and in between -----------------------------------
@pytest.mark.parametrize("cid", ["C1-PR", "C1-RR", "C1-KL", "C2", "C3", "C10"])
def test_lower_bound_rules_on_both_sides_and_in_the_middle(cid):
    thr = get_claim(cid).thresholds["min_lower_bound"]
    assert verdict(rule_lower_bound_above(seeds_with_lower_bound(thr + EPS), thr)) == SUPPORTED
    assert verdict(rule_lower_bound_above(seeds_with_lower_bound(thr - EPS), thr)) == INCONCLUSIVE
    assert verdict(rule_lower_bound_above(seeds_with_upper_bound(thr + EPS), thr)) == INCONCLUSIVE
    assert verdict(rule_lower_bound_above([thr] * 3, thr)) == CONTRADICTED  # bounds = t: not "> t", but "<= t"
    assert verdict(rule_lower_bound_above(seeds_with_upper_bound(thr - EPS), thr)) == CONTRADICTED
    assert verdict(rule_lower_bound_above([NAN] * 3, thr)) == INCONCLUSIVE  # undefined: neither
    assert verdict(rule_lower_bound_above([thr - 1, thr - 1, NAN], thr)) == INCONCLUSIVE


def test_lower_bound_rule_reports_both_bounds_and_the_measurement_se():
    _, v = rule_lower_bound_above(seeds(2.0, 0.1), 1.0, measurement_se=0.01)
    assert v["lower_bound"] == pytest.approx(1.8) and v["upper_bound"] == pytest.approx(2.2)
    assert v["measurement_se"] == 0.01 and list(v).index("measurement_se") == list(v).index("std") + 1
    assert "measurement_se" not in rule_lower_bound_above(seeds(2.0, 0.1), 1.0)[1]


def test_rho_measurement_se_is_zero_without_noise_and_grows_with_it():
    x, y = [1, 2, 3, 4, 5], [1.0, 2.0, 3.0, 4.0, 5.0]
    assert rho_measurement_se(x, y, [0.0] * 5) == 0.0
    assert rho_measurement_se(x, y, [0.01] * 5) == 0.0  # far apart points never swap ranks
    small, large = rho_measurement_se(x, y, [0.5] * 5, seed=1), rho_measurement_se(x, y, [5.0] * 5, seed=1)
    assert 0 < small < large < 1
    assert math.isnan(rho_measurement_se(x, y, [0.1, 0.1, float("nan"), 0.1, 0.1]))


def test_rho_measurement_se_matches_a_direct_simulation():
    x, y, se = [1, 2, 3, 4], [1.0, 1.2, 1.1, 1.6], [0.1, 0.2, 0.1, 0.3]
    rng = np.random.default_rng(7)
    rhos = [scipy.stats.spearmanr(x, np.array(y) + rng.standard_normal(4) * se).statistic for _ in range(300)]
    rhos = np.array(rhos)[np.isfinite(rhos)]
    assert rho_measurement_se(x, y, se, draws=300, seed=7) == pytest.approx(rhos.std(ddof=1), rel=1e-9)


def test_measurement_se_of_the_mean_over_seeds_and_of_a_difference():
    assert measurement_se([0.03, 0.04, 0.02]) == pytest.approx(0.03)  # correlated errors: the mean, not sqrt(sum²)/n
    assert difference_se([0.03, 0.0], [0.04, 0.01]) == pytest.approx([0.05, 0.01])


@pytest.mark.parametrize("cid", ["C4", "C11"])
def test_rank_correlation_rules_on_both_sides_and_in_the_middle(cid):
    thr = get_claim(cid).thresholds["min_rho"]
    x = [1, 2, 3, 4, 5, 6]
    assert verdict(rule_rho_at_least(x, [1, 2, 3, 4, 5, 6], thr)) == SUPPORTED  # rho = 1
    y_high, y_middle, y_low = [2, 1, 4, 3, 6, 5], [3, 1, 2, 6, 4, 5], [5, 6, 3, 4, 1, 2]
    assert spearman(x, y_high) == pytest.approx(0.8286, abs=1e-3)
    assert spearman(x, y_low) == pytest.approx(-0.8286, abs=1e-3)
    assert verdict(rule_rho_at_least(x, y_high, thr)) == (SUPPORTED if spearman(x, y_high) >= thr else INCONCLUSIVE)
    assert verdict(rule_rho_at_least(x, y_middle, thr)) == INCONCLUSIVE  # rho = 0.657
    assert verdict(rule_rho_at_least(x, y_low, thr)) == (CONTRADICTED if spearman(x, y_low) <= -thr else INCONCLUSIVE)
    assert verdict(rule_rho_at_least(x, x[::-1], thr)) == CONTRADICTED  # rho = -1
    assert verdict(rule_rho_at_least(x, [1] * 6, thr)) == INCONCLUSIVE  # undefined rho


def test_the_falling_rank_rule_of_c2_depth_mirrors_the_rising_one():
    thr = get_claim("C2-depth").thresholds["max_rho"]  # -0.8
    depth = [1, 2, 3, 4]
    assert verdict(rule_rho_at_most(depth, [4, 3, 2, 1], thr)) == SUPPORTED  # rho = -1
    assert verdict(rule_rho_at_most(depth, [4, 2, 3, 1], thr)) == SUPPORTED  # rho = -0.8: one adjacent swap
    assert verdict(rule_rho_at_most(depth, [3, 4, 1, 2], thr)) == INCONCLUSIVE  # rho = -0.6
    assert verdict(rule_rho_at_most(depth, [1, 3, 2, 4], thr)) == CONTRADICTED  # rho = +0.8
    assert verdict(rule_rho_at_most(depth, [1, 1, 1, 1], thr)) == INCONCLUSIVE  # undefined rho
    _, values = rule_rho_at_most(depth, [4, 3, 2, 1], thr, measurement_se=0.1)
    assert values["rho"] == pytest.approx(-1.0) and values["measurement_se"] == 0.1 and values["threshold"] == thr


def test_scale_agnostic_rule_on_both_sides_and_in_the_middle():
    t = get_claim("C5").thresholds
    lb, spread = t["min_lower_bound"], t["max_spread"]
    ok = {"7": [1.5] * 3, "28": [1.5 * (spread - EPS)] * 3}
    assert verdict(rule_scale_agnostic(ok, lb, spread)) == SUPPORTED
    # too wide, and the error bars cannot bring the spread down to the threshold
    too_wide = {"7": [1.5] * 3, "28": [1.5 * (spread + EPS)] * 3}
    assert verdict(rule_scale_agnostic(too_wide, lb, spread)) == CONTRADICTED
    # too wide on the means, but within the error bars a spread <= max is possible
    wide_bars = {"7": seeds(1.5, 0.1), "28": seeds(1.5 * (spread + 0.05), 0.1)}
    v, values = rule_scale_agnostic(wide_bars, lb, spread)
    assert v == INCONCLUSIVE and values["spread"] > spread >= values["min_spread"]
    assert values["min_spread"] == pytest.approx((1.5 * (spread + 0.05) - 0.2) / 1.7)
    one_straddles = {"7": seeds_with_lower_bound(lb - EPS), "28": seeds_with_lower_bound(lb + EPS)}
    assert verdict(rule_scale_agnostic(one_straddles, lb, spread)) == INCONCLUSIVE
    one_below = {"7": seeds_with_upper_bound(lb), "28": seeds_with_lower_bound(lb + EPS)}
    assert verdict(rule_scale_agnostic(one_below, lb, spread)) == CONTRADICTED
    assert verdict(rule_scale_agnostic({"7": [NAN] * 3, "28": [1.5] * 3}, lb, spread)) == INCONCLUSIVE


def test_every_region_rule_on_both_sides_and_in_the_middle():
    lb = get_claim("C6").thresholds["min_lower_bound"]
    above = {p: seeds_with_lower_bound(lb + EPS) for p in ("top-left", "centre")}
    assert verdict(rule_all_above(above, lb)) == SUPPORTED
    assert verdict(rule_all_above({**above, "centre": seeds_with_lower_bound(lb - EPS)}, lb)) == INCONCLUSIVE
    assert verdict(rule_all_above({**above, "centre": seeds_with_upper_bound(lb)}, lb)) == CONTRADICTED
    assert verdict(rule_all_above({**above, "centre": seeds_with_upper_bound(lb + EPS)}, lb)) == INCONCLUSIVE
    assert verdict(rule_all_above({**above, "centre": [NAN] * 3}, lb)) == INCONCLUSIVE


def test_far_apart_rule_on_both_sides_and_in_the_middle():
    t = get_claim("C7").thresholds
    lb, change = t["min_lower_bound"], t["max_relative_change"]
    near = [2.0, 2.0, 2.0]
    assert verdict(rule_persists(near, [2.0 * (1 + change - EPS)] * 3, lb, change)) == SUPPORTED
    assert verdict(rule_persists(near, [2.0 * (1 - change + EPS)] * 3, lb, change)) == SUPPORTED
    # with no spread over seeds, the change's interval is the point: outside +-change is contradicted
    assert verdict(rule_persists(near, [2.0 * (1 + change + EPS)] * 3, lb, change)) == CONTRADICTED
    assert verdict(rule_persists(near, [2.0 * (1 - change - EPS)] * 3, lb, change)) == CONTRADICTED
    # a change beyond +-change on the means whose seed-paired interval reaches back inside: inconclusive
    near_seeds, far_seeds = seeds(2.0, 0.05), seeds(2.0 * (1 + change + 0.05), 0.2)
    v, values = rule_persists(near_seeds, far_seeds, lb, change)
    changes = np.array(far_seeds) / np.array(near_seeds) - 1
    assert v == INCONCLUSIVE and values["change_interval"][0] < change < values["relative_change"]
    assert values["change_interval"] == pytest.approx([changes.mean() - 2 * changes.std(ddof=1),
                                                       changes.mean() + 2 * changes.std(ddof=1)])
    # the paired change's measurement SE floors its SD: a tight seed spread cannot make it decisive
    v, values = rule_persists(near, [2.0 * (1 + change + EPS)] * 3, lb, change, change_se=0.1)
    assert v == INCONCLUSIVE and values["change"]["error_sd"] == 0.1
    far_straddles = seeds_with_lower_bound(lb - EPS, spread=0.01)
    assert verdict(rule_persists(far_straddles, far_straddles, lb, change)) == INCONCLUSIVE
    far_below = seeds_with_upper_bound(lb, spread=0.01)
    assert verdict(rule_persists(far_below, far_below, lb, change)) == CONTRADICTED
    assert verdict(rule_persists([NAN] * 3, [2.0] * 3, lb, change)) == INCONCLUSIVE


def test_augmentation_reduction_rule_on_both_sides_and_in_the_middle():
    t = get_claim("C8").thresholds
    lo, hi, lb = t["min_reduction"], t["max_reduction"], t["min_lower_bound"]
    std = {"7": [4.0] * 3, "14": [4.0] * 3}
    for reduction, expected in ((lo + EPS, SUPPORTED), (hi - EPS, SUPPORTED), (lo - EPS, CONTRADICTED),
                                (hi + EPS, CONTRADICTED)):
        aug = {c: [4.0 * (1 - reduction)] * 3 for c in std}
        assert verdict(rule_reduction(std, aug, lo, hi, lb)) == expected, reduction
    # per-seed reductions -0.1, 0.1, 0.3: the point estimate is out of range, the interval reaches in
    varied = {c: [4.0 * (1 - r) for r in (-0.1, 0.1, 0.3)] for c in std}
    v, values = rule_reduction(std, varied, lo, hi, lb)
    assert v == INCONCLUSIVE and values["reduction"] < lo
    assert values["reduction_interval"] == pytest.approx([0.1 - 0.4, 0.1 + 0.4])
    # the right reduction but augmented PR ratios not above 1: contradicted by that part
    assert verdict(rule_reduction({"7": [1.0] * 3}, {"7": [1.0 * (1 - (lo + hi) / 2)] * 3}, lo, hi, lb)) == CONTRADICTED
    assert verdict(rule_reduction(std, {c: [NAN] * 3 for c in std}, lo, hi, lb)) == INCONCLUSIVE


def test_augmentation_reduction_pairs_seed_i_with_seed_i():
    t = get_claim("C8").thresholds
    std = {"7": [4.0, 5.0, 6.0]}
    aug = {"7": [3.0, 3.75, 4.5]}  # 25% lower in every seed; unpaired, the seeds would look noisy
    v, values = rule_reduction(std, aug, t["min_reduction"], t["max_reduction"], t["min_lower_bound"])
    assert v == SUPPORTED and values["seed_reductions"] == pytest.approx([0.25] * 3)
    assert values["reduction_interval"] == pytest.approx([0.25, 0.25])


def test_accuracy_rule_on_both_sides_and_in_the_middle():
    thr = get_claim("C9").thresholds["min_standard"]
    assert verdict(rule_mean_at_least([thr + EPS] * 3, thr)) == SUPPORTED
    assert verdict(rule_mean_at_least([thr] * 3, thr)) == SUPPORTED  # ">= t"
    assert verdict(rule_mean_at_least(seeds(thr - EPS, 0.01), thr)) == INCONCLUSIVE  # mean + 2 std reaches t
    assert verdict(rule_mean_at_least([thr - EPS] * 3, thr)) == CONTRADICTED
    assert verdict(rule_mean_at_least([NAN] * 3, thr)) == INCONCLUSIVE


def test_degenerate_control_inputs_are_named():
    assert degeneracies({"a": [0.9, 1.0, 1.1]}, seeds=(0, 1, 2)) == []
    assert degeneracies({"a": [0.9, NAN, 1.1]}, seeds=(4, 5, 6)) == ["NaN in a at seed 5"]
    assert degeneracies({"a": [math.inf, 1.0, 1.1]}) == ["Inf in a at seed 0"]
    assert degeneracies({"a": [1.0, 1.0, 1.0]}) == ["zero standard deviation over seeds in a (every seed 1)"]
    assert degeneracies({"a": [0.3 - 0.1, 0.2, 0.2]})[0].startswith("zero standard deviation")  # up to rounding
    assert degeneracies({"a": [1.0, 1.0]}, varying=False) == [] and degeneracies({"a": [NAN]}, finite=False) == []


def test_control_verdict_combines_its_rules():
    assert control_verdict([CONTRADICTED, INCONCLUSIVE, CONTRADICTED], []) == INCONCLUSIVE
    assert control_verdict([CONTRADICTED] * 3, []) == CONTRADICTED
    assert control_verdict([CONTRADICTED, SUPPORTED, INCONCLUSIVE], []) == SUPPORTED
    assert control_verdict([SUPPORTED] * 3, ["NaN in x at seed 0"]) == INVALID


# -- judging on fake results tables --------------------------------------------------------------
def _judge_all(results, cid):
    claim = get_claim(cid)
    return [claim.judge(cell, results) for cell in claim.cells(results.profile)]


PAPER_CLAIMS = [c.id for c in CLAIMS if not c.control]


@pytest.mark.parametrize(("world", "expected"), [(kag_like, SUPPORTED), (anti_kag, CONTRADICTED),
                                                 (noisy, INCONCLUSIVE)], ids=["kag-like", "anti-kag", "noisy"])
def test_every_claim_gives_the_expected_verdict_word_and_n1_says_no(world, expected):
    results = FakeResults(QUICK, world)
    for cid in PAPER_CLAIMS:
        verdicts = _judge_all(results, cid)
        assert verdicts and {v.verdict for v in verdicts} == {expected}, (cid, [v.message for v in verdicts][:2])
        assert all(v.as_expected is (expected == SUPPORTED) for v in verdicts)
        assert all(v.message.startswith(f"{cid} [{v.cell}] {expected}: ") for v in verdicts)
    n1 = _judge_all(results, "N1")
    assert all(v.verdict == INCONCLUSIVE and v.as_expected and not v.problems for v in n1)


def test_verdicts_are_json_friendly_and_carry_the_word():
    v = _judge_all(FakeResults(QUICK, anti_kag), "C2")[0].to_dict()
    assert v["verdict"] == CONTRADICTED and v["as_expected"] is False and v["control"] is False
    assert set(v) == {"criterion", "cell", "params", "verdict", "control", "as_expected", "problems", "values",
                      "detail"}


def test_pr_ratio_cells_carry_the_measurement_se_when_the_tables_have_it():
    results = FakeResults(QUICK, kag_like)  # per-seed SEs 0.01, 0.02, 0.03
    one = 0.02  # the mean of the per-seed SEs
    c1 = _judge_all(results, "C1-PR")[0]
    assert c1.values["measurement_se"] == pytest.approx(one) and "measurement SE 0.02" in c1.detail
    assert "measurement_se" not in _judge_all(results, "C2")[0].values  # no replicates in the fake: no paired SE
    assert _judge_all(results, "C1-RR")[0].values["measurement_se"] == pytest.approx(one)
    c5 = _judge_all(results, "C5")[0].values["conditions"]
    assert all(s["measurement_se"] == pytest.approx(one) for s in c5.values())
    # differences of two measured quantities not on shared draws: the SEs add in quadrature
    assert _judge_all(results, "C1-KL")[0].values["measurement_se"] == pytest.approx(one * math.sqrt(2))
    assert _judge_all(results, "C10")[0].values["measurement_se"] == pytest.approx(0.0004 * math.sqrt(2))
    assert _judge_all(results, "C9")[0].values["measurement_se"] == pytest.approx(one)
    n1 = _judge_all(results, "N1")[0].values
    assert n1["pr_ratio_null"]["measurement_se"] == pytest.approx(one)
    assert n1["kl_null_difference"]["measurement_se"] == pytest.approx(one * math.sqrt(2))
    assert n1["rr_ratio_null"]["measurement_se"] == pytest.approx(one)  # the null's RR SE floors its error bars too
    for claim in ("C4", "C11"):  # how far rho moves under measurement noise alone: finite, non-negative
        rho_se = _judge_all(results, claim)[0].values["measurement_se"]
        assert math.isfinite(rho_se) and rho_se >= 0
    without = FakeResults(QUICK, kag_like)
    without._table = ResultTable(r for r in without._table if not r.observable.endswith("_se"))
    v = _judge_all(without, "C1-PR")[0]
    assert "measurement_se" not in v.values and "measurement SE" not in v.detail
    assert "measurement_se" not in next(iter(_judge_all(without, "C6")[0].values["conditions"].values()))


# -- the control N1 -------------------------------------------------------------------------------
def _null_world(pr=None, rr=None, kl=None, kl2=None):
    """kag_like, with the null's PR, RR, KL and second-null KL replaced by per-seed lists."""
    def value(seed, role, observable, analysis, **kw):
        if analysis == "global" and role in ("null", "null2"):
            pick = {("pr_ratio", "null"): pr, ("rr_ratio", "null"): rr, ("kl", "null"): kl, ("kl", "null2"): kl2}
            chosen = pick.get((observable, role))
            if chosen is not None:
                return chosen[seed]
        return kag_like(seed=seed, role=role, observable=observable, analysis=analysis, **kw)
    return FakeResults(QUICK, value)


def test_n1_is_contradicted_on_random_like_nulls_below_one():
    results = _null_world(pr=[0.8, 0.85, 0.9], rr=[0.7, 0.75, 0.8], kl=[0.1, 0.11, 0.12], kl2=[0.2, 0.22, 0.24])
    n1 = _judge_all(results, "N1")
    assert all(v.verdict == CONTRADICTED and v.as_expected for v in n1)
    assert n1[0].values["verdicts"] == {"pr": CONTRADICTED, "kl": CONTRADICTED, "rr": CONTRADICTED}


def test_n1_shows_kag_on_rigged_nulls():
    def rigged_value(role, seed, observable, **_):
        if observable.endswith("_se"):
            return 0.01  # measured precisely: the nulls' values alone decide
        return 0.5 + 0.02 * seed if role == "null2" else 2.0 + 0.01 * seed

    rigged = FakeResults(QUICK, rigged_value)
    n1 = _judge_all(rigged, "N1")
    assert all(v.verdict == SUPPORTED and not v.as_expected for v in n1)
    assert n1[0].message.startswith(f"N1 [{n1[0].cell}] supported (the control shows KAG): ")
    # one observable that says KAG is enough
    only_kl = _judge_all(_null_world(kl=[0.5, 0.52, 0.54]), "N1")
    assert all(v.verdict == SUPPORTED and v.values["verdicts"]["kl"] == SUPPORTED for v in only_kl)


@pytest.mark.parametrize(("world", "problem"), [
    (dict(pr=[0.9, NAN, 1.1]), "NaN in PR ratio (null) at seed 1"),
    (dict(rr=[0.9, 1.0, math.inf]), "Inf in RR ratio (null) at seed 2"),
    (dict(kl2=[0.1, NAN, 0.1]), "NaN in KL(null2‖init) at seed 1"),
    (dict(pr=[0.9, 0.9, 0.9]), "zero standard deviation over seeds in PR ratio (null) (every seed 0.9)"),
    (dict(rr=[1.0, 1.0, 1.0]), "zero standard deviation over seeds in RR ratio (null)"),
    (dict(kl=[0.1, 0.2, 0.3], kl2=[0.1, 0.2, 0.3]),
     "zero standard deviation over seeds in KL(null‖init) - KL(null2‖init)"),
], ids=["nan-pr", "inf-rr", "nan-kl2", "constant-pr", "constant-rr", "null2-equals-null"])
def test_n1_is_invalid_on_nan_inf_or_zero_variance(world, problem):
    for v in _judge_all(_null_world(**world), "N1"):
        assert v.verdict == INVALID and not v.as_expected, v.message
        assert any(p.startswith(problem) for p in v.problems), v.problems
        assert v.message.startswith(f"N1 [{v.cell}] invalid: {problem}")


def test_n1_is_invalid_when_the_second_null_is_missing():
    results = FakeResults(QUICK, kag_like)
    results._table = ResultTable(r for r in results._table if r.role != "null2")
    v = _judge_all(results, "N1")[0]
    assert v.verdict == INVALID and "KL(null2‖init) is missing" in v.problems[0] and len(v.problems) == 1


def test_n1_reads_its_thresholds_from_the_c1_rules():
    t = get_claim("N1").thresholds
    assert dict(t) == {f"{o}_min_lower_bound": CRITERIA[f"C1-{o.upper()}"].thresholds["min_lower_bound"]
                       for o in ("pr", "kl", "rr")}


# -- condition-dependent fakes ------------------------------------------------------------------------
def _spatial(value_of_condition, regime_factor=lambda regime, eval_images: 1.0):
    def value(regime, eval_images, analysis, condition, observable, seed, **_):
        if observable == "pool_size":
            return 10.0 * float(condition) if analysis == "balls" else 100.0
        if observable.endswith("_se"):
            return 0.01
        if analysis not in ("balls", "patches", "separation"):
            return 1.0
        return value_of_condition(analysis, condition) * regime_factor(regime, eval_images) + 0.001 * seed
    return value


def test_c5_judges_the_spread_over_radii():
    spread = get_claim("C5").thresholds["max_spread"]
    growth = {"within": (spread - 0.05, SUPPORTED), "beyond": (spread + 0.05, CONTRADICTED)}
    for case, (top, expected) in growth.items():
        # PR ratio 2 at the smallest radius, rising to 2 * top at the largest
        radii = [str(r) for r in QUICK.metrics.radii]

        def by_radius(analysis, condition, top=top):
            return 2.0 * (1 + (top - 1) * radii.index(condition) / (len(radii) - 1)) if analysis == "balls" else 2.0

        verdicts = _judge_all(FakeResults(QUICK, _spatial(by_radius)), "C5")
        assert all(v.verdict == expected for v in verdicts), case
        assert verdicts[0].values["spread"] == pytest.approx(top, rel=1e-2)
        assert verdicts[0].values["pool_size"] == {r: 10.0 * float(r) for r in radii}


def test_c5_is_contradicted_when_one_radius_is_below_one():
    def small_balls_flat(analysis, condition):
        return 0.95 if analysis == "balls" and condition == "7" else 1.2
    assert all(v.verdict == CONTRADICTED for v in _judge_all(FakeResults(QUICK, _spatial(small_balls_flat)), "C5"))


def test_c7_compares_the_farthest_separation_with_d_zero():
    change = get_claim("C7").thresholds["max_relative_change"]
    far = str(max(QUICK.metrics.separations))
    for drop, expected in ((change - 0.05, SUPPORTED), (change + 0.05, CONTRADICTED)):
        def by_distance(analysis, condition, drop=drop):
            return 2.0 * (1 - drop) if analysis == "separation" and condition == far else 2.0
        verdicts = _judge_all(FakeResults(QUICK, _spatial(by_distance)), "C7")
        assert all(v.verdict == expected for v in verdicts), drop
        assert verdicts[0].values["relative_change"] == pytest.approx(-drop, abs=2e-3)
        assert verdicts[0].values["d_far"] == float(far) and verdicts[0].values["d_near"] == 0.0


def test_c8_reads_augmented_models_on_the_cell_s_evaluation_images():
    lo, hi = get_claim("C8").thresholds["min_reduction"], get_claim("C8").thresholds["max_reduction"]
    # 30% lower on clean test images (in range), 5% lower on shifted ones (out of range)
    factor = lambda regime, ev: 1.0 if regime == "standard" else (0.7 if ev == "clean" else 0.95)  # noqa: E731
    verdicts = _judge_all(FakeResults(QUICK, _spatial(lambda a, c: 2.0 + 0.1 * QUICK.metrics.radii[0], factor)), "C8")
    for v in verdicts:
        assert v.verdict == (SUPPORTED if v.params["eval"] == "clean" else CONTRADICTED), v.cell
        expected = 0.3 if v.params["eval"] == "clean" else 0.05
        assert v.values["reduction"] == pytest.approx(expected, abs=1e-3)
        assert lo < 0.3 < hi and not lo < 0.05


def test_c8_is_contradicted_when_augmentation_raises_the_pr_ratios():
    factor = lambda regime, ev: 1.0 if regime == "standard" else 1.3  # noqa: E731
    verdicts = _judge_all(FakeResults(QUICK, _spatial(lambda a, c: 2.0, factor)), "C8")
    assert all(v.verdict == CONTRADICTED for v in verdicts)
    assert all(v.values["reduction"] == pytest.approx(-0.3, abs=1e-3) for v in verdicts)


def test_c9_reads_clean_or_shifted_accuracy_per_cell():
    thr = get_claim("C9").thresholds

    def accuracy(regime, condition, observable, **_):
        if observable == "test_accuracy_se":
            return 0.0  # no measurement error: the verdict rests on the seeds alone
        if observable != "test_accuracy":
            return 1.0
        if regime == "standard":
            return thr["min_standard"] + EPS
        return thr["min_augmented"] + EPS if condition == "clean" else thr["min_augmented"] - EPS

    for v in _judge_all(FakeResults(QUICK, accuracy), "C9"):
        shifted = v.params["regime"] == "augmented" and v.params["eval"] == "augmented"
        assert v.verdict == (CONTRADICTED if shifted else SUPPORTED), v.cell


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
    assert {c.group for c in CLAIMS} == {f"C{i}" for i in range(1, 12)} | {"N1", "N2", "FM1"}
    assert [c.id for c in CLAIMS if c.control] == ["N1"]
    assert ("C1-PR", "n=256-k=3-L1") in ids and ("C5", "standard-L1-k=3-n=512") in ids
    assert get_claim("C5").cells(SMOKE)[0].p["n"] == max(SMOKE.spatial_widths)
    assert set(CRITERIA) == set(BY_ID)


def test_unknown_claim_is_a_one_line_error():
    with pytest.raises(ValueError, match="claim='C99' is unknown"):
        get_claim(claim_id="C99")


def test_spearman_of_many_rows_is_scipy_s_row_by_row():
    from kag.repro.stats import spearman, spearman_rows
    rng = np.random.default_rng(3)
    x = [1, 2, 3, 4, 5, 6]
    ys = rng.standard_normal((200, 6))
    ys[5] = ys[5, 0]  # constant: undefined
    ys[6, 2] = np.nan  # not finite: undefined
    ys[7] = [1, 1, 2, 2, 3, 3]  # ties: average ranks
    got = spearman_rows(x, ys)
    want = np.array([spearman(x, row) for row in ys])
    assert np.isnan(got[[5, 6]]).all() and np.isnan(want[[5, 6]]).all()
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=1e-14)
    assert np.isnan(spearman_rows([1, 1, 1], ys[:3, :3])).all()  # constant x


# -- a claim is one file ---------------------------------------------------------------------------
_NEW_CLAIM = '''
from kag.repro.criteria import Claim, Rule, make_cell
from kag.repro.judges import global_values, lower_bounds
from kag.repro.rules import rule_lower_bound_above

RULE = Rule.of("lower bound > {min_lower_bound}", min_lower_bound=1.0)


def judge(c, cell, r):
    p = cell.p
    return (*rule_lower_bound_above(global_values(r, p["n"], "L1", 3, "pr_ratio"), c.thresholds["min_lower_bound"]),
            None)


CLAIMS_HERE = (Claim(id="X1", rule=RULE, order=99, statement="a claim added as one file", measurement="PR ratio",
                     cells_description="every n", cells_of=lambda p: [make_cell("X1", n=n) for n in p.widths],
                     evaluate=judge, headline=lower_bounds),)
'''


def _registry_with(tmp_path, name: str, text: str) -> subprocess.CompletedProcess:
    """Import the registry from a copy of the package that holds one more claim module."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "kag", copy / "kag", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "kag" / "repro" / "claims" / f"{name}.py").write_text(text)
    code = ("from kag.repro.claims import BY_ID, CLAIMS, CRITERIA\n"
            "print(CLAIMS[-1].id, str(CRITERIA['X1']), len(CLAIMS))")
    return subprocess.run([sys.executable, "-c", code], cwd=copy, capture_output=True, text=True, timeout=300)


def test_a_claim_added_as_one_file_joins_the_registry_in_its_order(tmp_path):
    proc = _registry_with(tmp_path, "x1", _NEW_CLAIM)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["X1", "lower", "bound", ">", "1.0", str(len(CLAIMS) + 1)]


def test_two_claims_with_one_id_are_refused_by_name(tmp_path):
    proc = _registry_with(tmp_path, "x1", _NEW_CLAIM.replace('id="X1"', 'id="C3"'))
    assert proc.returncode != 0
    assert "two claims share the id 'C3'" in proc.stderr


def test_every_claim_module_lists_its_claims_and_the_criteria_are_theirs():
    import importlib
    import pkgutil

    import kag.repro.claims as package

    listed = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"kag.repro.claims.{info.name}")
        assert getattr(module, "CLAIMS_HERE", ()), f"{info.name} lists no claim"
        listed += [c.id for c in module.CLAIMS_HERE]
    assert sorted(listed) == sorted(BY_ID)
    assert [c.order for c in CLAIMS] == sorted(c.order for c in CLAIMS)
    assert all(CRITERIA[c.id] is c.rule for c in CLAIMS)
