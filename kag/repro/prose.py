"""The report's plain words: one sentence per claim on why it did not reproduce, built from its
cells' verdicts and values (every number comes from the values; none is written here).
"""


from __future__ import annotations

import math
from typing import Any


from kag.repro.criteria import Claim, ExplainFn
from kag.repro.judges import N1_INPUTS, N2_OBSERVABLES
from kag.repro.rules import (
    CONTRADICTED,
    INCONCLUSIVE,
    INVALID,
    SUPPORTED,
)

# -- plain words: why a claim did not reproduce ---------------------------------------------------
# An explainer takes the claim and every cell row of the report (dicts with "cell", "params",
# "verdict" and the judge's "values"; a NaN may arrive as None from JSON) and returns one sentence:
# what was expected, what was measured in the cells that missed (the range over them) and in how
# many cells. Every number comes from the values; none is written here.
def _x(v: Any) -> float:
    """A number from a verdict's values; None (JSON's NaN) and non-numbers are NaN."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _n(v: Any, spec: str = ".3g") -> str:
    x = _x(v)
    return "n/a" if math.isnan(x) else format(x, spec)


def _span(values: Any, spec: str = ".3g", unit: str = "") -> str:
    """The range of ``values``: "0.38–0.85", "-0.31 to -0.05", or one number when both ends read alike."""
    # a difference of equal values can carry 1e-17 of rounding: that is a zero
    xs = sorted(0.0 if abs(x) < 1e-12 else x for x in map(_x, values) if not math.isnan(x))
    if not xs:
        return "n/a"
    lo, hi = format(xs[0], spec), format(xs[-1], spec)
    if lo == hi:
        return lo + unit
    return f"{lo}–{hi}{unit}" if xs[0] >= 0 else f"{lo}{unit} to {hi}{unit}"


def _pct(values: Any, spec: str | None = None) -> str:
    """Fractions as a range of percents: [0.26, 1.02] -> "26–102%"."""
    xs = [100.0 * _x(v) for v in values]
    finite = [abs(x) for x in xs if math.isfinite(x)]
    return _span(xs, spec or (".0f" if finite and max(finite) >= 10 else ".2g"), "%")


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


def _with(rows: list[dict[str, Any]], verdict: str) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("verdict") == verdict]


def _cells(sub: list[dict[str, Any]], rows: list[dict[str, Any]], where: bool = True) -> str:
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


def _tally(miss: list[dict[str, Any]]) -> str:
    """"2 contradicted, 6 inconclusive"."""
    return ", ".join(f"{len(_with(miss, w))} {w}" for w in (CONTRADICTED, INCONCLUSIVE, INVALID) if _with(miss, w))


def _bounds(values: list[dict[str, Any]]) -> str:
    """Lowest lower bound to highest upper bound: where the error bars of these cells reach."""
    lbs = [x for x in (_x(v.get("lower_bound")) for v in values) if not math.isnan(x)]
    ubs = [x for x in (_x(v.get("upper_bound")) for v in values) if not math.isnan(x)]
    return f"{_n(min(lbs))} to {_n(max(ubs))}" if lbs and ubs else "n/a"


def explain_generic(c: Claim, rows: list[dict[str, Any]]) -> str:
    """The fallback: the rule's own words, the verdicts of the cells that missed, and their means."""
    miss = [r for r in rows if misses(c, r)]
    means = [r["values"]["mean"] for r in miss if isinstance(r.get("values"), dict) and "mean" in r["values"]]
    measured = f", mean {_span(means)}" if means else ""
    expected = f"the control to say no ({c.rule})" if c.control else f"{c.rule} in every cell"
    return f"Expected {expected}, but {_cells(miss, rows)} it did not ({_tally(miss)}{measured})"


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
            return text.format(t=_n(first.get("threshold"), "g"), mean=_span(v.get("mean") for v in values),
                               gap=_span(0.0 - _x(v.get("mean")) for v in values), bounds=_bounds(values),
                               lo=orders[0], hi=orders[-1])

        parts = [f"{_cells(sub, rows)} {words(text, sub)}"
                 for sub, text in ((_with(rows, CONTRADICTED), below), (_with(rows, INCONCLUSIVE), unclear)) if sub]
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
            rho = "undefined" if math.isnan(_x(v.get("rho"))) else _n(v.get("rho"), "+.2f")
            trend = (f", mean PR ratio {_n(y[0])} at {x_name.format(_n(x[0], 'g'))} and {_n(y[-1])} at "
                     f"{x_name.format(_n(x[-1], 'g'))}") if x and y else ""
            return f"{r['cell']}: rho {rho}{trend}"

        clauses = ((_with(rows, CONTRADICTED), fell), (_with(rows, INCONCLUSIVE), "showed no clear trend"))
        parts = [f"{text} {_cells(sub, rows, where=False)}" for sub, text in clauses if sub]
        shown = "; ".join(one(r) for r in miss[:4]) + ("; ..." if len(miss) > 4 else "")
        t = _n(miss[0]["values"].get("threshold"), "g")
        return f"Expected {goal} (Spearman rho {relation} {t}), but it " + " and ".join(parts) + f" ({shown})"
    return explain


def _conditions(r: dict[str, Any], key: str = "conditions") -> list[dict[str, Any]]:
    return list((r["values"].get(key) or {}).values())


def explain_spatial(where: str, spread: bool = False) -> ExplainFn:
    """C5 and C6: the PR ratio above t in every condition (``where``: "at every radius"), and for
    C5 (``spread``) at most a factor max_spread between the conditions' means."""
    def explain(c: Claim, rows: list[dict[str, Any]]) -> str:
        miss = [r for r in rows if misses(c, r)]
        v0 = miss[0]["values"]
        t = _x(v0.get("min_lower_bound"))
        low = [r for r in miss if any(_x(s.get("upper_bound")) <= t for s in _conditions(r))]
        unclear = [r for r in miss if r not in low and not all(_x(s.get("lower_bound")) > t for s in _conditions(r))]
        wide = [r for r in miss if spread and not _x(r["values"].get("spread")) <= _x(v0.get("max_spread"))]
        lowest = lambda sub, key: _span(min(_x(s.get(key)) for s in _conditions(r)) for r in sub)  # noqa: E731
        some = where.replace("every", "some")
        parts = []
        if low:
            parts.append(f"{_cells(low, rows)} it was at or below {t:g} {some} (lowest mean {lowest(low, 'mean')})")
        if unclear:
            parts.append(f"{_cells(unclear, rows)} the seeds could not tell it from {t:g} {some} (lowest lower "
                         f"bound {lowest(unclear, 'lower_bound')})")
        if wide:
            parts.append(f"{_cells(wide, rows)} it varied by a factor {_span(r['values'].get('spread') for r in wide)} "
                         "between them")
        if not parts:
            return explain_generic(c, rows)
        limit = f", varying by at most a factor {_n(v0.get('max_spread'), 'g')} between them" if spread else ""
        return f"Expected the PR ratio above {t:g} {where}{limit}, but " + "; ".join(parts) + f"; {_tally(miss)}"
    return explain


def explain_c7(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if misses(c, r)]
    v0 = miss[0]["values"]
    t, most = _x(v0.get("min_lower_bound")), _x(v0.get("max_relative_change"))
    near, far = _n(v0.get("d_near"), "g"), _n(v0.get("d_far"), "g")
    low = [r for r in miss if _x(r["values"]["far"].get("upper_bound")) <= t]
    unclear = [r for r in miss if r not in low and not _x(r["values"]["far"].get("lower_bound")) > t]
    moved = [r for r in miss if not abs(_x(r["values"].get("relative_change"))) <= most]
    parts = []
    if low:
        parts.append(f"{_cells(low, rows)} it was at or below {t:g} at d = {far} "
                     f"(mean {_span(r['values']['far'].get('mean') for r in low)})")
    if unclear:
        parts.append(f"{_cells(unclear, rows)} the seeds could not tell it from {t:g} at d = {far} "
                     f"(lower bound {_span(r['values']['far'].get('lower_bound') for r in unclear)})")
    if moved:
        change = [_x(r["values"].get("relative_change")) for r in moved]
        how = (f"fell by {_pct(-x for x in change)}" if all(x < 0 for x in change) else
               f"rose by {_pct(change)}" if all(x > 0 for x in change) else f"changed by {_pct(change)}")
        parts.append(f"{_cells(moved, rows)} it {how} from d = {near} to d = {far}")
    if not parts:
        return explain_generic(c, rows)
    return (f"Expected the PR ratio at d = {far} above {t:g} and within ±{_pct([most])} of its value at d = {near}, "
            "but " + "; ".join(parts) + f"; {_tally(miss)}")


def explain_c8(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if misses(c, r)]
    v0 = miss[0]["values"]
    lo, hi = (_x(x) for x in v0.get("range") or (math.nan, math.nan))
    t = _x(v0.get("min_lower_bound"))
    red = {id(r): _x(r["values"].get("reduction")) for r in miss}
    groups = (([r for r in miss if red[id(r)] < 0], "raised them by {}", lambda x: -x),
              ([r for r in miss if 0 <= red[id(r)] < lo], "lowered them by only {}", lambda x: x),
              ([r for r in miss if red[id(r)] > hi], f"lowered them by {{}}, more than {_pct([hi])}", lambda x: x))
    parts = [f"{_cells(sub, rows)} it {text.format(_pct(sign(red[id(r)]) for r in sub))}"
             for sub, text, sign in groups if sub]
    undefined = [r for r in miss if math.isnan(red[id(r)])]
    if undefined:
        parts.append(f"{_cells(undefined, rows)} the reduction was undefined")
    aug = {id(r): _conditions(r, "augmented_conditions") for r in miss}
    low = [r for r in miss if any(_x(s.get("upper_bound")) <= t for s in aug[id(r)])]
    if low:
        means = [min(_x(s.get("mean")) for s in aug[id(r)]) for r in low]
        parts.append(f"{_cells(low, rows)} the augmented PR ratio was at or below {t:g} in some condition "
                     f"(lowest mean {_span(means)})")
    unclear = [r for r in miss if r not in low and r["values"].get("augmented_all_above") is False]
    if unclear:
        lbs = [min(_x(s.get("lower_bound")) for s in aug[id(r)]) for r in unclear]
        parts.append(f"{_cells(unclear, rows)} the seeds could not tell the augmented PR ratio from {t:g} in some "
                     f"condition (lowest lower bound {_span(lbs)})")
    if not parts:
        return explain_generic(c, rows)
    return (f"Expected augmentation to lower the PR ratios by {_pct([lo, hi])} and keep them above {t:g}, but "
            + "; ".join(parts) + f"; {_tally(miss)}")


def explain_c9(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if misses(c, r)]
    by_threshold: dict[float, list[dict[str, Any]]] = {}
    regimes: dict[float, list[str]] = {}
    for r in rows:
        if r.get("verdict"):
            t = _x(r["values"].get("threshold"))
            regimes.setdefault(t, [])
            if r["params"].get("regime") not in regimes[t]:
                regimes[t].append(r["params"].get("regime"))
            if r in miss:
                by_threshold.setdefault(t, []).append(r)
    goal = " and ".join(f"{_pct([t], '.1f')} ({', '.join(map(str, rg))})" for t, rg in regimes.items())
    parts = [f"{_cells(sub, rows)} it was {_pct((r['values'].get('mean') for r in sub), '.1f')} against "
             f"{_pct([t], '.1f')}" for t, sub in by_threshold.items()]
    return f"Expected a mean test accuracy of at least {goal}, but " + "; ".join(parts) + f"; {_tally(miss)}"


def explain_n1(c: Claim, rows: list[dict[str, Any]]) -> str:
    shows, invalid = _with(rows, SUPPORTED), _with(rows, INVALID)
    parts = []
    if shows:
        which = []
        for obs, (key, name) in N1_INPUTS.items():
            hit = [r for r in shows if (r["values"].get("verdicts") or {}).get(obs) == SUPPORTED]
            if hit:
                which.append(f"{name}: lower bound {_span(r['values'][key].get('lower_bound') for r in hit)} above "
                             f"{_n(hit[0]['values'][key].get('threshold'), 'g')} in {len(hit)}")
        parts.append(f"{_cells(shows, rows)} it showed KAG ({'; '.join(which)})")
    if invalid:
        # one problem per line, however many cells share it
        problems = list(dict.fromkeys(p for r in invalid
                                      for p in r.get("problems") or r["values"].get("problems") or []))
        first = problems[0] if problems else "invalid values"
        more = f", and {len(problems) - 1} more problems" if len(problems) > 1 else ""
        parts.append(f"{_cells(invalid, rows)} its numbers could not be judged ({first}{more})")
    if not parts:
        return explain_generic(c, rows)
    return "Expected two independent initialisations to show no KAG, but " + "; and ".join(parts)


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
