"""FM1, beyond the paper: the minors' magnitudes against the published replication of Freedman & Mulligan
(arXiv 2509.12326; ``davidprietorod/NN_geometry_and_scaling``), in the xor3d study (docs/SPEC.md §8a).

The replication reports, at width 64 and k = 3, the trained network's smallest 3-minors below 1e-16
where the untrained network's sit near 1e-11. Judged here: the drop of the 1st percentile of |minor|
from init to trained, in decades, per seed, at the largest width.
"""

from __future__ import annotations

from typing import Any

from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import global_values
from kag.repro.prose import explain_lower_bound
from kag.repro.results import Results
from kag.repro.rules import rule_lower_bound_above

RULE = Rule.of("lower bound of the drop (decades) > {min_decades}", min_decades=1.0)
PUBLISHED = {"width": 64, "k": 3, "trained_below": 1e-16, "init_near": 1e-11}  # the replication's README, in words


def judge_fm1(c: Claim, cell: Cell, r: Results):
    n, k = cell.p["n"], cell.p["k"]
    q = {role: global_values(r, n, "L1", k, "log10_minor_q01", role) for role in ("trained", "init")}
    drop = [i - t for i, t in zip(q["init"], q["trained"])]
    verdict, v = rule_lower_bound_above(drop, c.thresholds["min_decades"])
    v["log10_q01_trained"], v["log10_q01_init"] = q["trained"], q["init"]
    v["log10_median_trained"] = global_values(r, n, "L1", k, "log10_minor_median", "trained")
    v["log10_median_init"] = global_values(r, n, "L1", k, "log10_minor_median", "init")
    v["published"] = dict(PUBLISHED)
    return verdict, v, None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _headline(rows: list[dict[str, Any]]) -> str:
    v = rows[0]["values"]
    mean = _mean
    return (f"1st percentile of |minor| 1e{mean(v['log10_q01_init']):.1f} (init) -> 1e{mean(v['log10_q01_trained']):.1f} "
            f"(trained); published 1e-11 -> below 1e-16")


CLAIMS_HERE = (
    Claim(
        id="FM1",
        rule=RULE,
        order=17,
        statement="Beyond the paper (the published replication of Freedman & Mulligan): training pushes the "
                  "smallest 3-minors orders of magnitude below their size at initialisation (there: below 1e-16 "
                  "trained, near 1e-11 untrained, width 64).",
        measurement="drop of the 1st percentile of |minor| from init to trained, in decades "
                    "(log10 q01(init) - log10 q01(trained)), per seed",
        cells_description="largest width, L1, k = 3 (the largest k); standard regime",
        cells_of=lambda p: [make_cell("FM1", n=max(p.widths), k=max(p.metrics.ks))],
        evaluate=judge_fm1,
        headline=_headline,
        beyond_paper=True,
        studies=("xor3d",),
        explain=explain_lower_bound("the smallest minors to drop by more than {t} decade(s) in training",
                                    "they dropped by only {mean} decade(s)"),
    ),
)
