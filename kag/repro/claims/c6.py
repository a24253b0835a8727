"""C6: KAG appears in every region of the image."""

from __future__ import annotations

from typing import Any


from kag.repro.criteria import Cell, Claim, Rule, format_values
from kag.repro.judges import on_images, own_images, spatial_cells, spatial_with_se
from kag.repro.prose import explain_spatial
from kag.repro.results import Results
from kag.repro.rules import rule_all_above


RULE = Rule.of("lower bound > {min_lower_bound} in all five patches", min_lower_bound=1.0)


def judge_c6(c: Claim, cell: Cell, r: Results):
    per, se = spatial_with_se(r, cell, "patches")
    verdict, v = rule_all_above(per, c.thresholds["min_lower_bound"], se)
    detail = "; ".join(f"{name}: {format_values(s)}" for name, s in v["conditions"].items())
    return verdict, v, on_images(r, cell, detail)


def patch_lower_bounds(rows: list[dict[str, Any]]) -> str:
    lbs = [s["lower_bound"] for r in rows for s in r["values"]["conditions"].values()]
    return f"patch lower bounds {min(lbs):.3g} to {max(lbs):.3g}"


CLAIMS_HERE = (
    Claim(
        id="C6",
        rule=RULE,
        order=9,
        estimators=("PR",),
        statement="KAG appears in every region of the image.",
        measurement="PR ratio with columns restricted to one 14x14 patch, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=spatial_cells("C6"),
        evaluate=judge_c6,
        headline=patch_lower_bounds,
        needs_of=own_images,
        figure="spatial_patches",
        explain=explain_spatial("in every patch"),
    ),
)
