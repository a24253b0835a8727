"""C2: layer 1 shows stronger KAG than layer 2."""

from __future__ import annotations

from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import difference, global_replicates, global_values, lower_bounds, paired_se
from kag.repro.prose import explain_lower_bound
from kag.repro.results import Results
from kag.repro.rules import rule_lower_bound_above


RULE = Rule.of("lower bound > {min_lower_bound}", min_lower_bound=0.0)


def judge_c2(c: Claim, cell: Cell, r: Results):
    n, k = cell.p["n"], cell.p["k"]
    diff = difference(global_values(r, n, "L1", k, "pr_ratio"), global_values(r, n, "L2", k, "pr_ratio"))
    se = paired_se(global_replicates(r, n, "L1", k), global_replicates(r, n, "L2", k))
    verdict, v = rule_lower_bound_above(diff, c.thresholds["min_lower_bound"], se)
    return verdict, v, None


CLAIMS_HERE = (
    Claim(
        id="C2",
        rule=RULE,
        order=4,
        estimators=("PR",),
        statement="Layer 1 shows stronger KAG than layer 2.",
        measurement="PR ratio(L1) - PR ratio(L2), per seed",
        cells_description="every n, k >= 2; standard regime",
        cells_of=lambda p: [make_cell("C2", n=n, k=k) for n in p.widths for k in p.metrics.ks if k >= 2],
        evaluate=judge_c2,
        headline=lower_bounds,
        figure="c2_layer_gap",
        min_layers=2,
        explain=explain_lower_bound(
                "layer 1's PR ratio to exceed layer 2's", "layer 2's was at least as large (by {gap})",
                "the seeds could not tell the layers apart (L1 - L2 {mean}, error bars {bounds})"),
    ),
)
