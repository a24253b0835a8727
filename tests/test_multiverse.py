"""The multiverse and measurement error in the verdict: each new piece against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kag.experiments.analysis import MetricTable
from kag.metrics import bootstrap_pr_ratio_replicates, matched_nonzero, participation_ratio
from kag.repro.judges import paired_se
from kag.repro.profiles import QUICK, Profile, check_verdict_seeds
from kag.repro.results import divergence_overlay
from kag.repro.rules import CONTRADICTED, INCONCLUSIVE, SUPPORTED, rule_lower_bound_above
from kag.experiments.table import ResultTable, Row


def test_the_measurement_se_floors_the_seed_sd():
    seeds = [1.10, 1.11, 1.12]  # seed SD 0.01: supported on the seeds alone
    assert rule_lower_bound_above(seeds, 1.0)[0] == SUPPORTED
    verdict, v = rule_lower_bound_above(seeds, 1.0, measurement_se=0.1)  # one seed's error is 0.1
    assert verdict == INCONCLUSIVE and v["error_sd"] == 0.1 and v["lower_bound"] == pytest.approx(1.11 - 0.2)
    assert rule_lower_bound_above([0.5, 0.6, 0.7], 1.0, measurement_se=0.01)[0] == CONTRADICTED  # SD 0.1 wins


def test_a_verdict_needs_two_seeds():
    check_verdict_seeds((0, 1), "seeds")
    with pytest.raises(ValueError, match=r"seeds = \[0\] holds 1 seed: a verdict needs at least 2"):
        check_verdict_seeds((0,), "seeds")
    with pytest.raises(ValueError, match="at least 2"):
        Profile("one", (64,), (0,), QUICK.train, QUICK.metrics)


def test_matched_nonzero_keeps_equal_counts_of_nonzero_minors():
    a = torch.tensor([[0.0, 1.0, 2.0, 0.0, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[4.0, 0.0, 5.0, 6.0, 7.0], [0.0, 0.0, 0.0, 2.0, 0.0]], dtype=torch.float64)
    ma, mb = matched_nonzero(a, b)
    # image 0: 3 vs 4 non-zero -> 3 each (b keeps its first three); image 1: 5 vs 1 -> 1 each
    assert ma.tolist() == [[0.0, 1.0, 2.0, 0.0, 3.0], [1.0, 0.0, 0.0, 0.0, 0.0]]
    assert mb.tolist() == [[4.0, 0.0, 5.0, 6.0, 0.0], [0.0, 0.0, 0.0, 2.0, 0.0]]
    # brute force: PR over the kept values equals PR of the masked row (zeros add nothing)
    kept = torch.tensor([4.0, 5.0, 6.0], dtype=torch.float64)
    assert float(participation_ratio(mb[0:1])) == pytest.approx(float(kept.norm() / kept.sum()))


def test_paired_se_accounts_for_shared_images():
    """Two PR ratios on the same images move together under the same draws: the SE of their
    difference is far below the quadrature sum, and equals the SD of the replicate differences."""
    g = torch.Generator().manual_seed(0)
    base = torch.rand(20, 200, generator=g, dtype=torch.float64) ** 6
    init = torch.rand(20, 200, generator=g, dtype=torch.float64)
    other = base * (1 + 0.05 * torch.rand(20, 200, generator=g, dtype=torch.float64))
    _, ra = bootstrap_pr_ratio_replicates(base, init, n_boot=100, seed=7)
    _, rb = bootstrap_pr_ratio_replicates(other, init, n_boot=100, seed=7)
    paired = paired_se([ra.numpy()], [rb.numpy()])
    assert paired == pytest.approx(float((ra - rb).std(correction=1)))
    assert paired < 0.5 * math.hypot(float(ra.std(correction=1)), float(rb.std(correction=1)))
    assert paired_se(None, [rb.numpy()]) is None


def _row(observable, value, role="trained", k=2):
    return Row(64, 0, "standard", "clean", "L1", k, "global", None, role, observable, value)


def test_a_variant_replaces_exactly_the_rows_it_measured():
    primary = ResultTable([_row("pr_ratio", 1.5), _row("pr_ratio_se", 0.1), _row("kl", 3.0)])
    entry = MetricTable("key", primary, {}, {"fewer-minors": ResultTable([_row("pr_ratio", 1.2)])})
    under = entry.table_of("fewer-minors")
    assert under.value(observable="pr_ratio") == 1.2 and under.value(observable="kl") == 3.0
    assert under.value(observable="pr_ratio_se") == 0.1 and entry.table_of("primary") == primary


def test_divergence_variants_read_js_and_the_surrogate():
    t = ResultTable([_row("kl", 3.0), _row("kl", 0.5, "null"), _row("kl", 2.5, "surrogate"), _row("js", 0.3),
                     _row("js", 0.01, "null"), _row("js", 0.2, "surrogate"), _row("kl_se", 0.1),
                     _row("kl_se", 0.2, "null"), _row("js_se", 0.03), _row("js_se", 0.002, "null"),
                     _row("kl_se", 0.4, "surrogate"), _row("js_se", 0.04, "surrogate")])
    js = divergence_overlay(t, "js-vs-null")
    assert js.value(observable="kl", role="trained") == 0.3 and js.value(observable="kl", role="null") == 0.01
    assert js.value(observable="kl_se", role="null") == 0.002
    sur = divergence_overlay(t, "kl-vs-surrogate")
    assert sur.value(observable="kl", role="trained") == 3.0 and sur.value(observable="kl", role="null") == 2.5
    assert sur.value(observable="kl_se", role="null") == 0.4
    both = divergence_overlay(t, "js-vs-surrogate")
    assert both.value(observable="kl", role="null") == 0.2 and both.value(observable="kl_se", role="trained") == 0.03


def test_paired_se_of_a_ratio_matches_brute_force():
    rng = np.random.default_rng(1)
    far, near = [rng.normal(1.2, 0.05, 50)], [rng.normal(1.5, 0.05, 50)]
    want = np.std(far[0] / near[0] - 1, ddof=1)
    assert paired_se(far, near, lambda f, n: f / n - 1) == pytest.approx(want)
