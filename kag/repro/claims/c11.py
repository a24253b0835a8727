"""C11: KAG grows during training."""

from __future__ import annotations

import numpy as np

from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import rhos, seed_mean_se
from kag.repro.prose import explain_rho
from kag.repro.results import Results
from kag.repro.rules import rho_measurement_se, rule_rho_at_least


RULE = Rule.of("rho >= {min_rho}", min_rho=0.8)


def judge_c11(c: Claim, cell: Cell, r: Results):
    timeline = r.table(cell.p["n"], "standard").select(analysis="timeline")
    t = timeline.select(observable="pr_ratio")
    epochs = t.unique("condition")
    per_seed = [[t.value(seed=s, condition=e) for e in epochs] for s in r.profile.seeds]
    se_rows = timeline.select(observable="pr_ratio_se")
    found = [se_rows.by_seed(condition=e) for e in epochs]
    mean_se = [seed_mean_se([f[s] for s in r.profile.seeds] if all(s in f for s in r.profile.seeds) else None)
               for f in found]
    x, y = [int(e) for e in epochs], np.mean(per_seed, axis=0).tolist()
    verdict, v = rule_rho_at_least(x, y, c.thresholds["min_rho"], rho_measurement_se(x, y, mean_se))
    v["per_seed"] = per_seed
    return verdict, v, None


CLAIMS_HERE = (
    Claim(
        id="C11",
        rule=RULE,
        order=14,
        statement="KAG grows during training.",
        measurement="Spearman rho between checkpoint epoch and the mean PR ratio (L1, k=3)",
        cells_description="every width; standard regime",
        cells_of=lambda p: [make_cell("C11", n=n) for n in p.widths],
        evaluate=judge_c11,
        headline=rhos,
        figure="timeline",
        explain=explain_rho("the mean PR ratio to grow during training", "epoch {}", "fell during training"),
    ),
)
