"""C2-depth, beyond the paper: in a deeper network the PR ratio falls from layer to layer (SPEC §8a)."""

from __future__ import annotations

import numpy as np

from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import global_se, global_values, rhos, seed_mean_se
from kag.repro.prose import explain_rho
from kag.repro.results import Results
from kag.repro.rules import rho_measurement_se, rule_rho_at_most
from kag.repro.studies import layers_of


RULE = Rule.of("rho <= {max_rho}", max_rho=-0.8)


def judge_c2_depth(c: Claim, cell: Cell, r: Results):
    """Spearman ρ between layer depth (1, 2, ...) and the mean PR ratio over seeds, every hidden layer."""
    n, k = cell.p["n"], cell.p["k"]
    layers = layers_of(r.profile)
    depth = list(range(1, len(layers) + 1))
    means = [float(np.mean(global_values(r, n, layer, k, "pr_ratio"))) for layer in layers]
    mean_se = [seed_mean_se(global_se(r, n, layer, k)) for layer in layers]
    verdict, v = rule_rho_at_most(depth, means, c.thresholds["max_rho"], rho_measurement_se(depth, means, mean_se))
    v["layers"] = list(layers)
    return verdict, v, None


CLAIMS_HERE = (
    Claim(
        id="C2-depth",
        rule=RULE,
        order=5,
        estimators=("PR",),
        statement="Beyond the paper (a 2026 talk of the same group: the geometry is highest in early layers and "
                  "falls with depth): in a deeper network the PR ratio falls from layer to layer.",
        measurement="Spearman rho between layer depth (1, 2, ...) and the mean PR ratio over seeds, every hidden layer",
        cells_description="every n, k >= 2; standard regime; networks of 3 or more hidden layers",
        cells_of=lambda p: [make_cell("C2-depth", n=n, k=k) for n in p.widths for k in p.metrics.ks if k >= 2],
        evaluate=judge_c2_depth,
        headline=rhos,
        figure="c2_depth",
        min_layers=3,
        beyond_paper=True,
        explain=explain_rho("the mean PR ratio to fall with depth", "layer {}", "rose with depth", relation="<="),
    ),
)
