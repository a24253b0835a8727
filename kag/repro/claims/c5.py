"""C5: KAG is scale-agnostic, in Euclidean balls of every radius."""

from __future__ import annotations

from kag.repro.criteria import Cell, Claim, Rule, format_values
from kag.repro.judges import measured_on, on_images, own_images, spatial_cells, spatial_with_se
from kag.repro.prose import explain_spatial
from kag.repro.results import Results
from kag.repro.rules import rule_scale_agnostic


RULE = Rule.of("lower bound > {min_lower_bound} at every radius, and max/min of the mean PR ratio over radii "
               "<= {max_spread}", min_lower_bound=1.0, max_spread=1.5)


def judge_c5(c: Claim, cell: Cell, r: Results):
    p = cell.p
    per, se = spatial_with_se(r, cell, "balls")
    verdict, v = rule_scale_agnostic(per, c.thresholds["min_lower_bound"], c.thresholds["max_spread"], se)
    sizes = r.table(p["n"], p["regime"], measured_on(r.profile, p["regime"])).select(
        analysis="balls", layer=p["layer"], k=p["k"], observable="pool_size", seed=r.profile.seeds[0])
    v["pool_size"] = {row.condition: row.value for row in sizes}
    detail = ("; ".join(f"r={rad}: {format_values(s)}" for rad, s in v["conditions"].items())
              + f"; spread {v['spread']:.4g} (smallest consistent with the error bars {v['min_spread']:.4g})")
    return verdict, v, on_images(r, cell, detail)


CLAIMS_HERE = (
    Claim(
        id="C5",
        rule=RULE,
        order=8,
        estimators=("PR",),
        statement="KAG is scale-agnostic: it appears in Euclidean balls of every radius.",
        measurement="PR ratio with columns restricted to a ball of radius r around random centres, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=spatial_cells("C5"),
        evaluate=judge_c5,
        headline=lambda rows: "spread " + ", ".join(f"{r['values']['spread']:.2f}" for r in rows[:8]),
        needs_of=own_images,
        figure="spatial_balls",
        explain=explain_spatial("at every radius", spread=True),
    ),
)
