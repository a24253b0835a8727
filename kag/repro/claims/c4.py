"""C4: larger networks develop stronger KAG."""

from __future__ import annotations

import numpy as np

from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import per_seed_values, rhos, se_per_seed, seed_mean_se
from kag.repro.prose import explain_rho
from kag.repro.results import Group, Results
from kag.repro.studies import regimes_of
from kag.repro.rules import rho_measurement_se, rule_rho_at_least


RULE = Rule.of("rho >= {min_rho}", min_rho=0.8)


def judge_c4(c: Claim, cell: Cell, r: Results):
    widths = sorted(r.profile.widths)
    k = max(r.profile.metrics.ks)
    at = dict(analysis="global", layer="L1", k=k)
    means = [float(np.mean(per_seed_values(r, n, cell.p["regime"], observable="pr_ratio", role="trained", **at)))
             for n in widths]
    mean_se = [seed_mean_se(se_per_seed(r, n, cell.p["regime"], **at)) for n in widths]
    verdict, v = rule_rho_at_least(widths, means, c.thresholds["min_rho"], rho_measurement_se(widths, means, mean_se))
    return verdict, v, None


CLAIMS_HERE = (
    Claim(
        id="C4",
        rule=RULE,
        order=7,
        estimators=("PR",),
        statement="Larger networks develop stronger KAG.",
        measurement="Spearman rho between width n and the mean PR ratio (L1, k=3)",
        cells_description="each regime",
        cells_of=lambda p: [make_cell("C4", regime=rg) for rg in regimes_of(p)],
        evaluate=judge_c4,
        headline=rhos,
        needs_of=lambda cell, p: [Group(n, cell.p["regime"]) for n in p.widths],
        figure="c4_width",
        explain=explain_rho("the mean PR ratio to rise with width", "n = {}", "fell with width"),
    ),
)
