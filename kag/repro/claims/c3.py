"""C3: higher-order minors show stronger KAG."""

from __future__ import annotations

from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import difference, global_replicates, global_values, lower_bounds, paired_se
from kag.repro.prose import explain_lower_bound
from kag.repro.results import Results
from kag.repro.rules import rule_lower_bound_above
from kag.repro.studies import layers_of


RULE = Rule.of("lower bound > {min_lower_bound}", min_lower_bound=0.0)


def judge_c3(c: Claim, cell: Cell, r: Results):
    n, layer = cell.p["n"], cell.p["layer"]
    lo, hi = min(r.profile.metrics.ks), max(r.profile.metrics.ks)
    diff = difference(global_values(r, n, layer, hi, "pr_ratio"), global_values(r, n, layer, lo, "pr_ratio"))
    se = paired_se(global_replicates(r, n, layer, hi), global_replicates(r, n, layer, lo))
    verdict, v = rule_lower_bound_above(diff, c.thresholds["min_lower_bound"], se)
    v["orders"] = [lo, hi]
    return verdict, v, None


CLAIMS_HERE = (
    Claim(
        id="C3",
        rule=RULE,
        order=6,
        estimators=("PR",),
        statement="Higher-order minors show stronger KAG.",
        measurement="PR ratio(k=3) - PR ratio(k=1), per seed",
        cells_description="every n, layer; standard regime",
        cells_of=lambda p: ([make_cell("C3", n=n, layer=layer) for n in p.widths for layer in layers_of(p)]
                            if len(p.metrics.ks) > 1 else []),
        evaluate=judge_c3,
        headline=lower_bounds,
        figure="c3_order_gap",
        explain=explain_lower_bound(
                "the PR ratio at k = {hi} to exceed the one at k = {lo}",
                "the one at k = {lo} was at least as large (by {gap})",
                "the seeds could not tell the orders apart (difference {mean}, error bars {bounds})"),
    ),
)
