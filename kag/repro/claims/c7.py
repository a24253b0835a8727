"""C7: KAG persists when the pixels of a minor are far apart."""

from __future__ import annotations

from typing import Any


from kag.repro.criteria import Cell, Claim, Rule, format_values
from kag.repro.judges import on_images, own_images, paired_se, spatial_cells, spatial_replicates, spatial_with_se
from kag.repro.prose import (as_num, cells_text, explain_generic, misses, num, pct, span,
                             tally_text)
from kag.repro.results import Results
from kag.repro.rules import rule_persists, seed_summary


RULE = Rule.of("lower bound > {min_lower_bound} at the largest d, and its mean within +-{max_relative_change} of "
               "d = 0", min_lower_bound=1.0, max_relative_change=0.30)


def judge_c7(c: Claim, cell: Cell, r: Results):
    per, se = spatial_with_se(r, cell, "separation")
    ds = sorted(per, key=float)
    reps = {d: spatial_replicates(r, cell, "separation", d) for d in (ds[0], ds[-1])}
    change_se = paired_se(reps[ds[-1]], reps[ds[0]], lambda far, near: far / near - 1.0)
    verdict, v = rule_persists(per[ds[0]], per[ds[-1]], c.thresholds["min_lower_bound"],
                               c.thresholds["max_relative_change"], se.get(ds[0]), se.get(ds[-1]), change_se)
    v["conditions"] = {d: seed_summary(per[d], se.get(d)) for d in ds}
    v["d_near"], v["d_far"] = float(ds[0]), float(ds[-1])
    lo, hi = v["change_interval"]
    detail = (f"d={ds[-1]}: {format_values(v['far'])}; d={ds[0]}: mean {v['near']['mean']:.4g}; "
              f"change {v['relative_change']:+.3f} (interval {lo:+.3f} to {hi:+.3f})")
    return verdict, v, on_images(r, cell, detail)


def explain_c7(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if misses(c, r)]
    v0 = miss[0]["values"]
    t, most = as_num(v0.get("min_lower_bound")), as_num(v0.get("max_relative_change"))
    near, far = num(v0.get("d_near"), "g"), num(v0.get("d_far"), "g")
    low = [r for r in miss if as_num(r["values"]["far"].get("upper_bound")) <= t]
    unclear = [r for r in miss if r not in low and not as_num(r["values"]["far"].get("lower_bound")) > t]
    moved = [r for r in miss if not abs(as_num(r["values"].get("relative_change"))) <= most]
    parts = []
    if low:
        parts.append(f"{cells_text(low, rows)} it was at or below {t:g} at d = {far} "
                     f"(mean {span(r['values']['far'].get('mean') for r in low)})")
    if unclear:
        parts.append(f"{cells_text(unclear, rows)} the seeds could not tell it from {t:g} at d = {far} "
                     f"(lower bound {span(r['values']['far'].get('lower_bound') for r in unclear)})")
    if moved:
        change = [as_num(r["values"].get("relative_change")) for r in moved]
        how = (f"fell by {pct(-x for x in change)}" if all(x < 0 for x in change) else
               f"rose by {pct(change)}" if all(x > 0 for x in change) else f"changed by {pct(change)}")
        parts.append(f"{cells_text(moved, rows)} it {how} from d = {near} to d = {far}")
    if not parts:
        return explain_generic(c, rows)
    return (f"Expected the PR ratio at d = {far} above {t:g} and within ±{pct([most])} of its value at d = {near}, "
            "but " + "; ".join(parts) + f"; {tally_text(miss)}")


CLAIMS_HERE = (
    Claim(
        id="C7",
        rule=RULE,
        order=10,
        estimators=("PR",),
        statement="KAG persists when the pixels of a minor are far apart.",
        measurement="PR ratio with the k pixels pairwise >= d apart, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=spatial_cells("C7"),
        evaluate=judge_c7,
        headline=lambda rows: "change at far d: " + ", ".join(f"{r['values']['relative_change']:+.2f}"
                                                              for r in rows[:8]),
        needs_of=own_images,
        figure="spatial_separation",
        explain=explain_c7,
    ),
)
