"""What the judges share: how a claim reads the results table of a profile (per-seed values, their
measurement SEs and bootstrap replicates), the cells most claims are judged on, and their headline
numbers. Each claim's own judge lives in its module of :mod:`kag.repro.claims`; every threshold comes
from the claim's rule, none is written here.
"""


from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from kag.experiments.analysis import replicate_key
from kag.repro.profiles import Profile
from kag.repro.results import Group, Results
from kag.repro.studies import layers_of, regimes_of
from kag.repro.criteria import Cell, CellsFn, make_cell
from kag.repro.rules import difference_se, measurement_se

# -- reading the results table ------------------------------------------------------------------
def per_seed_values(results: Results, width: int, regime: str, eval_images: str = "clean", **where: Any) -> list[float]:
    """One value per seed (the profile's seed order) of the rows matching ``where``."""
    return results.table(width, regime, eval_images).seed_values(results.profile.seeds, **where)


def global_values(results: Results, n: int, layer: str, k: int, observable: str, role: str = "trained") -> list[float]:
    return per_seed_values(results, n, "standard", analysis="global", layer=layer, k=k, observable=observable,
                           role=role)


def spatial_values(results: Results, n: int, regime: str, eval_images: str, analysis: str, layer: str, k: int
             ) -> dict[str, list[float]]:
    """Condition -> per-seed PR ratios of one spatial analysis (conditions in measured order)."""
    t = results.table(n, regime, eval_images).select(analysis=analysis, layer=layer, k=k, observable="pr_ratio",
                                                     role="trained")
    return {cond: t.seed_values(results.profile.seeds, condition=cond) for cond in t.unique("condition")}


def se_per_seed(results: Results, width: int, regime: str, eval_images: str = "clean",
                 observable: str = "pr_ratio", role: str = "trained", **where: Any) -> list[float] | None:
    """Per-seed measurement SEs (rows "<observable>_se") at ``where``; None unless every seed has one."""
    found = results.table(width, regime, eval_images).by_seed(observable=f"{observable}_se", role=role, **where)
    return [found[s] for s in results.profile.seeds] if all(s in found for s in results.profile.seeds) else None


def global_se(results: Results, n: int, layer: str, k: int, observable: str = "pr_ratio", role: str = "trained"
               ) -> list[float] | None:
    return se_per_seed(results, n, "standard", observable=observable, role=role, analysis="global", layer=layer, k=k)


def difference_of_se(se_a: list[float] | None, se_b: list[float] | None) -> float | None:
    """Measurement SE of a seed-paired difference a - b whose parts have per-seed SEs (None if either lacks them)."""
    return None if se_a is None or se_b is None else measurement_se(difference_se(se_a, se_b))


def seed_mean_se(per_seed_se: list[float] | None) -> float:
    """Measurement SE of a mean over seeds measured independently: sqrt(sum SE²) / n_seeds."""
    if per_seed_se is None:
        return math.nan
    return math.sqrt(sum(se * se for se in per_seed_se)) / len(per_seed_se)


def spatial_se(results: Results, n: int, regime: str, eval_images: str, analysis: str, layer: str, k: int
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


def cell_se(per_seed: list[float] | None) -> float | None:
    return None if per_seed is None else measurement_se(per_seed)


def paired_se(per_seed_a: list[np.ndarray] | None, per_seed_b: list[np.ndarray] | None,
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


def global_replicates(r: Results, n: int, layer: str, k: int) -> list[np.ndarray] | None:
    """Per-seed bootstrap replicates of the PR ratio (trained/init) at (layer, k), under r's variant."""
    return r.replicates(n, "standard", "clean", replicate_key("global", layer, k, None, "trained", r.variant))


def difference(a: list[float], b: list[float]) -> list[float]:
    return [x - y for x, y in zip(a, b)]


def lower_bounds(rows: list[dict[str, Any]]) -> str:
    lbs = [r["values"]["lower_bound"] for r in rows]
    return f"lower bound {min(lbs):.3g} to {max(lbs):.3g} (threshold {rows[0]['values']['threshold']:g})"


def rhos(rows: list[dict[str, Any]]) -> str:
    return "rho " + ", ".join(f"{r['cell']}: {r['values']['rho']:.2f}" for r in rows[:4])


# -- C1 and N1: KAG emerges; two inits show none --------------------------------------------------
def global_cells(claim: str) -> CellsFn:
    return lambda p: [make_cell(claim, n=n, k=k, layer=layer) for n in p.widths for k in p.metrics.ks
                      for layer in layers_of(p)]


# -- C2, C3, C4: where KAG is stronger ------------------------------------------------------------


# -- C5, C6, C7: spatial analyses at the largest width --------------------------------------------
def spatial_cells(claim: str) -> CellsFn:
    def cells(p: Profile) -> list[Cell]:
        if not p.spatial_widths:  # a study without pixels (xor3d) has no spatial cells
            return []
        n = max(p.spatial_widths)
        return [make_cell(claim, regime=rg, layer=layer, k=k, n=n) for rg in regimes_of(p) for layer in layers_of(p)
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


def spatial_with_se(r: Results, cell: Cell, analysis: str, regime: str | None = None, eval_images: str | None = None
                     ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per-condition seeds and SEs of one spatial analysis; ``eval_images`` None: the images of :func:`measured_on`."""
    p = cell.p
    regime = regime or p["regime"]
    at = (p["n"], regime, eval_images or measured_on(r.profile, regime), analysis, p["layer"], p["k"])
    return spatial_values(r, *at), spatial_se(r, *at)


def spatial_replicates(r: Results, cell: Cell, analysis: str, condition: str, regime: str | None = None,
                        eval_images: str | None = None) -> list[np.ndarray] | None:
    """Per-seed bootstrap replicates of one spatial condition's PR ratio, under r's variant."""
    p = cell.p
    regime = regime or p["regime"]
    images = eval_images or measured_on(r.profile, regime)
    return r.replicates(p["n"], regime, images, replicate_key(analysis, p["layer"], p["k"], condition, "trained",
                                                               r.variant))


def on_images(r: Results, cell: Cell, detail: str) -> str:
    """A C5-C7 cell's detail, saying so when its models were measured on shifted test images."""
    shifted = measured_on(r.profile, cell.p["regime"]) == "augmented"
    return f"on shifted test images: {detail}" if shifted else detail


# -- C8: augmentation -----------------------------------------------------------------------------


# -- C9, C10, C11 ---------------------------------------------------------------------------------


# -- N2: more than norms ------------------------------------------------------------------------


