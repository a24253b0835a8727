"""N2, beyond the paper: KAG is more than row and column norms (the norm-matched surrogate, SPEC §5)."""

from __future__ import annotations

from typing import Any


from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import cell_se, global_se, global_values, lower_bounds
from kag.repro.prose import explain_generic, explain_lower_bound, misses
from kag.repro.results import Results
from kag.repro.rules import rule_lower_bound_above
from kag.repro.studies import layers_of


RULE = Rule.of("per observable, the lower bound of PR(trained)/PR(surrogate) > {pr_min_lower_bound}, of "
               "KL(trained‖init) - KL(surrogate‖init) > {kl_min_lower_bound}, of RR(trained)/RR(surrogate) > "
               "{rr_min_lower_bound} (surrogate: norm-matched)",
               pr_min_lower_bound=1.0, kl_min_lower_bound=0.0, rr_min_lower_bound=1.0)


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
    values = global_values(r, p["n"], p["layer"], p["k"], value, role="surrogate")
    per_seed_se = global_se(r, p["n"], p["layer"], p["k"], value, role="surrogate")
    verdict, v = rule_lower_bound_above(values, c.thresholds[f"{obs.lower()}_min_lower_bound"], cell_se(per_seed_se))
    return verdict, v, None


def explain_n2(c: Claim, rows: list[dict[str, Any]]) -> str:
    """N2 judges three observables on different scales (PR and RR ratios, a KL difference): one
    sentence per observable with missed cells, each counted among that observable's cells."""
    explain = {obs: explain_lower_bound(f"{subject} above {{t}}", below)
               for obs, (subject, below) in _N2_WORDS.items()}
    parts = []
    for obs in N2_OBSERVABLES:
        mine = [r for r in rows if (r.get("params") or {}).get("obs") == obs]
        if any(misses(c, r) for r in mine):
            text = explain[obs](c, mine)
            parts.append(text if not parts else "e" + text[1:])  # "Expected ...; expected ..."
    return "; ".join(parts) or explain_generic(c, rows)


_N2_WORDS = {"PR": ("PR(trained)/PR(norm-matched surrogate)", "the surrogate reached the trained PR (ratio {mean})"),
             "KL": ("KL(trained‖init) − KL(surrogate‖init)",
                    "the surrogate was as far from the init as the trained network (difference {mean})"),
             "RR": ("RR(trained)/RR(norm-matched surrogate)", "the surrogate reached the trained RR (ratio {mean})")}


# N2 reads the surrogate rows of kag.experiments.analysis; what a verdict means is said in the report (SPEC §7).
N2_READING = ("N2 asks whether PR sees more than which units and which pixels are active. If it is not supported, "
              "that does not refute KA geometry, whose definition includes zero rows (inactive units): it says that "
              "PR and KL see nothing beyond the row and column norms of the Jacobian.")


CLAIMS_HERE = (
    Claim(
        id="N2",
        rule=RULE,
        order=15,
        estimators=("PR", "RR"),
        statement="Beyond the paper: KAG is more than row and column norms.",
        measurement="PR(trained)/PR(norm-matched surrogate), KL(trained‖init) - KL(surrogate‖init) and "
                    "RR(trained)/RR(surrogate), per seed: the surrogate is the initial Jacobian rescaled to the "
                    "trained row and column norms (SPEC §5); a PR or RR ratio of 1 (a KL difference of 0) means the "
                    "norms alone explain it",
        cells_description="every n, k >= 2, layer and observable (PR, KL, RR); standard regime",
        cells_of=lambda p: [make_cell("N2", n=n, k=k, layer=layer, obs=obs) for n in p.widths
                            for k in p.metrics.ks if k >= 2 for layer in layers_of(p) for obs in N2_OBSERVABLES],
        evaluate=judge_n2,
        headline=lower_bounds,
        figure="surrogate",
        explain=explain_n2,
    ),
)
