"""Fake results for unit tests of the claims and the report: a results table built from a function."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

from kag.errors import MissingResults
from kag.experiments.table import ResultTable, Row


ZERO_MINORS = {"trained": 0.1, "init": 0.02}  # exact-zero fraction of the minors per unit of k


class FakeResults:
    """A results table built from ``value(**row identity) -> float`` for every row a profile's
    claims read, including the per-seed measurement SEs ("pr_ratio_se" global, spatial and timeline,
    "rr_ratio_se", "kl_se", "zero_row_fraction_se", "test_accuracy_se"), KL of a second null
    init (role "null2") and the exact-zero fraction of the minors (:data:`ZERO_MINORS`); ``table(n, regime,
    eval_images)`` filters it exactly as the real :class:`Results`."""

    store = SimpleNamespace(root=Path("/nonexistent/fake-store"))
    mnist = SimpleNamespace(sha256="0" * 64, source="fake", name="mnist")

    def __init__(self, profile, value):
        self.profile = profile
        m, rows = profile.metrics, []
        for n in profile.widths:
            for regime, ev in (("standard", "clean"), ("augmented", "clean"), ("augmented", "augmented")):
                if ev == "augmented" and n not in profile.spatial_widths:
                    continue
                for seed in profile.seeds:
                    def add(analysis, observable, *, layer=None, k=None, condition=None, role="trained"):
                        ident = dict(width=n, seed=seed, regime=regime, eval_images=ev, layer=layer, k=k,
                                     analysis=analysis, condition=condition, role=role, observable=observable)
                        rows.append(Row(**ident, value=float(value(**ident))))

                    for cond in ("clean", "shifted"):
                        add("accuracy", "test_accuracy", condition=cond)
                        add("accuracy", "test_accuracy_se", condition=cond)
                    for layer in ("L1", "L2"):
                        for role in ("trained", "init", "null"):
                            add("zero_rows", "zero_row_fraction", layer=layer, role=role)
                            add("zero_rows", "zero_row_fraction_se", layer=layer, role=role)
                        for k in m.ks:
                            for obs in ("pr_ratio", "kl", "rr_ratio"):
                                for role in ("trained", "null"):
                                    add("global", obs, layer=layer, k=k, role=role)
                            for role in ("trained", "null", "null2"):
                                add("global", "kl_se", layer=layer, k=k, role=role)
                            add("global", "kl", layer=layer, k=k, role="null2")
                            add("global", "pr_ratio_se", layer=layer, k=k)
                            add("global", "pr_ratio_se", layer=layer, k=k, role="null")
                            add("global", "rr_ratio_se", layer=layer, k=k)
                            add("global", "rr_ratio_se", layer=layer, k=k, role="null")
                            for role in ("trained", "init"):  # FM1: the minors' magnitudes (xor3d measures them)
                                add("global", "log10_minor_q01", layer=layer, k=k, role=role)
                                add("global", "log10_minor_median", layer=layer, k=k, role=role)
                            for role, zero in ZERO_MINORS.items():  # the same made-up fractions in every world
                                rows.append(Row(width=n, seed=seed, regime=regime, eval_images=ev, layer=layer, k=k,
                                                analysis="global", condition=None, role=role,
                                                observable="zero_minor_fraction", value=zero * k))
                            if regime == "standard":  # N2: trained against the norm-matched surrogate
                                for obs in ("pr_trained_over", "kl_minus_surrogate", "rr_trained_over"):
                                    add("global", obs, layer=layer, k=k, role="surrogate")
                                    add("global", f"{obs}_se", layer=layer, k=k, role="surrogate")
                        if n in profile.spatial_widths:
                            for k in m.spatial_ks:
                                for analysis, conds in (("balls", m.radii), ("patches", ("top-left", "centre")),
                                                        ("separation", m.separations)):
                                    for c in conds:
                                        add(analysis, "pr_ratio", layer=layer, k=k, condition=str(c))
                                        add(analysis, "pr_ratio_se", layer=layer, k=k, condition=str(c))
                                        add(analysis, "pool_size", layer=layer, k=k, condition=str(c), role="none")
                                        for role, zero in ZERO_MINORS.items():  # a different share per condition
                                            rows.append(Row(width=n, seed=seed, regime=regime, eval_images=ev,
                                                            layer=layer, k=k, analysis=analysis, condition=str(c),
                                                            role=role, observable="zero_minor_fraction",
                                                            value=zero * k * (1 + conds.index(c))))
                    if regime == "standard":
                        for epoch in range(5):
                            add("timeline", "pr_ratio", layer="L1", k=3, condition=str(epoch))
                            add("timeline", "pr_ratio_se", layer="L1", k=3, condition=str(epoch))
        self._table = ResultTable(rows)

    variant = "primary"  # the estimator claims read; the fake measures the primary only

    def under(self, variant):
        """As :meth:`kag.repro.results.Results.under`: the fake has no variant rows, so the primary's."""
        view = copy.copy(self)
        view.variant = variant
        return view

    def replicates(self, width, regime, eval_images, key):
        """No bootstrap replicates are stored in the fake: paired SEs are unknown (None)."""
        return None

    def table(self, width, regime, eval_images="clean"):
        """One group's rows, built once (as :meth:`kag.repro.results.Results.table` memoises its tables: a
        fresh selection would rebuild its lookup index on every call)."""
        memo = self.__dict__.setdefault("_groups", {})
        key = (width, regime, eval_images)
        if key not in memo or memo[key][0] is not self._table:  # a test may swap the table for a filtered one
            memo[key] = (self._table, self._table.select(width=width, regime=regime, eval_images=eval_images))
        return memo[key][1]

    def available(self, groups=None):
        return self._table

    def available_variants(self, groups=None):
        """As :meth:`kag.repro.results.Results.available_variants`: no variant rows in the fake."""
        return {}

    def entries(self, width, regime, eval_images="clean"):
        raise MissingResults("fake results keep no store entries")


def kag_like(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable):
    """Trained networks concentrate (more in L1, at higher k, at larger widths), inits do not;
    augmentation lowers PR ratios by 25%; accuracy is high; KAG grows with the epoch; each PR
    ratio carries a bootstrap SE of 0.01 (seed 0) to 0.03 (seed 2), a zero-row fraction 0.0002 to 0.0006;
    the smallest minors drop 3 decades in training."""
    if observable == "zero_row_fraction_se":
        return 0.0002 * (1 + seed)
    if observable.startswith("log10_minor"):
        return (-11.0 if role == "init" else -14.0 - 0.1 * seed) + (5.0 if observable.endswith("median") else 0.0)
    if observable.endswith("_se"):
        return 0.01 * (1 + seed)
    if observable in ("pr_trained_over", "rr_trained_over"):
        return 1.3 + 0.01 * seed
    if observable == "kl_minus_surrogate":
        return 0.3 + 0.01 * seed
    if observable == "test_accuracy":
        return 0.99 if condition == "clean" else 0.96
    if observable == "zero_row_fraction":
        return {"trained": 0.05 + 0.001 * seed, "init": 0.01, "null": 0.01}[role]
    if observable == "pool_size":
        return 100.0
    if analysis == "timeline":
        return 1 + 0.1 * int(condition)
    if role in ("null", "null2"):
        return random_like_null(seed, role, observable)
    if observable == "kl":
        return 1.0 + 0.1 * seed
    if observable == "rr_ratio":
        return 1.5 + 0.01 * seed
    base = 1.2 + width / 512 + (k or 2) / 3 + (0.3 if layer == "L1" else 0) + 0.001 * seed
    return base * (0.75 if regime == "augmented" else 1.0)


def random_like_null(seed, role, observable):
    """An independent init against the init: ratios scattered around 1, two nulls' KLs alike."""
    if observable == "kl":
        return 0.1 + 0.01 * (seed if role == "null" else [2, 0, 1][seed])
    return [0.9, 1.0, 1.1][seed]


def anti_kag(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable):
    """Every claim contradicted: trained PR/RR ratios below 1 (less in L1, at higher k, at larger
    widths), KL below the null's, augmentation raising PR ratios by 30%, low accuracy, fewer zero
    rows, KAG fading with the epoch, the smallest minors rising in training; the nulls random-like."""
    if observable == "zero_row_fraction_se":
        return 0.0001
    if observable.startswith("log10_minor"):
        return -11.0 if role == "init" else -10.9 + 0.01 * seed
    if observable.endswith("_se"):
        return 0.01
    if observable in ("pr_trained_over", "rr_trained_over"):
        return 0.8 + 0.001 * seed
    if observable == "kl_minus_surrogate":
        return -0.2 + 0.001 * seed
    if observable == "test_accuracy":
        return 0.5 + 0.001 * seed
    if observable == "zero_row_fraction":
        return {"trained": 0.005, "init": 0.01 + 0.0001 * seed, "null": 0.01}[role]
    if observable == "pool_size":
        return 100.0
    if analysis == "timeline":
        return 2.0 - 0.1 * int(condition)
    if role in ("null", "null2"):
        return random_like_null(seed, role, observable)
    if observable == "kl":
        return 0.05 + 0.001 * seed
    if observable == "rr_ratio":
        return 0.8 + 0.01 * seed
    if analysis in ("balls", "patches", "separation"):
        return (0.6 + 0.001 * seed) * (1.3 if regime == "augmented" else 1.0)
    return 0.9 - width / 2048 - k / 30 - (0.05 if layer == "L1" else 0) + 0.001 * seed


NOISE = (-1.0, 0.0, 1.0)  # seed -> a spread that makes every error bar straddle its threshold


def noisy(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable):
    """Every claim inconclusive: each judged quantity's error bars straddle its threshold (C4's
    means are equal across widths: an undefined rho), the nulls random-like."""
    from kag.repro.claims import CRITERIA

    e = NOISE[seed]
    if observable.endswith("_se"):
        return 0.01
    if observable.startswith("log10_minor"):  # drops of 0.5, 1 and 1.5 decades: FM1's error bars straddle 1
        return -11.0 if role == "init" else -12.0 - 0.5 * e
    if observable in ("pr_trained_over", "rr_trained_over"):
        return 1.0 + 0.1 * e
    if observable == "kl_minus_surrogate":
        return 0.1 * e
    if observable == "test_accuracy":
        t = CRITERIA["C9"].thresholds["min_standard" if regime == "standard" else "min_augmented"]
        return t - 0.005 + 0.01 * e
    if observable == "zero_row_fraction":
        return {"trained": 0.01 + 0.01 * e, "init": 0.01, "null": 0.01}[role]
    if observable == "pool_size":
        return 100.0
    if analysis == "timeline":
        return [1.0, 5.0, 2.0, 4.0, 3.0][int(condition)]  # rho 0.3
    if role in ("null", "null2"):
        return random_like_null(seed, role, observable)
    if observable == "kl":
        return random_like_null(seed, "null", "kl") + 0.1 * e
    if analysis in ("balls", "patches", "separation"):
        standard = 1.3 + 0.2 * e
        # per-seed reductions -0.1, 0.1, 0.3: a mean of 0.1 whose interval reaches into [0.15, 0.5]
        return standard * (1 - (0.1 - 0.2 * e)) if regime == "augmented" else standard
    # opposite signs in L1 and L2, and at k = 1 and k > 1: C2's and C3's differences straddle 0
    sign = 1.0 if (layer == "L1") != (k == 1) else -1.0
    return 1.0 + 0.2 * e * sign


def null_shows_kag(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable):
    """As :func:`kag_like`, but the null looks trained: its PR and RR ratios sit above 1 and its KL
    from the init exceeds the second null's, so the control N1 shows KAG in every cell."""
    if role in ("null", "null2") and analysis == "global" and observable in ("pr_ratio", "rr_ratio", "kl"):
        if observable == "kl":
            return 1.0 + 0.02 * seed if role == "null" else 0.1 + 0.01 * seed
        return 1.5 + 0.01 * seed
    return kag_like(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable)


def null_with_nan(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable):
    """As :func:`kag_like`, but the null's PR ratio is NaN at seed 1: every N1 cell is invalid."""
    if role == "null" and observable == "pr_ratio" and analysis == "global" and seed == 1:
        return float("nan")
    return kag_like(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable)


def scaled_augmentation(factor):
    """A :func:`kag_like` world whose augmented spatial PR ratios are ``factor`` times the standard
    ones (kag_like's own factor is 0.75): factor 1.6 raises them by 60%, 0.9 lowers them by 10%."""
    def value(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable):
        v = kag_like(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable)
        if regime == "augmented" and analysis in ("balls", "patches", "separation") and observable == "pr_ratio":
            return v / 0.75 * factor
        return v
    return value


class CachedFakeResults(FakeResults):
    """:class:`FakeResults` whose :meth:`entries` answer as a store holding every table would: one
    entry per seed, with made-up metric and model keys (the sweep report counts them)."""

    store = SimpleNamespace(root=Path("/nonexistent/fake-store"), read_manifest=lambda key: {"device": "cpu"})

    def entries(self, width, regime, eval_images="clean"):
        return [SimpleNamespace(key=f"metrics-{self.profile.name}-{width}-{regime}-{eval_images}-{seed}",
                                meta={"model_key": f"model-{self.profile.name}-{width}-{regime}-{seed}"})
                for seed in self.profile.seeds]
