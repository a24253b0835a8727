"""C1, KAG emerges in training, judged per observable (PR, KL, RR) against the untrained network."""

from __future__ import annotations

from kag.repro.criteria import Cell, Claim, Rule
from kag.repro.judges import cell_se, difference, difference_of_se, global_cells, global_se, global_values, lower_bounds
from kag.repro.prose import explain_lower_bound
from kag.repro.results import Results
from kag.repro.rules import rule_lower_bound_above


RULE_PR = Rule.of("lower bound (mean - 2 std over seeds) > {min_lower_bound}", min_lower_bound=1.0)


RULE_KL = Rule.of("lower bound of the difference > {min_lower_bound}", min_lower_bound=0.0)


RULE_RR = Rule.of("lower bound > {min_lower_bound}", min_lower_bound=1.0)


def judge_c1_pr(c: Claim, cell: Cell, r: Results):
    p = cell.p
    se = cell_se(global_se(r, p["n"], p["layer"], p["k"]))
    verdict, v = rule_lower_bound_above(global_values(r, p["n"], p["layer"], p["k"], "pr_ratio"),
                                        c.thresholds["min_lower_bound"], se)
    return verdict, v, None


def judge_c1_kl(c: Claim, cell: Cell, r: Results):
    p = cell.p
    kl = global_values(r, p["n"], p["layer"], p["k"], "kl")
    kl_null = global_values(r, p["n"], p["layer"], p["k"], "kl", role="null")
    se = difference_of_se(global_se(r, p["n"], p["layer"], p["k"], "kl"),
                           global_se(r, p["n"], p["layer"], p["k"], "kl", role="null"))
    verdict, v = rule_lower_bound_above(difference(kl, kl_null), c.thresholds["min_lower_bound"], se)
    v["kl"], v["kl_null"] = kl, kl_null
    return verdict, v, None


def judge_c1_rr(c: Claim, cell: Cell, r: Results):
    p = cell.p
    se = cell_se(global_se(r, p["n"], p["layer"], p["k"], "rr_ratio"))
    verdict, v = rule_lower_bound_above(global_values(r, p["n"], p["layer"], p["k"], "rr_ratio"),
                                        c.thresholds["min_lower_bound"], se)
    return verdict, v, None


CLAIMS_HERE = (
    Claim(
        id="C1-PR",
        rule=RULE_PR,
        order=1,
        estimators=("PR",),
        statement="KAG emerges in training: trained networks concentrate their minors more than at initialisation.",
        measurement="PR ratio = PR(trained)/PR(init), per seed",
        cells_description="every width n, minor order k, layer; standard regime",
        cells_of=global_cells("C1-PR"),
        evaluate=judge_c1_pr,
        headline=lower_bounds,
        figure="global_pr_ratio",
        explain=explain_lower_bound("the PR ratio PR(trained)/PR(init) above {t}",
                                     "it was at or below {t} (mean {mean})"),
    ),
    Claim(
        id="C1-KL",
        rule=RULE_KL,
        order=2,
        estimators=("divergence",),
        statement="KAG emerges in training: the minor distribution moves away from the initial one.",
        measurement="KL(trained || init) - KL(independent init || init), per seed (seed-paired)",
        cells_description="every n, k, layer; standard regime",
        cells_of=global_cells("C1-KL"),
        evaluate=judge_c1_kl,
        headline=lower_bounds,
        figure="global_kl",
        explain=explain_lower_bound(
                "KL(trained‖init) to exceed KL(independent init‖init)",
                "the trained network was no farther from its init than an independent init (difference {mean})",
                "the seeds could not tell the two apart (difference {mean}, error bars {bounds})"),
    ),
    Claim(
        id="C1-RR",
        rule=RULE_RR,
        order=3,
        estimators=("RR",),
        statement="KAG emerges in training: minors align with the neuron basis (secondary, noisier).",
        measurement="RR(trained)/RR(init), per seed",
        cells_description="every n, k, layer; standard regime",
        cells_of=global_cells("C1-RR"),
        evaluate=judge_c1_rr,
        headline=lower_bounds,
        figure="global_rr",
        explain=explain_lower_bound("the RR ratio RR(trained)/RR(init) above {t}",
                                     "it was at or below {t} (mean {mean})"),
    ),
)
