"""The report's plain words: one sentence per claim on why it did not reproduce, built from its
cells' verdicts and values (every number comes from the values; none is written here).
"""


from __future__ import annotations

import math
from typing import Any


from kag.repro.criteria import Claim, ExplainFn
from kag.repro.rules import CONTRADICTED, INCONCLUSIVE, INVALID, SUPPORTED

# -- plain words: why a claim did not reproduce ---------------------------------------------------
# An explainer takes the claim and every cell row of the report (dicts with "cell", "params",
# "verdict" and the judge's "values"; a NaN may arrive as None from JSON) and returns one sentence:
# what was expected, what was measured in the cells that missed (the range over them) and in how
# many cells. Every number comes from the values; none is written here.
def as_num(v: Any) -> float:
    """A number from a verdict's values; None (JSON's NaN) and non-numbers are NaN."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def num(v: Any, spec: str = ".3g") -> str:
    x = as_num(v)
    return "n/a" if math.isnan(x) else format(x, spec)


def span(values: Any, spec: str = ".3g", unit: str = "") -> str:
    """The range of ``values``: "0.38–0.85", "-0.31 to -0.05", or one number when both ends read alike."""
    # a difference of equal values can carry 1e-17 of rounding: that is a zero
    xs = sorted(0.0 if abs(x) < 1e-12 else x for x in map(as_num, values) if not math.isnan(x))
    if not xs:
        return "n/a"
    lo, hi = format(xs[0], spec), format(xs[-1], spec)
    if lo == hi:
        return lo + unit
    return f"{lo}–{hi}{unit}" if xs[0] >= 0 else f"{lo}{unit} to {hi}{unit}"


def pct(values: Any, spec: str | None = None) -> str:
    """Fractions as a range of percents: [0.26, 1.02] -> "26–102%"."""
    xs = [100.0 * as_num(v) for v in values]
    finite = [abs(x) for x in xs if math.isfinite(x)]
    return span(xs, spec or (".0f" if finite and max(finite) >= 10 else ".2g"), "%")


def misses(c: Claim, row: dict[str, Any]) -> bool:
    """A judged cell that is not as expected: not supported (a claim); supported or invalid (a control)."""
    v = row.get("verdict")
    return v in (SUPPORTED, INVALID) if c.control else v is not None and v != SUPPORTED


def plain(c: Claim, rows: list[dict[str, Any]]) -> str:
    """One sentence in plain words on why the claim did not reproduce, from its cell rows (the
    report's, judged or not): what was expected, what was measured (the range over the cells
    that missed) and in how many cells. Empty when every cell came out as expected, or when no
    cell was judged (the status says "not run")."""
    judged = [r for r in rows if r.get("verdict")]
    unjudged = len(rows) - len(judged)
    if not judged or not any(misses(c, r) for r in judged) and not unjudged:
        return ""
    if not any(misses(c, r) for r in judged):
        held = "the control said no" if c.control else "the rule held"
        return (f"In all {len(judged)} judged cells {held}, but {unjudged} of {len(rows)} cells were not judged "
                "(not run, or an error before judging).")
    try:
        text = (c.explain or explain_generic)(c, rows)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError):
        text = explain_generic(c, rows)  # values of an unexpected shape: the rule and the verdicts
    more = f"; {unjudged} of {len(rows)} cells were not judged" if unjudged else ""
    return f"{text}{more}."


def with_verdict(rows: list[dict[str, Any]], verdict: str) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("verdict") == verdict]


def cells_text(sub: list[dict[str, Any]], rows: list[dict[str, Any]], where: bool = True) -> str:
    """"in all 8 cells", "in 2 of 8 cells (n=256-k=2, n=512-k=2)"; beyond three cells, the
    parameter values they are found at ("at n=256, 512") where those are not every value."""
    if len(sub) == len(rows):
        return {1: "in its one cell", 2: "in both cells"}.get(len(rows), f"in all {len(rows)} cells")
    out = f"in {len(sub)} of {len(rows)} cells"
    if not where:
        return out
    if len(sub) <= 3:
        return f"{out} ({', '.join(str(r['cell']) for r in sub)})"
    parts = []
    for key in sub[0].get("params") or {}:
        mine = list(dict.fromkeys(str(r["params"].get(key)) for r in sub))
        if len(mine) < len({str(r["params"].get(key)) for r in rows}):
            parts.append(f"{key}={', '.join(mine)}")
    return f"{out} (at {'; '.join(parts)})" if parts else out


def tally_text(miss: list[dict[str, Any]]) -> str:
    """"2 contradicted, 6 inconclusive"."""
    return ", ".join(f"{len(with_verdict(miss, w))} {w}" for w in (CONTRADICTED, INCONCLUSIVE, INVALID)
                     if with_verdict(miss, w))


def bounds_text(values: list[dict[str, Any]]) -> str:
    """Lowest lower bound to highest upper bound: where the error bars of these cells reach."""
    lbs = [x for x in (as_num(v.get("lower_bound")) for v in values) if not math.isnan(x)]
    ubs = [x for x in (as_num(v.get("upper_bound")) for v in values) if not math.isnan(x)]
    return f"{num(min(lbs))} to {num(max(ubs))}" if lbs and ubs else "n/a"


def explain_generic(c: Claim, rows: list[dict[str, Any]]) -> str:
    """The fallback: the rule's own words, the verdicts of the cells that missed, and their means."""
    miss = [r for r in rows if misses(c, r)]
    means = [r["values"]["mean"] for r in miss if isinstance(r.get("values"), dict) and "mean" in r["values"]]
    measured = f", mean {span(means)}" if means else ""
    expected = f"the control to say no ({c.rule})" if c.control else f"{c.rule} in every cell"
    return f"Expected {expected}, but {cells_text(miss, rows)} it did not ({tally_text(miss)}{measured})"


_UNCLEAR = "the seeds could not tell it from {t} (mean {mean}, error bars {bounds})"


def explain_lower_bound(goal: str, below: str, unclear: str = _UNCLEAR) -> ExplainFn:
    """For a rule "lower bound > t": ``goal`` is what was expected, ``below`` what a contradicted
    cell shows (upper bound at or below t), ``unclear`` what an inconclusive one shows. Each may use
    {t} (the threshold), {mean} (the range of the cells' means), {gap} (of minus the means: by how
    much the other side led), {bounds} (where their error bars reach) and {lo}, {hi} (C3's orders)."""
    def explain(c: Claim, rows: list[dict[str, Any]]) -> str:
        first = next(r["values"] for r in rows if r.get("verdict"))
        orders = first.get("orders") or ["the lowest k", "the highest k"]

        def words(text: str, sub: list[dict[str, Any]]) -> str:
            values = [r["values"] for r in sub]
            return text.format(t=num(first.get("threshold"), "g"), mean=span(v.get("mean") for v in values),
                               gap=span(0.0 - as_num(v.get("mean")) for v in values), bounds=bounds_text(values),
                               lo=orders[0], hi=orders[-1])

        parts = [f"{cells_text(sub, rows)} {words(text, sub)}"
                 for sub, text in ((with_verdict(rows, CONTRADICTED), below), (with_verdict(rows, INCONCLUSIVE), unclear))
                 if sub]
        return f"Expected {words(goal, rows)} in every cell, but " + ", and ".join(parts)
    return explain


def explain_rho(goal: str, x_name: str, fell: str, relation: str = ">=") -> ExplainFn:
    """For a rule "Spearman rho >= t" (or "<= t", ``relation``) over a few cells: ``goal`` is what was
    expected, ``x_name`` formats one x ("n = {}"), ``fell`` what the mirror (rho <= -t) means. Each
    missed cell is named with its rho and the mean PR ratio at the first and last x."""
    def explain(c: Claim, rows: list[dict[str, Any]]) -> str:
        miss = [r for r in rows if misses(c, r)]

        def one(r: dict[str, Any]) -> str:
            v = r["values"]
            x, y = v.get("x") or [], v.get("y") or []
            rho = "undefined" if math.isnan(as_num(v.get("rho"))) else num(v.get("rho"), "+.2f")
            trend = (f", mean PR ratio {num(y[0])} at {x_name.format(num(x[0], 'g'))} and {num(y[-1])} at "
                     f"{x_name.format(num(x[-1], 'g'))}") if x and y else ""
            return f"{r['cell']}: rho {rho}{trend}"

        clauses = ((with_verdict(rows, CONTRADICTED), fell),
                   (with_verdict(rows, INCONCLUSIVE), "showed no clear trend"))
        parts = [f"{text} {cells_text(sub, rows, where=False)}" for sub, text in clauses if sub]
        shown = "; ".join(one(r) for r in miss[:4]) + ("; ..." if len(miss) > 4 else "")
        t = num(miss[0]["values"].get("threshold"), "g")
        return f"Expected {goal} (Spearman rho {relation} {t}), but it " + " and ".join(parts) + f" ({shown})"
    return explain


def conditions_of(r: dict[str, Any], key: str = "conditions") -> list[dict[str, Any]]:
    return list((r["values"].get(key) or {}).values())


def explain_spatial(where: str, spread: bool = False) -> ExplainFn:
    """C5 and C6: the PR ratio above t in every condition (``where``: "at every radius"), and for
    C5 (``spread``) at most a factor max_spread between the conditions' means."""
    def explain(c: Claim, rows: list[dict[str, Any]]) -> str:
        miss = [r for r in rows if misses(c, r)]
        v0 = miss[0]["values"]
        t = as_num(v0.get("min_lower_bound"))
        low = [r for r in miss if any(as_num(s.get("upper_bound")) <= t for s in conditions_of(r))]
        unclear = [r for r in miss
                   if r not in low and not all(as_num(s.get("lower_bound")) > t for s in conditions_of(r))]
        wide = [r for r in miss if spread and not as_num(r["values"].get("spread")) <= as_num(v0.get("max_spread"))]
        lowest = lambda sub, key: span(min(as_num(s.get(key)) for s in conditions_of(r)) for r in sub)  # noqa: E731
        some = where.replace("every", "some")
        parts = []
        if low:
            parts.append(f"{cells_text(low, rows)} it was at or below {t:g} {some} (lowest mean {lowest(low, 'mean')})")
        if unclear:
            parts.append(f"{cells_text(unclear, rows)} the seeds could not tell it from {t:g} {some} (lowest lower "
                         f"bound {lowest(unclear, 'lower_bound')})")
        if wide:
            parts.append(f"{cells_text(wide, rows)} it varied by a factor {span(r['values'].get('spread') for r in wide)} "
                         "between them")
        if not parts:
            return explain_generic(c, rows)
        limit = f", varying by at most a factor {num(v0.get('max_spread'), 'g')} between them" if spread else ""
        return f"Expected the PR ratio above {t:g} {where}{limit}, but " + "; ".join(parts) + f"; {tally_text(miss)}"
    return explain


