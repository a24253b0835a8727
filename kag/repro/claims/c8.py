"""C8: augmentation lowers the PR ratios by about 30% but keeps them above 1."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kag.experiments.analysis import SPATIAL_ANALYSES
from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import paired_se, spatial_replicates, spatial_values, spatial_with_se
from kag.repro.prose import (as_num, cells_text, conditions_of, explain_generic, misses, pct, span,
                             tally_text)
from kag.repro.profiles import Profile
from kag.repro.results import Group, Results
from kag.repro.rules import rule_reduction
from kag.repro.studies import layers_of


RULE = Rule.of("reduction in [{min_reduction}, {max_reduction}] and augmented lower bound > {min_lower_bound} in "
               "every condition", min_reduction=0.15, max_reduction=0.50, min_lower_bound=1.0)


def c8_cells(p: Profile) -> list[Cell]:
    if not p.spatial_widths:  # a study without pixels (xor3d) has no spatial cells
        return []
    n = max(p.spatial_widths)
    return [make_cell("C8", analysis=a, layer=layer, k=k, eval=e, n=n)
            for e in ("clean", "augmented") for a in SPATIAL_ANALYSES for layer in layers_of(p)
            for k in p.metrics.spatial_ks]


def judge_c8(c: Claim, cell: Cell, r: Results):
    p, t = cell.p, c.thresholds
    std = spatial_values(r, p["n"], "standard", "clean", p["analysis"], p["layer"], p["k"])
    aug, se = spatial_with_se(r, cell, p["analysis"], "augmented", p["eval"])
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
        reps = [spatial_replicates(r, cell, p["analysis"], cond, regime, images) for cond in conditions]
        if any(x is None for x in reps):
            return None
        sides.append([np.mean([reps[c][s] for c in range(len(conditions))], axis=0)
                      for s in range(len(r.profile.seeds))])
    return paired_se(sides[1], sides[0], lambda aug, std: 1.0 - aug / std)


def explain_c8(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if misses(c, r)]
    v0 = miss[0]["values"]
    lo, hi = (as_num(x) for x in v0.get("range") or (math.nan, math.nan))
    t = as_num(v0.get("min_lower_bound"))
    red = {id(r): as_num(r["values"].get("reduction")) for r in miss}
    groups = (([r for r in miss if red[id(r)] < 0], "raised them by {}", lambda x: -x),
              ([r for r in miss if 0 <= red[id(r)] < lo], "lowered them by only {}", lambda x: x),
              ([r for r in miss if red[id(r)] > hi], f"lowered them by {{}}, more than {pct([hi])}", lambda x: x))
    parts = [f"{cells_text(sub, rows)} it {text.format(pct(sign(red[id(r)]) for r in sub))}"
             for sub, text, sign in groups if sub]
    undefined = [r for r in miss if math.isnan(red[id(r)])]
    if undefined:
        parts.append(f"{cells_text(undefined, rows)} the reduction was undefined")
    aug = {id(r): conditions_of(r, "augmented_conditions") for r in miss}
    low = [r for r in miss if any(as_num(s.get("upper_bound")) <= t for s in aug[id(r)])]
    if low:
        means = [min(as_num(s.get("mean")) for s in aug[id(r)]) for r in low]
        parts.append(f"{cells_text(low, rows)} the augmented PR ratio was at or below {t:g} in some condition "
                     f"(lowest mean {span(means)})")
    unclear = [r for r in miss if r not in low and r["values"].get("augmented_all_above") is False]
    if unclear:
        lbs = [min(as_num(s.get("lower_bound")) for s in aug[id(r)]) for r in unclear]
        parts.append(f"{cells_text(unclear, rows)} the seeds could not tell the augmented PR ratio from {t:g} in some "
                     f"condition (lowest lower bound {span(lbs)})")
    if not parts:
        return explain_generic(c, rows)
    return (f"Expected augmentation to lower the PR ratios by {pct([lo, hi])} and keep them above {t:g}, but "
            + "; ".join(parts) + f"; {tally_text(miss)}")


CLAIMS_HERE = (
    Claim(
        id="C8",
        rule=RULE,
        order=11,
        estimators=("PR",),
        statement="Augmentation lowers PR ratios by about 30% but keeps them above 1.",
        measurement="reduction = 1 - mean PR ratio(augmented)/mean PR ratio(standard), averaged over an analysis' "
                    "conditions",
        cells_description="each spatial analysis, layer, k; augmented models on clean and on shifted test images; "
                          "largest width",
        cells_of=c8_cells,
        evaluate=judge_c8,
        headline=lambda rows: "reduction {:.2f} to {:.2f}".format(min(r["values"]["reduction"] for r in rows),
                                                         max(r["values"]["reduction"] for r in rows)),
        needs_of=lambda cell, p: [Group(cell.p["n"], "standard"), Group(cell.p["n"], "augmented", cell.p["eval"])],
        figure="augmentation",
        explain=explain_c8,
    ),
)
