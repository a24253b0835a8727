"""One cell's verdict in plain words: what the claim expected, what was measured.

``pytest claims`` puts :func:`failure_text` first in each failing cell's message, so the line
pytest shows for a failure reads as a finding, not a crash::

    C8 [balls-L1-k=2-eval=clean-n=512] contradicted: expected augmentation to lower the PR ratio by
    15–50% (reduction in [0.15, 0.5]) ...; measured a reduction of −0.25 (per-seed interval ...)
      numbers: <the verdict's detail: seeds, mean, std, SE, bounds, threshold>

Everything is built from the claim's rule and thresholds and the verdict's ``values``; no number
is written here. A values dict of a shape this module does not know falls back to the rule's own
words. :func:`headline_lines` writes the report's headline for a terminal (the last lines of
``pytest claims``).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from kag.repro.claims.n1 import N1_INPUTS
from kag.repro.report.quantities import QUANTITY, fmt, key_quantity, num, span
from kag.repro.rules import SUPPORTED

# a lower-bound rule's quantity, as a sentence names it (default: QUANTITY)
SUBJECT = {
    "C1-PR": "the PR ratio PR(trained)/PR(init)",
    "C1-KL": "KL(trained‖init) − KL(independent init‖init)",
    "C1-RR": "the RR ratio RR(trained)/RR(init)",
    "C2": "layer 1's PR ratio minus layer 2's",
    "C3": "the PR ratio at the highest k minus the one at the lowest k",
    "C10": "the zero-row fraction of the trained Jacobian minus the init's",
    "N2": "PR(trained)/PR(norm-matched surrogate)",
}
# N2's cells each judge one observable (their "obs" parameter) against the norm-matched surrogate
N2_SUBJECT = {"PR": "PR(trained)/PR(norm-matched surrogate)", "KL": "KL(trained‖init) − KL(surrogate‖init)",
              "RR": "RR(trained)/RR(norm-matched surrogate)"}
RHO_X = {"C4": "width", "C11": "training epoch"}  # what a rho rule ranks the mean PR ratio against


def _bars(lower: Any, upper: Any, threshold: float) -> str:
    """Where error bars lie relative to a "lower bound > threshold" rule's threshold."""
    lo, hi = num(lower), num(upper)
    if math.isnan(lo) or math.isnan(hi):
        return "undefined"
    if lo > threshold:
        return f"wholly above {fmt(threshold, 'g')}"
    if hi <= threshold:
        return f"wholly at or below {fmt(threshold, 'g')}"
    return f"straddling {fmt(threshold, 'g')}"


def _summary(s: Mapping[str, Any], threshold: float) -> str:
    """"mean 1.00 ± 0.20 (SD over seeds, SE 0.01): error bars 0.60 to 1.40, straddling 1"."""
    se = num(s.get("measurement_se"))
    se_text = f", SE {fmt(se, '.2g')}" if math.isfinite(se) else ""
    return (f"mean {fmt(s.get('mean'))} ± {fmt(s.get('std'), '.2g')} (SD over seeds{se_text}): error bars "
            f"{fmt(s.get('lower_bound'))} to {fmt(s.get('upper_bound'))}, "
            f"{_bars(s.get('lower_bound'), s.get('upper_bound'), threshold)}")


def _lower_bound(claim: Any, v: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    t = num(v.get("threshold"))
    subject = (N2_SUBJECT.get(str(params.get("obs", "PR"))) if claim.id == "N2" else None) \
        or SUBJECT.get(claim.id) or QUANTITY.get(claim.id) or claim.measurement
    return f"expected {subject} above {fmt(t, 'g')} (rule: {claim.rule}); measured {_summary(v, t)}"


def _mean_at_least(claim: Any, v: Mapping[str, Any]) -> str:
    t = num(v.get("threshold"))
    return (f"expected a mean {QUANTITY.get(claim.id, 'value')} of at least {fmt(t, '.4g')} (rule: {claim.rule}); "
            f"measured mean {fmt(v.get('mean'), '.4g')} ± {fmt(v.get('std'), '.2g')} (SD over seeds), error bars "
            f"{fmt(v.get('lower_bound'), '.4g')} to {fmt(v.get('upper_bound'), '.4g')}")


def _rho(claim: Any, v: Mapping[str, Any]) -> str:
    t, x_name = num(v.get("threshold")), RHO_X.get(claim.id, "x")
    xs, ys = list(v.get("x") or []), list(v.get("y") or [])
    trend = (f", mean PR ratio {fmt(ys[0])} at {x_name} {fmt(xs[0], 'g')} and {fmt(ys[-1])} at {x_name} "
             f"{fmt(xs[-1], 'g')}") if xs and ys else ""
    rho = num(v.get("rho"))
    rho_text = "ρ undefined (the means do not rank)" if math.isnan(rho) else f"ρ = {fmt(rho, '+.2f')}"
    se = num(v.get("measurement_se"))
    return (f"expected the mean PR ratio to rise with {x_name}: Spearman ρ ≥ {fmt(t, 'g')} (contradicted at "
            f"ρ ≤ {fmt(-t, 'g')}); measured {rho_text}"
            + (f" (measurement SE {fmt(se, '.2g')})" if math.isfinite(se) else "") + trend)


def _reduction(claim: Any, v: Mapping[str, Any]) -> str:
    lo, hi = (list(v.get("range") or []) + [math.nan, math.nan])[:2]
    t = num(v.get("min_lower_bound"))
    red, (ilo, ihi) = num(v.get("reduction")), (list(v.get("reduction_interval") or []) + [None, None])[:2]
    moved = (f" (augmentation raised it by {fmt(-100 * red, '.0f')}%)" if red < 0 else
             f" (augmentation lowered it by {fmt(100 * red, '.0f')}%)" if red >= 0 else "")
    aug = list((v.get("augmented_conditions") or {}).values())
    lowest = span([min((num(s.get("lower_bound")) for s in aug), default=math.nan)])
    above = {True: "yes", False: f"no (lowest lower bound {lowest})"}.get(v.get("augmented_all_above"), "n/a")
    return (f"expected the augmented PR ratio to be {fmt(100 * num(lo), '.0f')}–{fmt(100 * num(hi), '.0f')}% lower "
            f"than the standard one (reduction in [{fmt(lo, 'g')}, {fmt(hi, 'g')}]) and its lower bound above "
            f"{fmt(t, 'g')} in every condition; measured a reduction of {fmt(red, '.2f')}{moved}, per-seed interval "
            f"{fmt(ilo, '.2f')} to {fmt(ihi, '.2f')}; augmented lower bound above {fmt(t, 'g')} in every condition: "
            f"{above}")


def _far(claim: Any, v: Mapping[str, Any]) -> str:
    t, most = num(v.get("min_lower_bound")), num(v.get("max_relative_change"))
    near, far = fmt(v.get("d_near"), "g"), fmt(v.get("d_far"), "g")
    lo, hi = (list(v.get("change_interval") or []) + [None, None])[:2]
    return (f"expected the PR ratio at d = {far} above {fmt(t, 'g')} (lower bound > {fmt(t, 'g')}) and within "
            f"±{fmt(100 * most, '.0f')}% of its value at d = {near}; measured at d = {far} "
            f"{_summary(v.get('far') or {}, t)}; change from d = {near} {fmt(100 * num(v.get('relative_change')), '+.0f')}% "
            f"(interval {fmt(100 * num(lo), '+.0f')}% to {fmt(100 * num(hi), '+.0f')}%)")


def _conditions(claim: Any, v: Mapping[str, Any]) -> str:
    t = num(v.get("min_lower_bound"))
    k = key_quantity(v)
    balls = "spread" in v
    every, weakest = ("at every radius", "at the weakest radius, r = {}") if balls else \
        ("in every patch", "in the weakest patch, {}")
    conds = list((v.get("conditions") or {}).values())
    text = (f"expected the PR ratio's lower bound above {fmt(t, 'g')} {every}"
            + (f" and the means over radii within a factor {fmt(v.get('max_spread'), 'g')} of each other" if balls
               else "")
            + f" (rule: {claim.rule}); measured lower bounds {span(s.get('lower_bound') for s in conds)}")
    if k is not None:
        text += f"; {weakest.format(k.where)}: {_summary(v['conditions'][k.where], t)}"
    if "spread" in v:
        text += (f"; spread of the means {fmt(v.get('spread'))} (at least {fmt(v.get('min_spread'))} given the "
                 "error bars)")
    return text


def _control(claim: Any, v: Mapping[str, Any]) -> str:
    parts = []
    for obs, (key, name) in N1_INPUTS.items():
        s = v.get(key)
        if isinstance(s, Mapping):
            verdict = (v.get("verdicts") or {}).get(obs, "")
            parts.append(f"{name} {verdict}: lower bound {fmt(s.get('lower_bound'))} against "
                         f"{fmt(s.get('threshold'), 'g')}")
    problems = list(v.get("problems") or [])
    measured = "; ".join(problems + parts) or "no numbers"
    return (f"expected the control to say no: no C1 rule supported on two independent initialisations, on finite "
            f"values that vary over seeds (rule: {claim.rule}); measured {measured}")


def expectation(claim: Any, values: Mapping[str, Any] | None, params: Mapping[str, Any] | None = None) -> str:
    """"expected ...; measured ..." for one cell of ``claim``, from its verdict ``values`` (and the
    cell's ``params``, which name N2's observable)."""
    v = values or {}
    if claim.control:
        return _control(claim, v)
    if "reduction" in v:
        return _reduction(claim, v)
    if "rho" in v:
        return _rho(claim, v)
    if isinstance(v.get("far"), Mapping):
        return _far(claim, v)
    if isinstance(v.get("conditions"), Mapping):
        return _conditions(claim, v)
    if "mean" in v and "min_standard" in claim.thresholds:  # C9: a mean at least, per regime
        return _mean_at_least(claim, v)
    if "mean" in v:
        return _lower_bound(claim, v, params or {})
    return f"expected {claim.rule}; measured {v or 'nothing'}"


def failure_text(claim: Any, verdict: Mapping[str, Any]) -> str:
    """A failing cell's message: its id, verdict and :func:`expectation` on the first line (the one
    pytest's short summary shows), the verdict's numbers on the second."""
    said = " (the control shows KAG)" if claim.control and verdict.get("verdict") == SUPPORTED else ""
    try:
        words = expectation(claim, verdict.get("values"), verdict.get("params"))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):  # values of an unexpected shape
        words = f"expected {claim.rule}"
    head = f"{claim.id} [{verdict.get('cell')}] {verdict.get('verdict')}{said}: {words}"
    detail = verdict.get("detail") or ""
    return f"{head}\n  numbers: {detail}" if detail else head


def headline_lines(head: Mapping[str, Any], outcomes: Mapping[Any, Mapping[str, Any]] | None = None) -> list[str]:
    """The report's headline (``results.json``'s "headline") as terminal lines: the outcome, a table
    of claim, status, robustness and key number, and, given a pytest run's ``outcomes`` (cell ->
    {"outcome", ...}), what its failures are."""
    lines = []
    if head.get("outcome"):
        lines.append(f"Outcome {head['outcome']}: {head.get('sentence', '')}")
    rows = [("claim", "status", "robustness", "key number")]
    rows += [(c["id"], c["label"], c["robustness"], f"{c['quantity']}: {c['value']}") for c in head.get("claims", [])]
    if len(rows) > 1:
        widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
        lines += ["  ".join(str(v).ljust(w) for v, w in zip(r[:3], widths)) + "  " + str(r[3]) for r in rows]
    outcomes = outcomes or {}
    failed = sum(o["outcome"] == "failed" for o in outcomes.values())
    xfailed = sum(o["outcome"] == "xfailed" for o in outcomes.values())
    if failed or xfailed:
        what = f"{failed} failed" + (f" and {xfailed} xfailed" if xfailed else "")
        lines.append(f"The {what} tests are cells that did not come out as the claim expects (contradicted or "
                     "inconclusive; for the control N1: supported or invalid), not crashes: each says above what was "
                     "expected and what was measured.")
    return lines
