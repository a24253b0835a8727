"""N1, the control: two independent random initialisations show no KAG (the C1 machinery must say no)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kag.repro.claims.c1 import RULE_KL, RULE_PR, RULE_RR
from kag.repro.criteria import Cell, Claim, Rule, format_values
from kag.repro.judges import cell_se, difference, difference_of_se, global_cells, global_se, global_values
from kag.repro.prose import cells_text, explain_generic, num, span, with_verdict
from kag.repro.results import Results
from kag.repro.rules import INVALID, SUPPORTED, control_verdict, degeneracies, rule_lower_bound_above


# N1 is the C1 machinery on a null: its thresholds are C1's, read from C1's rules, never repeated.
RULE = Rule.of(
               "the C1-PR, C1-KL and C1-RR rules (lower bound > {pr_min_lower_bound}, > {kl_min_lower_bound}, > "
               "{rr_min_lower_bound}) must not be supported on the null, and its values must be finite and vary over seeds",
    **{f"{obs}_min_lower_bound": rule.thresholds["min_lower_bound"]
       for obs, rule in (("pr", RULE_PR), ("kl", RULE_KL), ("rr", RULE_RR))})


# observable -> (key of its summary in a verdict's values, its name in messages)
N1_INPUTS = {"pr": ("pr_ratio_null", "PR ratio (null)"),
             "kl": ("kl_null_difference", "KL(null‖init) - KL(null2‖init)"),
             "rr": ("rr_ratio_null", "RR ratio (null)")}


def judge_n1(c: Claim, cell: Cell, r: Results):
    """The C1-PR, C1-KL and C1-RR rules on an independent init against the init: the PR and RR
    ratios of the null, and KL(null‖init) - KL(null2‖init) with a second independent init.
    Any NaN, Inf or constant input makes the cell invalid."""
    p, t, seeds = cell.p, c.thresholds, r.profile.seeds
    at = dict(n=p["n"], layer=p["layer"], k=p["k"])
    kl_null = global_values(r, **at, observable="kl", role="null")
    raw = {"PR ratio (null)": global_values(r, **at, observable="pr_ratio", role="null"),
           "RR ratio (null)": global_values(r, **at, observable="rr_ratio", role="null"), "KL(null‖init)": kl_null}
    missing = []
    try:
        kl_null2 = global_values(r, **at, observable="kl", role="null2")
        raw["KL(null2‖init)"] = kl_null2
    except LookupError:
        kl_null2 = [float("nan")] * len(seeds)
        missing.append("KL(null2‖init) is missing from the metric tables (no second independent initialisation)")
    inputs = {"pr": raw["PR ratio (null)"], "kl": difference(kl_null, kl_null2), "rr": raw["RR ratio (null)"]}
    se = {"pr": cell_se(global_se(r, **at, observable="pr_ratio", role="null")),
          "kl": difference_of_se(global_se(r, **at, observable="kl", role="null"),
                                  global_se(r, **at, observable="kl", role="null2")),
          "rr": cell_se(global_se(r, **at, observable="rr_ratio", role="null"))}
    with np.errstate(invalid="ignore"):  # an Inf input is named below, not warned about
        judged = {obs: rule_lower_bound_above(x, t[f"{obs}_min_lower_bound"], se[obs]) for obs, x in inputs.items()}
    judged_inputs = {N1_INPUTS[obs][1]: x for obs, x in inputs.items() if not (obs == "kl" and missing)}
    # NaN/Inf anywhere; a zero std where it is judged (KL(null‖init) alone may be constant over seeds)
    problems = missing + degeneracies(raw, seeds, varying=False) + degeneracies(judged_inputs, seeds, finite=False)
    verdict = control_verdict([v for v, _ in judged.values()], problems)
    values = {N1_INPUTS[obs][0]: v for obs, (_, v) in judged.items()} | {
        "verdicts": {obs: v for obs, (v, _) in judged.items()}, "kl_null": kl_null, "kl_null2": kl_null2,
        "problems": problems}
    detail = "; ".join(f"{N1_INPUTS[obs][1]} {verdict_}: {format_values(v)}" for obs, (verdict_, v) in judged.items())
    return verdict, values, (f"{'; '.join(problems)}; {detail}" if problems else detail)


def null_lower_bounds(rows: list[dict[str, Any]]) -> str:
    parts = []
    for obs in ("pr", "kl", "rr"):
        lbs = [r["values"][N1_INPUTS[obs][0]]["lower_bound"] for r in rows]
        parts.append(f"{obs.upper()} {min(lbs):.3g} to {max(lbs):.3g}")
    return "null lower bounds: " + ", ".join(parts)


def explain_n1(c: Claim, rows: list[dict[str, Any]]) -> str:
    shows, invalid = with_verdict(rows, SUPPORTED), with_verdict(rows, INVALID)
    parts = []
    if shows:
        which = []
        for obs, (key, name) in N1_INPUTS.items():
            hit = [r for r in shows if (r["values"].get("verdicts") or {}).get(obs) == SUPPORTED]
            if hit:
                which.append(f"{name}: lower bound {span(r['values'][key].get('lower_bound') for r in hit)} above "
                             f"{num(hit[0]['values'][key].get('threshold'), 'g')} in {len(hit)}")
        parts.append(f"{cells_text(shows, rows)} it showed KAG ({'; '.join(which)})")
    if invalid:
        # one problem per line, however many cells share it
        problems = list(dict.fromkeys(p for r in invalid
                                      for p in r.get("problems") or r["values"].get("problems") or []))
        first = problems[0] if problems else "invalid values"
        more = f", and {len(problems) - 1} more problems" if len(problems) > 1 else ""
        parts.append(f"{cells_text(invalid, rows)} its numbers could not be judged ({first}{more})")
    if not parts:
        return explain_generic(c, rows)
    return "Expected two independent initialisations to show no KAG, but " + "; and ".join(parts)


CLAIMS_HERE = (
    Claim(
        id="N1",
        rule=RULE,
        order=16,
        estimators=("PR", "RR"),
        statement="Control: two independent random initialisations show no KAG.",
        measurement="the C1-PR, C1-KL and C1-RR rules applied to an independent init vs the init: PR ratio and RR "
                    "ratio of the null, and KL(null‖init) - KL(null2‖init) with a second independent init, "
                    "per seed",
        cells_description="every n, k, layer; standard regime",
        cells_of=global_cells("N1"),
        evaluate=judge_n1,
        headline=null_lower_bounds,
        control=True,
        explain=explain_n1,
    ),
)
