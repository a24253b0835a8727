"""C10: zero rows appear in trained Jacobians."""

from __future__ import annotations

from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import difference, difference_of_se, lower_bounds, per_seed_values, se_per_seed
from kag.repro.prose import explain_lower_bound
from kag.repro.results import Results
from kag.repro.rules import rule_lower_bound_above


RULE = Rule.of("lower bound > {min_lower_bound}", min_lower_bound=0.0)


def judge_c10(c: Claim, cell: Cell, r: Results):
    p = cell.p
    at = dict(analysis="zero_rows", layer=p["layer"])
    zero = {role: per_seed_values(r, p["n"], "standard", observable="zero_row_fraction", role=role, **at)
            for role in ("trained", "init")}
    se = difference_of_se(*(se_per_seed(r, p["n"], "standard", observable="zero_row_fraction", role=role, **at)
                             for role in ("trained", "init")))
    verdict, v = rule_lower_bound_above(difference(zero["trained"], zero["init"]), c.thresholds["min_lower_bound"],
                                        se)
    v["trained"], v["init"] = zero["trained"], zero["init"]
    return verdict, v, None


CLAIMS_HERE = (
    Claim(
        id="C10",
        rule=RULE,
        order=13,
        statement="Zero rows appear: trained Jacobians have more (near-)vanishing rows than at initialisation.",
        measurement="zero-row fraction(trained) - fraction(init), threshold = 1st percentile of init row norms, "
                    "per seed",
        cells_description="every width; L1; standard regime",
        cells_of=lambda p: [make_cell("C10", n=n, layer="L1") for n in p.widths],
        evaluate=judge_c10,
        headline=lower_bounds,
        figure="zero_rows",
        explain=explain_lower_bound(
                "trained Jacobians to have more zero rows than at initialisation",
                "they had no more (zero-row fraction trained - init {mean})",
                "the seeds could not tell the fractions apart (difference {mean}, error bars {bounds})"),
    ),
)
