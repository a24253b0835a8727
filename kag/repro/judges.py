"""The judges: how each claim reads the results table of a profile and applies its pre-registered
rule (:mod:`kag.repro.rules`) to one cell, with the cells it is judged on and its headline number.
Every threshold comes from the claim (:data:`kag.repro.criteria.CRITERIA`); none is written here.
"""


from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from kag.experiments.analysis import SPATIAL_ANALYSES, replicate_key
from kag.repro.profiles import Profile
from kag.repro.results import REGIMES, Group, Results
from kag.repro.studies import layers_of
from kag.repro.criteria import Cell, CellsFn, Claim, _cell, _fmt
from kag.repro.rules import (
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
    seed_summary,
)

# -- reading the results table ------------------------------------------------------------------
def _per_seed(results: Results, width: int, regime: str, eval_images: str = "clean", **where: Any) -> list[float]:
    """One value per seed (the profile's seed order) of the rows matching ``where``."""
    return results.table(width, regime, eval_images).seed_values(results.profile.seeds, **where)


def _global(results: Results, n: int, layer: str, k: int, observable: str, role: str = "trained") -> list[float]:
    return _per_seed(results, n, "standard", analysis="global", layer=layer, k=k, observable=observable, role=role)


def _spatial(results: Results, n: int, regime: str, eval_images: str, analysis: str, layer: str, k: int
             ) -> dict[str, list[float]]:
    """Condition -> per-seed PR ratios of one spatial analysis (conditions in measured order)."""
    t = results.table(n, regime, eval_images).select(analysis=analysis, layer=layer, k=k, observable="pr_ratio",
                                                     role="trained")
    return {cond: t.seed_values(results.profile.seeds, condition=cond) for cond in t.unique("condition")}


def _se_per_seed(results: Results, width: int, regime: str, eval_images: str = "clean",
                 observable: str = "pr_ratio", role: str = "trained", **where: Any) -> list[float] | None:
    """Per-seed measurement SEs (rows "<observable>_se") at ``where``; None unless every seed has one."""
    found = results.table(width, regime, eval_images).by_seed(observable=f"{observable}_se", role=role, **where)
    return [found[s] for s in results.profile.seeds] if all(s in found for s in results.profile.seeds) else None


def _global_se(results: Results, n: int, layer: str, k: int, observable: str = "pr_ratio", role: str = "trained"
               ) -> list[float] | None:
    return _se_per_seed(results, n, "standard", observable=observable, role=role, analysis="global", layer=layer, k=k)


def _difference_of_se(se_a: list[float] | None, se_b: list[float] | None) -> float | None:
    """Measurement SE of a seed-paired difference a - b whose parts have per-seed SEs (None if either lacks them)."""
    return None if se_a is None or se_b is None else measurement_se(difference_se(se_a, se_b))


def _mean_se(per_seed_se: list[float] | None) -> float:
    """Measurement SE of a mean over seeds measured independently: sqrt(sum SE²) / n_seeds."""
    if per_seed_se is None:
        return math.nan
    return math.sqrt(sum(se * se for se in per_seed_se)) / len(per_seed_se)


def _spatial_se(results: Results, n: int, regime: str, eval_images: str, analysis: str, layer: str, k: int
                ) -> dict[str, float]:
    """Condition -> measurement SE of the mean PR ratio over seeds, for the conditions whose every seed has an SE."""
    t = results.table(n, regime, eval_images).select(analysis=analysis, layer=layer, k=k, observable="pr_ratio_se",
                                                     role="trained")
    out = {}
    for cond in t.unique("condition"):
        found = t.by_seed(condition=cond)
        if all(s in found for s in results.profile.seeds):
            out[cond] = measurement_se([found[s] for s in results.profile.seeds])
    return out


def _cell_se(per_seed: list[float] | None) -> float | None:
    return None if per_seed is None else measurement_se(per_seed)


def _paired_se(per_seed_a: list[np.ndarray] | None, per_seed_b: list[np.ndarray] | None,
               combine: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.subtract) -> float | None:
    """Measurement SE of a seed-paired comparison from bootstrap replicates drawn with the same draws
    on both sides (same images and index-sample columns): per seed, the SD of ``combine(a, b)`` over
    replicates; the cell's SE is their mean (:func:`measurement_se`). Shared images are accounted
    for, unlike SEs added in quadrature. None when either side has no replicates."""
    if per_seed_a is None or per_seed_b is None:
        return None
    per_seed = []
    for a, b in zip(per_seed_a, per_seed_b):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = combine(np.asarray(a), np.asarray(b))
        values = values[np.isfinite(values)]
        per_seed.append(float(values.std(ddof=1)) if values.size > 1 else math.nan)
    return measurement_se(per_seed)


def _global_replicates(r: Results, n: int, layer: str, k: int) -> list[np.ndarray] | None:
    """Per-seed bootstrap replicates of the PR ratio (trained/init) at (layer, k), under r's variant."""
    return r.replicates(n, "standard", "clean", replicate_key("global", layer, k, None, "trained", r.variant))


def _difference(a: list[float], b: list[float]) -> list[float]:
    return [x - y for x, y in zip(a, b)]


def lower_bounds(rows: list[dict[str, Any]]) -> str:
    lbs = [r["values"]["lower_bound"] for r in rows]
    return f"lower bound {min(lbs):.3g} to {max(lbs):.3g} (threshold {rows[0]['values']['threshold']:g})"


def rhos(rows: list[dict[str, Any]]) -> str:
    return "rho " + ", ".join(f"{r['cell']}: {r['values']['rho']:.2f}" for r in rows[:4])


# -- C1 and N1: KAG emerges; two inits show none --------------------------------------------------
def global_cells(claim: str) -> CellsFn:
    return lambda p: [_cell(claim, n=n, k=k, layer=layer) for n in p.widths for k in p.metrics.ks
                      for layer in layers_of(p)]


def judge_c1_pr(c: Claim, cell: Cell, r: Results):
    p = cell.p
    se = _cell_se(_global_se(r, p["n"], p["layer"], p["k"]))
    verdict, v = rule_lower_bound_above(_global(r, p["n"], p["layer"], p["k"], "pr_ratio"),
                                        c.thresholds["min_lower_bound"], se)
    return verdict, v, None


def judge_c1_kl(c: Claim, cell: Cell, r: Results):
    p = cell.p
    kl = _global(r, p["n"], p["layer"], p["k"], "kl")
    kl_null = _global(r, p["n"], p["layer"], p["k"], "kl", role="null")
    se = _difference_of_se(_global_se(r, p["n"], p["layer"], p["k"], "kl"),
                           _global_se(r, p["n"], p["layer"], p["k"], "kl", role="null"))
    verdict, v = rule_lower_bound_above(_difference(kl, kl_null), c.thresholds["min_lower_bound"], se)
    v["kl"], v["kl_null"] = kl, kl_null
    return verdict, v, None


def judge_c1_rr(c: Claim, cell: Cell, r: Results):
    p = cell.p
    se = _cell_se(_global_se(r, p["n"], p["layer"], p["k"], "rr_ratio"))
    verdict, v = rule_lower_bound_above(_global(r, p["n"], p["layer"], p["k"], "rr_ratio"),
                                        c.thresholds["min_lower_bound"], se)
    return verdict, v, None


# observable -> (key of its summary in a verdict's values, its name in messages)
N1_INPUTS = {"pr": ("pr_ratio_null", "PR ratio (null)"),
             "kl": ("kl_null_difference", "KL(null‖init) - KL(null2‖init)"),
             "rr": ("rr_ratio_null", "RR ratio (null)")}


def judge_n1(c: Claim, cell: Cell, r: Results):
    """The C1-PR, C1-KL and C1-RR rules on an independent init against the init: the PR and RR
    ratios of the null, and KL(null‖init) - KL(null2‖init) with a second independent init.
    Any NaN, Inf or constant input makes the cell invalid."""
    p, t, seeds = cell.p, c.thresholds, r.profile.seeds
    at = dict(n=p["n"], layer=p["layer"], k=p["k"])
    kl_null = _global(r, **at, observable="kl", role="null")
    raw = {"PR ratio (null)": _global(r, **at, observable="pr_ratio", role="null"),
           "RR ratio (null)": _global(r, **at, observable="rr_ratio", role="null"), "KL(null‖init)": kl_null}
    missing = []
    try:
        kl_null2 = _global(r, **at, observable="kl", role="null2")
        raw["KL(null2‖init)"] = kl_null2
    except LookupError:
        kl_null2 = [float("nan")] * len(seeds)
        missing.append("KL(null2‖init) is missing from the metric tables (no second independent initialisation)")
    inputs = {"pr": raw["PR ratio (null)"], "kl": _difference(kl_null, kl_null2), "rr": raw["RR ratio (null)"]}
    se = {"pr": _cell_se(_global_se(r, **at, observable="pr_ratio", role="null")),
          "kl": _difference_of_se(_global_se(r, **at, observable="kl", role="null"),
                                  _global_se(r, **at, observable="kl", role="null2")),
          "rr": _cell_se(_global_se(r, **at, observable="rr_ratio", role="null"))}
    with np.errstate(invalid="ignore"):  # an Inf input is named below, not warned about
        judged = {obs: rule_lower_bound_above(x, t[f"{obs}_min_lower_bound"], se[obs]) for obs, x in inputs.items()}
    judged_inputs = {N1_INPUTS[obs][1]: x for obs, x in inputs.items() if not (obs == "kl" and missing)}
    # NaN/Inf anywhere; a zero std where it is judged (KL(null‖init) alone may be constant over seeds)
    problems = missing + degeneracies(raw, seeds, varying=False) + degeneracies(judged_inputs, seeds, finite=False)
    verdict = control_verdict([v for v, _ in judged.values()], problems)
    values = {N1_INPUTS[obs][0]: v for obs, (_, v) in judged.items()} | {
        "verdicts": {obs: v for obs, (v, _) in judged.items()}, "kl_null": kl_null, "kl_null2": kl_null2,
        "problems": problems}
    detail = "; ".join(f"{N1_INPUTS[obs][1]} {verdict_}: {_fmt(v)}" for obs, (verdict_, v) in judged.items())
    return verdict, values, (f"{'; '.join(problems)}; {detail}" if problems else detail)


def null_lower_bounds(rows: list[dict[str, Any]]) -> str:
    parts = []
    for obs in ("pr", "kl", "rr"):
        lbs = [r["values"][N1_INPUTS[obs][0]]["lower_bound"] for r in rows]
        parts.append(f"{obs.upper()} {min(lbs):.3g} to {max(lbs):.3g}")
    return "null lower bounds: " + ", ".join(parts)


# -- C2, C3, C4: where KAG is stronger ------------------------------------------------------------
def judge_c2(c: Claim, cell: Cell, r: Results):
    n, k = cell.p["n"], cell.p["k"]
    diff = _difference(_global(r, n, "L1", k, "pr_ratio"), _global(r, n, "L2", k, "pr_ratio"))
    se = _paired_se(_global_replicates(r, n, "L1", k), _global_replicates(r, n, "L2", k))
    verdict, v = rule_lower_bound_above(diff, c.thresholds["min_lower_bound"], se)
    return verdict, v, None


def judge_c2_depth(c: Claim, cell: Cell, r: Results):
    """Spearman ρ between layer depth (1, 2, ...) and the mean PR ratio over seeds, every hidden layer."""
    n, k = cell.p["n"], cell.p["k"]
    layers = layers_of(r.profile)
    depth = list(range(1, len(layers) + 1))
    means = [float(np.mean(_global(r, n, layer, k, "pr_ratio"))) for layer in layers]
    mean_se = [_mean_se(_global_se(r, n, layer, k)) for layer in layers]
    verdict, v = rule_rho_at_most(depth, means, c.thresholds["max_rho"], rho_measurement_se(depth, means, mean_se))
    v["layers"] = list(layers)
    return verdict, v, None


def judge_c3(c: Claim, cell: Cell, r: Results):
    n, layer = cell.p["n"], cell.p["layer"]
    lo, hi = min(r.profile.metrics.ks), max(r.profile.metrics.ks)
    diff = _difference(_global(r, n, layer, hi, "pr_ratio"), _global(r, n, layer, lo, "pr_ratio"))
    se = _paired_se(_global_replicates(r, n, layer, hi), _global_replicates(r, n, layer, lo))
    verdict, v = rule_lower_bound_above(diff, c.thresholds["min_lower_bound"], se)
    v["orders"] = [lo, hi]
    return verdict, v, None


def judge_c4(c: Claim, cell: Cell, r: Results):
    widths = sorted(r.profile.widths)
    k = max(r.profile.metrics.ks)
    at = dict(analysis="global", layer="L1", k=k)
    means = [float(np.mean(_per_seed(r, n, cell.p["regime"], observable="pr_ratio", role="trained", **at)))
             for n in widths]
    mean_se = [_mean_se(_se_per_seed(r, n, cell.p["regime"], **at)) for n in widths]
    verdict, v = rule_rho_at_least(widths, means, c.thresholds["min_rho"], rho_measurement_se(widths, means, mean_se))
    return verdict, v, None


# -- C5, C6, C7: spatial analyses at the largest width --------------------------------------------
def spatial_cells(claim: str) -> CellsFn:
    def cells(p: Profile) -> list[Cell]:
        n = max(p.spatial_widths)
        return [_cell(claim, regime=rg, layer=layer, k=k, n=n) for rg in REGIMES for layer in layers_of(p)
                for k in p.metrics.spatial_ks]
    return cells


def own_regime(cell: Cell, profile: Profile) -> list[Group]:
    return [Group(cell.p["n"], cell.p["regime"])]


def measured_on(profile: Profile, regime: str) -> str:
    """The test images a C5-C7 cell of ``regime`` reads: the profile's ``eval_images`` for augmented
    models, clean ones for standard models (SPEC §3). Every named profile says "clean"; the sweep's
    ``eval_images=shifted`` point says "augmented". C8 and C9 name their images per cell instead."""
    return profile.metrics.eval_images if regime == "augmented" else "clean"


def own_images(cell: Cell, profile: Profile) -> list[Group]:
    return [Group(cell.p["n"], cell.p["regime"], measured_on(profile, cell.p["regime"]))]


def _spatial_with_se(r: Results, cell: Cell, analysis: str, regime: str | None = None, eval_images: str | None = None
                     ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per-condition seeds and SEs of one spatial analysis; ``eval_images`` None: the images of :func:`measured_on`."""
    p = cell.p
    regime = regime or p["regime"]
    at = (p["n"], regime, eval_images or measured_on(r.profile, regime), analysis, p["layer"], p["k"])
    return _spatial(r, *at), _spatial_se(r, *at)


def _spatial_replicates(r: Results, cell: Cell, analysis: str, condition: str, regime: str | None = None,
                        eval_images: str | None = None) -> list[np.ndarray] | None:
    """Per-seed bootstrap replicates of one spatial condition's PR ratio, under r's variant."""
    p = cell.p
    regime = regime or p["regime"]
    images = eval_images or measured_on(r.profile, regime)
    return r.replicates(p["n"], regime, images, replicate_key(analysis, p["layer"], p["k"], condition, "trained",
                                                               r.variant))


def _on_images(r: Results, cell: Cell, detail: str) -> str:
    """A C5-C7 cell's detail, saying so when its models were measured on shifted test images."""
    shifted = measured_on(r.profile, cell.p["regime"]) == "augmented"
    return f"on shifted test images: {detail}" if shifted else detail


def judge_c5(c: Claim, cell: Cell, r: Results):
    p = cell.p
    per, se = _spatial_with_se(r, cell, "balls")
    verdict, v = rule_scale_agnostic(per, c.thresholds["min_lower_bound"], c.thresholds["max_spread"], se)
    sizes = r.table(p["n"], p["regime"], measured_on(r.profile, p["regime"])).select(
        analysis="balls", layer=p["layer"], k=p["k"], observable="pool_size", seed=r.profile.seeds[0])
    v["pool_size"] = {row.condition: row.value for row in sizes}
    detail = ("; ".join(f"r={rad}: {_fmt(s)}" for rad, s in v["conditions"].items())
              + f"; spread {v['spread']:.4g} (smallest consistent with the error bars {v['min_spread']:.4g})")
    return verdict, v, _on_images(r, cell, detail)


def judge_c6(c: Claim, cell: Cell, r: Results):
    per, se = _spatial_with_se(r, cell, "patches")
    verdict, v = rule_all_above(per, c.thresholds["min_lower_bound"], se)
    return verdict, v, _on_images(r, cell, "; ".join(f"{name}: {_fmt(s)}" for name, s in v["conditions"].items()))


def judge_c7(c: Claim, cell: Cell, r: Results):
    per, se = _spatial_with_se(r, cell, "separation")
    ds = sorted(per, key=float)
    reps = {d: _spatial_replicates(r, cell, "separation", d) for d in (ds[0], ds[-1])}
    change_se = _paired_se(reps[ds[-1]], reps[ds[0]], lambda far, near: far / near - 1.0)
    verdict, v = rule_persists(per[ds[0]], per[ds[-1]], c.thresholds["min_lower_bound"],
                               c.thresholds["max_relative_change"], se.get(ds[0]), se.get(ds[-1]), change_se)
    v["conditions"] = {d: seed_summary(per[d], se.get(d)) for d in ds}
    v["d_near"], v["d_far"] = float(ds[0]), float(ds[-1])
    lo, hi = v["change_interval"]
    detail = (f"d={ds[-1]}: {_fmt(v['far'])}; d={ds[0]}: mean {v['near']['mean']:.4g}; "
              f"change {v['relative_change']:+.3f} (interval {lo:+.3f} to {hi:+.3f})")
    return verdict, v, _on_images(r, cell, detail)


def patch_lower_bounds(rows: list[dict[str, Any]]) -> str:
    lbs = [s["lower_bound"] for r in rows for s in r["values"]["conditions"].values()]
    return f"patch lower bounds {min(lbs):.3g} to {max(lbs):.3g}"


# -- C8: augmentation -----------------------------------------------------------------------------
def c8_cells(p: Profile) -> list[Cell]:
    n = max(p.spatial_widths)
    return [_cell("C8", analysis=a, layer=layer, k=k, eval=e, n=n)
            for e in ("clean", "augmented") for a in SPATIAL_ANALYSES for layer in layers_of(p)
            for k in p.metrics.spatial_ks]


def judge_c8(c: Claim, cell: Cell, r: Results):
    p, t = cell.p, c.thresholds
    std = _spatial(r, p["n"], "standard", "clean", p["analysis"], p["layer"], p["k"])
    aug, se = _spatial_with_se(r, cell, p["analysis"], "augmented", p["eval"])
    verdict, v = rule_reduction(std, aug, t["min_reduction"], t["max_reduction"], t["min_lower_bound"], se,
                                _reduction_se(r, cell, list(std)))
    lo, hi = v["reduction_interval"]
    detail = (f"reduction {v['reduction']:.3f} (standard mean {v['mean_standard']:.4g}, augmented mean "
              f"{v['mean_augmented']:.4g}; per-seed interval {lo:.3f} to {hi:.3f}); augmented lower bounds all > "
              f"{t['min_lower_bound']}: {v['augmented_all_above']}")
    return verdict, v, detail


def _reduction_se(r: Results, cell: Cell, conditions: list[str]) -> float | None:
    """Measurement SE of C8's per-seed reduction 1 - mean(aug)/mean(std) over the conditions, from the
    two regimes' bootstrap replicates (same images, index samples and draws: paired)."""
    p = cell.p
    sides = []
    for regime, images in (("standard", "clean"), ("augmented", p["eval"])):
        reps = [_spatial_replicates(r, cell, p["analysis"], cond, regime, images) for cond in conditions]
        if any(x is None for x in reps):
            return None
        sides.append([np.mean([reps[c][s] for c in range(len(conditions))], axis=0) for s in range(len(r.profile.seeds))])
    return _paired_se(sides[1], sides[0], lambda aug, std: 1.0 - aug / std)


# -- C9, C10, C11 ---------------------------------------------------------------------------------
def c9_cells(p: Profile) -> list[Cell]:
    return [_cell("C9", regime=rg, n=n, eval=e) for rg, e in (("standard", "clean"), ("augmented", "clean"),
                                                               ("augmented", "augmented")) for n in p.widths]


def judge_c9(c: Claim, cell: Cell, r: Results):
    p, t = cell.p, c.thresholds
    images = "shifted" if p["eval"] == "augmented" else "clean"
    accuracy = _per_seed(r, p["n"], p["regime"], analysis="accuracy", observable="test_accuracy", condition=images)
    se = _cell_se(_se_per_seed(r, p["n"], p["regime"], observable="test_accuracy", analysis="accuracy",
                               condition=images))
    verdict, v = rule_mean_at_least(accuracy, t["min_standard"] if p["regime"] == "standard" else t["min_augmented"],
                                    se)
    return verdict, v, None


def judge_c10(c: Claim, cell: Cell, r: Results):
    p = cell.p
    at = dict(analysis="zero_rows", layer=p["layer"])
    zero = {role: _per_seed(r, p["n"], "standard", observable="zero_row_fraction", role=role, **at)
            for role in ("trained", "init")}
    se = _difference_of_se(*(_se_per_seed(r, p["n"], "standard", observable="zero_row_fraction", role=role, **at)
                             for role in ("trained", "init")))
    verdict, v = rule_lower_bound_above(_difference(zero["trained"], zero["init"]), c.thresholds["min_lower_bound"],
                                        se)
    v["trained"], v["init"] = zero["trained"], zero["init"]
    return verdict, v, None


def judge_c11(c: Claim, cell: Cell, r: Results):
    timeline = r.table(cell.p["n"], "standard").select(analysis="timeline")
    t = timeline.select(observable="pr_ratio")
    epochs = t.unique("condition")
    per_seed = [[t.value(seed=s, condition=e) for e in epochs] for s in r.profile.seeds]
    se_rows = timeline.select(observable="pr_ratio_se")
    found = [se_rows.by_seed(condition=e) for e in epochs]
    mean_se = [_mean_se([f[s] for s in r.profile.seeds] if all(s in f for s in r.profile.seeds) else None)
               for f in found]
    x, y = [int(e) for e in epochs], np.mean(per_seed, axis=0).tolist()
    verdict, v = rule_rho_at_least(x, y, c.thresholds["min_rho"], rho_measurement_se(x, y, mean_se))
    v["per_seed"] = per_seed
    return verdict, v, None


# -- N2: more than norms ------------------------------------------------------------------------
N2_OBSERVABLES = ("PR", "KL", "RR")
# observable -> (the judged per-seed value, its measurement SE): rows of role "surrogate" (kag.experiments.analysis)
_N2_ROWS = {"PR": ("pr_trained_over", "pr_trained_over_se"), "KL": ("kl_minus_surrogate", "kl_minus_surrogate_se"),
            "RR": ("rr_trained_over", "rr_trained_over_se")}


def judge_n2(c: Claim, cell: Cell, r: Results):
    """PR(trained)/PR(surrogate), KL(trained‖init) - KL(surrogate‖init) or RR(trained)/RR(surrogate),
    each SE from a seed-paired bootstrap of that comparison itself (kag.experiments.analysis)."""
    p = cell.p
    obs = p.get("obs", "PR")
    value, se_name = _N2_ROWS[obs]
    values = _global(r, p["n"], p["layer"], p["k"], value, role="surrogate")
    per_seed_se = _global_se(r, p["n"], p["layer"], p["k"], value, role="surrogate")
    verdict, v = rule_lower_bound_above(values, c.thresholds[f"{obs.lower()}_min_lower_bound"], _cell_se(per_seed_se))
    return verdict, v, None

