"""Everything behind the report, as one JSON-serialisable dict (written as ``results.json``).

Verdicts come either from a pytest run (the outcomes the controller collected) or, for
``kag report``, from judging every cell on the cached tables; figures and provenance read the
cached tables and model manifests. Nothing here trains or computes metrics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

import numpy as np
import torch

from kag.experiments.analysis import SPATIAL_ANALYSES, SURROGATES
from kag.devices import resolve_device
from kag.errors import MissingResults
from kag.repro.claims import BY_ID, CLAIMS
from kag.repro.criteria import CONTROL_SAYS_NO, CONTROL_SHOWS_EFFECT, Cell, Claim
from kag.repro.claims.n2 import N2_READING
from kag.repro.prose import plain
from kag.repro.multiverse import claim_variants, judge_variants, robustness
from kag.repro.profiles import Profile
from kag.repro.report.quantities import QUANTITY, claim_value
from kag.repro.results import Results, groups_needed
from kag.repro.rules import CONTRADICTED, INCONCLUSIVE, INVALID, SUPPORTED, VERDICTS
from kag.repro.studies import DEFAULT_STUDY, does_not_apply, get_study, layers_of, regimes_of, why_not_judged
from kag.experiments.table import TABLE_VERSION, ResultTable
from kag.experiments.train import REGIMES

SURROGATE_ROLES = tuple(SURROGATES)  # surrogate (rows and columns), surrogate_rows, surrogate_cols
RR_SOURCES = ("index samples", "images", "rotations")
TABLE_FILE = "table.csv"  # the long-format results table, written beside results.json


# -- verdicts ---------------------------------------------------------------------------------------
# Claim statuses (SPEC §7): reproduced when every cell is supported, contradicted when any cell is
# contradicted, inconclusive otherwise, not run when no cell was judged. A control reads them as:
# reproduced = the control says no (every cell contradicted or inconclusive, on valid numbers),
# contradicted = the control shows KAG (some cell supported), inconclusive = some cell invalid (NaN,
# Inf or zero variance; this outranks a supported cell: its numbers cannot be trusted either way)
# or not judged.
REPRODUCED, NOT_RUN = "reproduced", "not run"
STATUSES = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)
NOT_JUDGED = "not judged"  # a cell with no verdict: skipped, not run, or an error before judging


def _cell_row(c: Claim, cell: Cell, outcome: str, verdict: dict | None, message: str = "") -> dict:
    row = {"cell": cell.id, "params": cell.p, "outcome": outcome, "verdict": None, "as_expected": None,
           "problems": [], "values": {}, "detail": message}
    if verdict:
        row.update(verdict=verdict["verdict"], as_expected=verdict["as_expected"], problems=verdict.get("problems", []),
                   values=verdict["values"], detail=verdict["detail"])
    return row


def verdicts_from_outcomes(profile: Profile, outcomes: dict[tuple[str, str], dict]) -> dict[str, list[dict]]:
    """claim id -> one row per cell, from what a pytest run recorded per (claim id, cell id)
    (cells the run did not reach: "not run")."""
    out = {}
    for c in CLAIMS:
        rows = []
        for cell in c.cells(profile):
            info = outcomes.get((c.id, cell.id))
            if info is None:
                rows.append(_cell_row(c, cell, "not run", None))
            else:  # a skipped cell carries the reason it was not judged, as in verdicts_from_cache
                reason = why_not_judged(c, profile) if info["outcome"] == "skipped" else None
                rows.append(_cell_row(c, cell, info["outcome"], info.get("verdict"),
                                      info.get("message") or reason or ""))
        out[c.id] = rows
    return out


NOT_REPRODUCED = ("fail", "xfail")  # how a paper claim's cell that is not as expected is reported (pytest's option)


def verdicts_from_cache(results: Results, not_reproduced: str = "fail") -> dict[str, list[dict]]:
    """Judge every cell on cached tables (``kag report``); cells whose tables are missing are not run.

    Each cell's outcome is what ``pytest claims --kag-not-reproduced=<not_reproduced>`` says of it: a
    paper claim's cell that is not as expected "failed", or "xfailed" under ``"xfail"`` (a control's
    always "failed"); a cell registered as an expected failure of the profile "xfailed" or "xpassed"."""
    from kag.repro.judging import judge_every_cell

    if not_reproduced not in NOT_REPRODUCED:
        raise ValueError(f"not_reproduced={not_reproduced!r} is not allowed: use 'fail' or 'xfail'")
    out: dict[str, list[dict]] = {c.id: [] for c in CLAIMS}
    for j in judge_every_cell(results):
        c, cell, v = j.claim, j.cell, j.verdict
        if v is None:
            out[c.id].append(_cell_row(c, cell, j.outcome, None, j.reason))
            continue
        registered = results.profile.name in c.xfail
        ok = v.as_expected
        if registered:
            outcome = "xpassed" if ok else "xfailed"
        else:
            outcome = "passed" if ok else ("xfailed" if not_reproduced == "xfail" and not c.control else "failed")
        out[c.id].append(_cell_row(c, cell, outcome, v.to_dict()))
    return out


def verdict_counts(rows: list[dict]) -> dict[str, int]:
    """Cells per verdict word, in the order of :data:`VERDICTS` then "not judged" (zero counts omitted)."""
    words = [r["verdict"] or NOT_JUDGED for r in rows]
    return {w: words.count(w) for w in (*VERDICTS, NOT_JUDGED) if words.count(w)}


def counts_text(counts: dict[str, int]) -> str:
    """``"20 supported, 1 contradicted, 3 inconclusive"``."""
    return ", ".join(f"{n} {word}" for word, n in counts.items())


def _control_status(rows: list[dict], judged: list[dict]) -> tuple[str, str]:
    invalid = [r for r in judged if r["verdict"] == INVALID]
    if invalid:
        first = invalid[0]
        problem = (first["problems"] or ["invalid values"])[0]
        more = f", and {len(invalid) - 1} more" if len(invalid) > 1 else ""
        return INCONCLUSIVE, f"invalid: {problem} (cell {first['cell']}{more})"
    shows = [r for r in judged if r["verdict"] == SUPPORTED]
    if shows:
        return CONTRADICTED, f"{CONTROL_SHOWS_EFFECT} in {len(shows)} of {len(rows)} cells"
    if len(judged) == len(rows):
        return REPRODUCED, CONTROL_SAYS_NO
    return INCONCLUSIVE, f"inconclusive: {len(rows) - len(judged)} of {len(rows)} cells not judged"


def claim_status(c: Claim, rows: list[dict]) -> dict[str, Any]:
    """The claim's status (one of :data:`STATUSES`), the words to show for it (``label``; a
    control's own words, see above), and the cells per verdict."""
    judged = [r for r in rows if r["verdict"] is not None]
    if not judged:
        status, label = NOT_RUN, NOT_RUN
    elif c.control:
        status, label = _control_status(rows, judged)
    else:
        status = (CONTRADICTED if any(r["verdict"] == CONTRADICTED for r in judged)
                  else REPRODUCED if all(r["verdict"] == SUPPORTED for r in rows) else INCONCLUSIVE)
        label = status
    counts = verdict_counts(rows)
    return {"status": status, "label": label, "cells": len(rows), "judged": len(judged),
            "as_expected": sum(bool(r["as_expected"]) for r in judged), "counts": counts,
            "counts_text": counts_text(counts), "key_number": c.key_number(judged)}


# -- figure data: filters over the results table --------------------------------------------------
def _by_seed(t: ResultTable, seeds: tuple[int, ...], **where: Any) -> list[float | None]:
    """Per-seed values in the profile's seed order (None where a seed has no such row)."""
    found = t.by_seed(**where)
    return [found.get(s) for s in seeds]


def figure_data(table: ResultTable, profile: Profile) -> dict[str, Any]:
    """Seed-level numbers for every figure, from whatever rows are cached."""
    p, seeds = profile, profile.seeds
    data: dict[str, Any] = {"global": {}, "zero_rows": {}, "timeline": {}, "accuracy": {}, "spatial": {}}
    clean = table.select(eval_images="clean")
    for regime in REGIMES:
        for n in p.widths:
            t = clean.select(regime=regime, width=n)
            if not len(t):
                continue
            g = data["global"].setdefault(regime, {}).setdefault(str(n), {})
            glob = t.select(analysis="global")
            for layer in layers_of(profile):
                for k in p.metrics.ks:
                    at = glob.select(layer=layer, k=k)
                    g.setdefault(layer, {})[str(k)] = {
                        f"{obs}{suffix}": _by_seed(at, seeds, observable=obs, role=role)
                        for obs in ("pr_ratio", "kl", "rr_ratio") for suffix, role in (("", "trained"), ("_null", "null"))
                    } | {f"{obs}_{role}": _by_seed(at, seeds, observable=obs, role=role)
                         for obs in ("pr", "rr") for role in ("trained", "init")}
            zero = t.select(analysis="zero_rows", observable="zero_row_fraction")
            data["zero_rows"].setdefault(regime, {})[str(n)] = {
                layer: {role: _by_seed(zero, seeds, layer=layer, role=role) for role in ("trained", "init", "null")}
                for layer in layers_of(profile)
            }
            acc = t.select(analysis="accuracy", observable="test_accuracy")
            data["accuracy"].setdefault(regime, {})[str(n)] = {
                "clean": _by_seed(acc, seeds, condition="clean"), "shifted": _by_seed(acc, seeds, condition="shifted")}
            tl = t.select(analysis="timeline", observable="pr_ratio")
            if len(tl):
                epochs = tl.unique("condition")
                data["timeline"].setdefault(regime, {})[str(n)] = {
                    "epochs": [int(e) for e in epochs],
                    "pr_ratio": [[tl.value(seed=s, condition=e) for e in epochs] for s in seeds]}
    for n in p.spatial_widths:
        for regime, ev in (("standard", "clean"), ("augmented", "clean"), ("augmented", "augmented")):
            t = table.select(width=n, regime=regime, eval_images=ev, analysis=set(SPATIAL_ANALYSES))
            if not len(t):
                continue
            label = regime if ev == "clean" else "augmented (shifted test images)"
            sp = data["spatial"].setdefault(str(n), {}).setdefault(label, {})
            for analysis in SPATIAL_ANALYSES:
                for layer in layers_of(profile):
                    for k in p.metrics.spatial_ks:
                        at = t.select(analysis=analysis, layer=layer, k=k)
                        sp.setdefault(analysis, {}).setdefault(layer, {})[str(k)] = {
                            cond: {"pr_ratio": _by_seed(at, seeds, condition=cond, observable="pr_ratio"),
                                   "pool_size": at.select(condition=cond, observable="pool_size").rows[0].value}
                            for cond in at.unique("condition")
                        }
    data["surrogate"] = _surrogate_figure_data(table, profile)
    data["sampling"] = _sampling_figure_data(table, profile)
    return data


def _surrogate_figure_data(table: ResultTable, profile: Profile) -> dict[str, Any]:
    """layer -> observable -> variant -> width -> per-seed X(trained)/X(variant), at the largest k."""
    k = max(profile.metrics.ks)
    glob = table.select(analysis="global", regime="standard", eval_images="clean", k=k)
    out: dict[str, Any] = {}
    for layer in layers_of(profile):
        for obs in ("pr", "kl", "rr"):
            for role in SURROGATE_ROLES:
                at = glob.select(layer=layer, observable=f"{obs}_trained_over", role=role)
                per_width = {str(n): _by_seed(at, profile.seeds, width=n) for n in profile.widths
                             if len(at.select(width=n))}
                if per_width:
                    out.setdefault(layer, {}).setdefault(obs, {})[role] = per_width
    return {"k": k, "layers": out} if out else {}


def _sampling_figure_data(table: ResultTable, profile: Profile) -> dict[str, Any]:
    """layer -> width -> {"sizes", "pr_ratio": per-seed lists per size}: the PR ratio against S."""
    at = table.select(analysis="sampling", regime="standard", eval_images="clean", observable="pr_ratio")
    out: dict[str, Any] = {}
    for layer in layers_of(profile):
        for n in profile.widths:
            t = at.select(layer=layer, width=n)
            sizes = t.unique("condition")
            if sizes:
                out.setdefault(layer, {})[str(n)] = {
                    "sizes": [int(x) for x in sizes],
                    "pr_ratio": [_by_seed(t, profile.seeds, condition=size) for size in sizes]}
    return out


# -- methods: the observables' own sampling and the surrogate diagnostics -------------------------
def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _fmt(x: float, spec: str = ".3g") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def _global_cells(profile: Profile):
    """Every (width, layer, k) of the profile's global analyses, in report order."""
    return ((n, layer, k) for n in profile.widths for layer in layers_of(profile) for k in profile.metrics.ks)


def methods(table: ResultTable, profile: Profile) -> list[dict[str, Any]]:
    """Tables for the report's methods section, each ``{"title", "note", "columns", "rows"}`` of strings:
    exact-zero minors, KL beside JS and the measurement SEs per cell; PR ratio against S; the
    surrogate diagnostics (PR, KL and RR against each variant; C5-C7 against the surrogate)."""
    glob = table.select(analysis="global", regime="standard", eval_images="clean")
    out = []
    rows = []
    for n, layer, k in _global_cells(profile):
        at = glob.select(width=n, layer=layer, k=k)
        if not len(at):
            continue

        def mean(observable: str, role: str = "trained") -> float:
            return _mean(list(at.by_seed(observable=observable, role=role).values()))

        rows.append([str(n), layer, str(k), _fmt(mean("zero_minor_fraction")), _fmt(mean("zero_minor_fraction", "init")),
                     _fmt(mean("kl")), _fmt(mean("js")), _fmt(mean("kl", "null")), _fmt(mean("js", "null")),
                     _fmt(mean("pr_ratio_se")), _fmt(mean("kl_se")), _fmt(mean("rr_ratio_se"))])
    if rows:
        out.append({"title": "Exact-zero minors, KL beside Jensen-Shannon, and measurement errors",
                    "note": "Standard regime, means over seeds. Exact zeros are never dropped: they sit in the "
                            "underflow bin of the KL and JS histograms (SPEC §5). Measurement SE: bootstrap over "
                            "images and index samples for the PR ratio; for KL, a bootstrap over images and one over "
                            "index-sample columns, bin edges fixed, variances added; for the RR ratio, its three "
                            "sources (index samples, images, rotations) combined, each by a bootstrap of that source "
                            "alone.",
                    "columns": ["n", "layer", "k", "zero minors (trained)", "zero minors (init)", "KL", "JS",
                                "KL null", "JS null", "PR ratio SE", "KL SE", "RR ratio SE"], "rows": rows})
    variance = table.select(analysis="rr_variance", regime="standard", eval_images="clean")
    rr = glob.select(observable="rr_ratio", role="trained")
    rows = []
    for n, layer, k in _global_cells(profile):
        at = variance.select(width=n, layer=layer, k=k)
        if not len(at):
            continue
        parts = {c: _mean(list(at.select(condition=c).by_seed().values())) for c in at.unique("condition")}
        total = float(np.sqrt(sum(v * v for v in parts.values() if np.isfinite(v))))
        seeds = [v for v in rr.select(width=n, layer=layer, k=k).by_seed().values() if np.isfinite(v)]
        sd = float(np.std(seeds, ddof=1)) if len(seeds) > 1 else float("nan")
        rows.append([str(n), layer, str(k), *(_fmt(parts.get(c, float("nan"))) for c in RR_SOURCES),
                     _fmt(total), _fmt(sd), _fmt(total / sd if sd else float("nan"), ".2f")])
    if rows:
        m = profile.metrics
        out.append({"title": "Rotation ratio: where its measurement error comes from",
                    "note": f"Standard regime. SE of the RR-ratio estimator (geometric mean over {m.rr_index_samples} index "
                            f"samples, {m.n_rotation_images} images, {m.n_rotations} rotations) from each source "
                            "alone, by bootstrap with the other two fixed (mean over seeds), their combination, and "
                            "the SD of the RR ratio between seeds. SPEC §5 asks for SE / SD <= 1/3.",
                    "columns": ["n", "layer", "k", *(f"SE: {c}" for c in RR_SOURCES), "SE combined",
                                "SD between seeds", "SE / SD"], "rows": rows})
    sampling = table.select(analysis="sampling", regime="standard", eval_images="clean", observable="pr_ratio")
    sizes = sampling.unique("condition")
    rows = [[str(n), layer] + [_fmt(_mean(list(sampling.select(width=n, layer=layer, condition=size).by_seed()
                                               .values()))) for size in sizes]
            for n in profile.widths for layer in layers_of(profile) if len(sampling.select(width=n, layer=layer))]
    if rows:
        out.append({"title": "PR ratio against the number of sampled minors S",
                    "note": f"k = {max(profile.metrics.ks)}, standard regime, means over seeds; the first S minors of "
                            "one long index sample. The verdicts use S = "
                            f"{profile.metrics.n_samples:,}: heavy-tailed minors make PR grow with S (SPEC §5).",
                    "columns": ["n", "layer"] + [f"S = {int(x):,}" for x in sizes], "rows": rows})
    rows = []
    for n, layer, k in _global_cells(profile):
        at = glob.select(width=n, layer=layer, k=k)
        cells = [_fmt(_mean(list(at.by_seed(observable=f"{obs}_trained_over", role=role).values())))
                 for role in SURROGATE_ROLES for obs in ("pr", "kl", "rr")]
        if k >= 2 and any(c != "n/a" for c in cells):
            rows.append([str(n), layer, str(k), *cells])
    if rows:
        out.append({"title": "How much the norms explain: X(trained) / X(norm-matched surrogate)",
                    "note": "Standard regime, means over seeds. 1 means the Jacobian's row and column norms alone "
                            "reproduce the observable; > 1 means the trained network has more than its norms. "
                            "Variants: rows and columns matched (the N2 surrogate), rows only, columns only.",
                    "columns": ["n", "layer", "k"] + [f"{obs} / {label}" for label in ("both", "rows", "cols")
                                                      for obs in ("PR", "KL", "RR")], "rows": rows})
    spatial = table.select(regime="standard", eval_images="clean", analysis={"balls", "patches", "separation"},
                           observable="pr_trained_over", role="surrogate")
    rows = []
    for n in sorted(set(spatial.unique("width"))):
        for analysis in SPATIAL_ANALYSES:
            for layer in layers_of(profile):
                for k in profile.metrics.spatial_ks:
                    at = spatial.select(width=n, analysis=analysis, layer=layer, k=k)
                    if len(at):
                        rows.append([str(n), analysis, layer, str(k), ", ".join(
                            f"{cond}: {_fmt(_mean(list(at.select(condition=cond).by_seed().values())))}"
                            for cond in at.unique("condition"))])
    if rows:
        out.append({"title": "C5-C7 against the surrogate (diagnostic)",
                    "note": "PR(trained)/PR(surrogate) in each spatial condition at the spatial width, standard "
                            "regime, means over seeds: how much of the scale-agnostic, every-region and far-apart "
                            "PR ratios the norms alone explain. Not judged.",
                    "columns": ["n", "analysis", "layer", "k", "per condition"], "rows": rows})
    return out


def n2_statement(criteria: list[dict[str, Any]]) -> str:
    """One plain paragraph on what N2 found, whatever it found (SPEC §7)."""
    n2 = next((c for c in criteria if c["id"] == "N2"), None)
    if n2 is None or n2["status"] == "not run":
        return "N2 was not run: the surrogate rows are missing from the metric tables."
    found = {"reproduced": "PR(trained)/PR(surrogate) has its lower bound above 1 in every cell: the trained "
                           "Jacobians concentrate their minors beyond what their row and column norms explain.",
             "contradicted": "In at least one cell the norm-matched surrogate reaches the trained PR (the upper "
                             "bound of PR(trained)/PR(surrogate) is at most 1): there, which units and which pixels "
                             "are active explains the PR ratio.",
             "inconclusive": "The surrogate comes close to the trained PR but the seeds do not separate them: the "
                             "data cannot say whether PR sees more than the row and column norms."}[n2["status"]]
    return f"N2 is {n2['status']} ({n2['counts_text']}). {found} {N2_READING}"


# -- the exact-zero minors beside every PR claim ---------------------------------------------------
# claim id -> which orders k its cells read (None: every k); the claims judged on the PR ratio
ZERO_MINOR_CLAIMS: dict[str, str | None] = {"C1-PR": None, "C2": "k>=2", "C3": "lowest and highest", "N2": "k>=2",
                                            "C4": "highest"}
# the spatial claims: the analyses their cells read (at the spatial width, both regimes)
ZERO_MINOR_SPATIAL: dict[str, tuple[str, ...]] = {"C5": ("balls",), "C6": ("patches",), "C7": ("separation",),
                                                  "C8": ("balls", "patches", "separation")}
ZERO_NOTE = ("Exact-zero fraction of the sampled minors (mean over seeds){where}. A fraction f of exact zeros inflates "
             "PR by about (1 - f)^-1/2, so a layer or order with more zeros reads as less concentrated than it is.")


def _ks_of(claim_id: str, profile: Profile) -> list[int]:
    ks = sorted(profile.metrics.ks)
    which = ZERO_MINOR_CLAIMS.get(claim_id)
    if which == "k>=2":
        return [k for k in ks if k >= 2]
    if which == "lowest and highest":
        return sorted({ks[0], ks[-1]}) if len(ks) > 1 else []
    if which == "highest":
        return ks[-1:]
    return ks


def zero_minor_table(table: ResultTable, profile: Profile, claim_id: str) -> dict[str, Any] | None:
    """The exact-zero fraction of the sampled minors (trained and init, means over seeds) at every
    (width, k) a PR claim reads, per layer, or None when the claim is not judged on the PR ratio or
    the rows are absent. A fraction f of exact zeros inflates PR by about (1 - f)^-1/2 (issue 17),
    so a reader needs it beside every PR verdict."""
    if claim_id in ZERO_MINOR_SPATIAL:
        return _spatial_zero_minor_table(table, profile, ZERO_MINOR_SPATIAL[claim_id])
    if claim_id not in ZERO_MINOR_CLAIMS:
        return None
    regimes = regimes_of(profile) if claim_id == "C4" else ("standard",)  # C4 is judged in each regime
    zero = table.select(analysis="global", eval_images="clean", observable="zero_minor_fraction")
    rows = []
    for regime in regimes:
        for n in profile.widths:
            for k in _ks_of(claim_id, profile):
                at = zero.select(width=n, k=k, regime=regime)
                if not len(at):
                    continue
                rows.append(([regime] if len(regimes) > 1 else []) + [str(n), str(k)]
                            + [_fmt(_mean(list(at.by_seed(layer=layer, role=role).values())), ".2f")
                               for layer in layers_of(profile) for role in ("trained", "init")])
    if not rows:
        return None
    return {"columns": (["regime"] if len(regimes) > 1 else []) + ["n", "k"]
            + [f"{layer} {role}" for layer in layers_of(profile) for role in ("trained", "init")],
            "rows": rows, "note": ZERO_NOTE.format(where=", standard regime" if len(regimes) == 1 else "")}


def _spatial_zero_minor_table(table: ResultTable, profile: Profile, analyses: tuple[str, ...]) -> dict[str, Any] | None:
    """The exact-zero fraction of the minors of spatial analyses at the spatial width, per regime,
    analysis and k: the range over the analysis' conditions (radii, patches, distances) of the means
    over seeds."""
    zero = table.select(analysis=set(analyses), eval_images="clean", observable="zero_minor_fraction")
    rows = []
    for n in profile.spatial_widths:
        for regime in REGIMES:
            for analysis in analyses:
                for k in sorted(profile.metrics.ks):
                    at = zero.select(width=n, regime=regime, analysis=analysis, k=k)
                    if not len(at):
                        continue
                    cells = []
                    for layer in layers_of(profile):
                        for role in ("trained", "init"):
                            means = [_mean(list(at.by_seed(layer=layer, role=role, condition=c).values()))
                                     for c in at.unique("condition")]
                            means = [m for m in means if m is not None and math.isfinite(m)]
                            lo, hi = (min(means), max(means)) if means else (math.nan, math.nan)
                            cells.append(_fmt(lo, ".2f") if _fmt(lo, ".2f") == _fmt(hi, ".2f")
                                         else f"{_fmt(lo, '.2f')}–{_fmt(hi, '.2f')}")
                    rows.append([str(n), regime, analysis, str(k)] + cells)
    if not rows:
        return None
    return {"columns": ["n", "regime", "analysis", "k"]
            + [f"{layer} {role}" for layer in layers_of(profile) for role in ("trained", "init")],
            "rows": rows, "note": ZERO_NOTE.format(where=", range over the analysis' conditions, clean test images")}


# -- the headline: a replication journal's summary --------------------------------------------------
RE, NOT_RE, PARTIAL = "[Re]", "[¬Re]", "partial"  # every, no, some paper claim reproduced (ReScience)
OUTCOME_WORDS = {RE: "every paper claim judged here reproduced", NOT_RE: "no paper claim judged here reproduced",
                 PARTIAL: "some paper claims reproduced, others not", NOT_RUN: "no paper claim was judged"}
NO_ROBUSTNESS = "—"  # a claim without pre-registered variants in the data


def counted_in_outcome(entry: dict[str, Any]) -> bool:
    """Whether a claim counts towards [Re]/[¬Re]: the paper's claims do; the control N1 and the claims
    beyond the paper (N2, whose id starts with N, and those registered ``beyond_paper``, as C2-depth)
    are listed but not counted."""
    claim = BY_ID.get(str(entry["id"]))
    beyond = str(entry["id"]).startswith("N") or (claim is not None and claim.beyond_paper)
    return not entry.get("control") and not beyond


def _role(entry: dict[str, Any]) -> str:
    return "control" if entry.get("control") else "paper" if counted_in_outcome(entry) else "beyond the paper"


def robustness_text(entry: dict[str, Any]) -> str:
    """"robust", "fragile (S=2,000, non-zero minors disagree)", "not run", or "—" when the data has none."""
    rob = entry.get("robustness") or {}
    status = rob.get("status")
    if not status:
        return NO_ROBUSTNESS
    disagree = rob.get("disagree") or []
    return f"{status} ({', '.join(map(str, disagree))} disagree{'s' if len(disagree) == 1 else ''})" if disagree \
        else str(status)


def _does_not_apply(entry: dict[str, Any]) -> str:
    """Why a claim does not apply to the report's study ("does not apply to the ... study: ..."), or ""
    when it applies (recorded at assembly from :func:`kag.repro.studies.does_not_apply`)."""
    reason = entry.get("does_not_apply") or ""
    return reason[len(entry["id"]) + 1:] if reason.startswith(f"{entry['id']} does not apply to") else ""


def _deviation(entry: dict[str, Any]) -> str:
    """What differs from the paper, in a short phrase: the claim's plain sentence when it did not reproduce."""
    if entry["status"] == REPRODUCED:
        return "none" if not entry.get("control") else "none: the control says no"
    if entry["status"] == NOT_RUN:
        inapplicable = _does_not_apply(entry)
        if inapplicable:
            return f"not run: {inapplicable}"
        reason = "judged under the " + ", ".join(entry.get("profiles") or []) + " profile only" \
            if all(r.get("outcome") == "skipped" for r in entry["cells"]) and entry["cells"] else "no cell was judged"
        return f"not run: {reason}"
    return entry.get("plain") or entry.get("label") or entry["status"]


def compute_used(provenance: dict[str, Any]) -> dict[str, Any]:
    """The hardware and the wall time per stage, from the report's provenance."""
    prov = provenance or {}
    t = prov.get("timings") or {}
    name, device = prov.get("device_name"), prov.get("device")
    hardware = f"{name} ({device})" if name and device else str(name or device or "n/a")
    if prov.get("cpu_count"):
        hardware += f", {prov['cpu_count']} CPU cores, {prov.get('torch_threads', 'n/a')} torch threads"
    trained_on = ", ".join(prov.get("training_devices") or [])
    stages = [("training (summed over models)", t.get("training_seconds")),
              ("metric tables (summed over tables)", t.get("metrics_seconds")),
              *((f"  metrics: {stage}", s) for stage, s in (t.get("metrics_seconds_by_stage") or {}).items()),
              ("this run, wall time", t.get("session_seconds"))]
    return {"hardware": hardware, "training_devices": trained_on,
            "stages": [{"stage": stage, "seconds": s} for stage, s in stages if s is not None]}


def headline(criteria: list[dict[str, Any]], provenance: dict[str, Any]) -> dict[str, Any]:
    """The summary a reader needs first, in the style of a replication journal (ReScience): the
    overall outcome over the paper's claims ([Re] every one reproduced, [¬Re] none, partial some;
    claims not run under this profile and N1/N2 are not counted), then per claim the paper's
    statement, our value of its key quantity (:func:`kag.repro.report.quantities.claim_value`), the
    primary verdict, its robustness, the deviations from the paper, and the compute it took."""
    claims = []
    inapplicable = [e["id"] for e in criteria if e["status"] == NOT_RUN and _does_not_apply(e)]
    for e in criteria:
        claims.append({"id": e["id"], "statement": e["claim"], "quantity": QUANTITY.get(e["id"], e.get("measurement")),
                       "value": claim_value(e["cells"]), "status": e["status"], "label": e.get("label") or e["status"],
                       "robustness": robustness_text(e), "robustness_status": (e.get("robustness") or {}).get("status"),
                       "deviation": _deviation(e), "counted": counted_in_outcome(e), "role": _role(e)})
    judged = [c for c in claims if c["counted"] and c["status"] != NOT_RUN]
    reproduced = [c["id"] for c in judged if c["status"] == REPRODUCED]
    missed = [c["id"] for c in judged if c["status"] != REPRODUCED]
    outcome = (NOT_RUN if not judged else RE if not missed else NOT_RE if not reproduced else PARTIAL)
    not_judged = [c["id"] for c in claims if c["counted"] and c["status"] == NOT_RUN and c["id"] not in inapplicable]
    not_counted = [c["id"] for c in claims if not c["counted"] and c["id"] not in inapplicable]
    sentence = f"{len(reproduced)} of {len(judged)} paper claims judged here reproduced"
    sentence += f" ({', '.join(reproduced)})" if reproduced else ""
    sentence += f"; not reproduced: {', '.join(missed)}" if missed else ""
    sentence += "."
    if not_judged:
        sentence += f" Not judged under this profile: {', '.join(not_judged)}."
    if inapplicable:
        sentence += f" Not applicable to this study: {', '.join(inapplicable)}."
    if not_counted:
        controls = [c["id"] for c in claims if c["id"] in not_counted and c["role"] == "control"]
        beyond = [i for i in not_counted if i not in controls]
        why = [f"{' and '.join(controls)} {'is a control' if len(controls) == 1 else 'are controls'}"] if controls else []
        why += [f"{' and '.join(beyond)} {'goes' if len(beyond) == 1 else 'go'} beyond the paper"] if beyond else []
        sentence += f" Listed but not counted: {', '.join(not_counted)} ({', '.join(why)})."
    robust = [c["id"] for c in claims if c["counted"] and c["robustness_status"] == "robust" and c["id"] in reproduced]
    if any(c["robustness_status"] for c in claims):
        sentence += f" Reproduced and robust under every pre-registered variant: {', '.join(robust) or 'none'}."
    return {"outcome": outcome, "outcome_words": OUTCOME_WORDS[outcome], "sentence": sentence,
            "reproduced": reproduced, "not_reproduced": missed, "not_judged": not_judged,
            "not_applicable": inapplicable, "not_counted": not_counted,
            "claims": claims, "compute": compute_used(provenance)}


# -- assumptions and provenance -----------------------------------------------------------------
def assumptions(p: Profile) -> list[dict[str, str]]:
    """SPEC's [assumed] choices and ours, with the values this profile used (and the study's own
    measurement choices, when it makes any)."""
    t, m = p.train, p.metrics
    study = [{"name": "Minor sampling", "value": "each row's column drawn from that unit's receptive field "
                                                 "(sampling = support; the separations keep uniform columns)",
              "source": f"SPEC §8a ({p.study})"}] if m.sampling == "support" else []
    return study + [
        {"name": "Widths", "value": ", ".join(map(str, p.widths)), "source": "SPEC §2 [assumed]"},
        {"name": "Initialisation", "value": "Kaiming normal, std = sqrt(2/fan_in); biases zero", "source": "SPEC §2 [assumed]"},
        {"name": "Learning rate", "value": f"{t.lr:g}", "source": "SPEC §2 [assumed]"},
        {"name": "Weight decay", "value": f"{t.weight_decay:g}", "source": "SPEC §2 [assumed]"},
        {"name": "Images the augmented regime is measured on", "value": f"{m.eval_images} (C8/C9 shown on both)",
         "source": "SPEC §3 [assumed]"},
        {"name": "KL histogram", "value": f"{m.kl_bins} bins over the pooled central {m.kl_central:.1%} of log10 minors, "
                                          "plus under- and overflow bins; exact zeros in the underflow bin (none "
                                          f"dropped); smoothing {m.kl_smoothing:g}; JS of the same histograms beside it",
         "source": "SPEC §5 [assumed bins and smoothing]"},
        {"name": "Jacobian precision", "value": f"{m.jacobian_dtype} for minors and row norms; RR's rotations in "
                                                "float32 matmuls (minors in float64)", "source": "SPEC §3, ours"},
        {"name": "Rotation ratio estimator", "value": f"geometric mean over {m.rr_index_samples} index samples (seeds "
                                                      f"{m.index_seed}...) of RR(trained)/RR(init), each over the first "
                                                      f"{m.n_rotation_images} images and {m.n_rotations} Haar rotations",
         "source": "SPEC §5 (sizes: ours)"},
        {"name": "Separation grid d", "value": ", ".join(map(str, m.separations)), "source": "SPEC §6 [assumed grid]"},
        {"name": "Spatial analyses at widths", "value": ", ".join(map(str, p.spatial_widths)), "source": "ours [assumed]"},
        {"name": "Ball centres", "value": f"{m.n_centres} random centres per spatial image, drawn per image (seed "
                                          f"{m.index_seed}), each used for every radius", "source": "SPEC §6"},
        {"name": "Norm-matched surrogate (N2)", "value": f"per image, the init's Jacobian rescaled to the trained row and "
                                                         f"column norms, {m.surrogate_rounds} rounds (rows last); regimes "
                                                         f"{', '.join(m.surrogate_regimes)}", "source": "SPEC §5"},
        {"name": "PR ratio", "value": "mean PR of the trained network over images / mean PR of its initialisation "
                                      "(same images, same index sample)", "source": "ours [assumed]"},
        {"name": "Independent initialisations (KL null, N1)", "value": f"seeds + {m.null_init_offset} and + "
                                                                       f"{2 * m.null_init_offset} (the second for N1's KL)",
         "source": "ours [assumed]"},
        {"name": "Evaluation images and index samples", "value": (
            f"seed s is measured on test images s*{m.n_images} to s*{m.n_images} + {m.n_images - 1} (spatial: "
            f"{m.n_spatial_images} from s*{m.n_spatial_images}; RR on the first {m.n_rotation_images} of them), with "
            f"index samples seeded {m.index_seed} + 1000 s: every seed's measurement error is its own, so it shows in "
            "the seed SD and the error bars" if m.per_seed_sampling else
            f"the first {m.n_images} test images ({m.n_spatial_images} for spatial analyses) and the same index "
            f"samples (seed {m.index_seed}) for every seed; RR over the first {m.n_rotation_images}"),
         "source": "ours [assumed]"},
        {"name": "Timeline", "value": f"fc1 checkpoints every {t.checkpoint_every} epoch(s), regimes: "
                                      f"{', '.join(t.timeline_regimes)}; L1, k = {m.timeline_k}", "source": "ours [assumed]"},
        {"name": "Regime of C1-C3, C10, C11", "value": "standard", "source": "SPEC §7 (C1), ours (others) [assumed]"},
        {"name": "C8 reduction", "value": "averaged over the conditions (radii, patches or distances) of one analysis",
         "source": "ours [assumed]"},
    ]


def git_state() -> dict[str, Any]:
    """The commit checked out in the current directory, and whether kag/ or claims/ differ from it."""

    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = run("rev-parse", "HEAD")
    return {"commit": commit or "unknown", "dirty": bool(run("status", "--porcelain", "--", "kag", "claims"))}


def cpu_identity() -> dict[str, str]:
    """What decides a CPU run's float round-off besides the torch build: the CPU's model name and the
    vector instructions torch's kernels dispatch to ("AVX2", "AVX512", ...). Training amplifies a
    last-bit difference between two of them far beyond it (README, "Determinism")."""
    import torch

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        capability = "unknown"
    return {"model": model or platform.processor() or platform.machine(), "capability": capability}


def package_versions() -> dict[str, str]:
    """Python's version and those of kag and the packages its numbers depend on."""
    out = {"python": sys.version.split()[0]}
    for pkg in ("kag", "torch", "torchvision", "numpy", "scipy", "jinja2", "matplotlib", "safetensors", "pytest", "pytest-xdist"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def provenance(results: Results, session_seconds: float | None, device: str | None,
               git: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, commit (``git``: the one the run started from; default: the one checked out now), device,
    profile, timings per stage and the cache keys behind the numbers."""
    p = results.profile
    dev = resolve_device(device)
    models, metrics = [], []
    train_s, metric_s, metric_stage = 0.0, 0.0, {"global": 0.0, "timeline": 0.0, "spatial": 0.0}
    train_devices, seen_groups = set(), set()
    for g in sorted(groups_needed(p), key=lambda g: (g.width, g.eval_images != "clean", g.regime != "standard")):
        n, regime, ev = g.width, g.regime, g.eval_images
        try:
            entries = results.entries(n, regime, ev)
        except MissingResults:
            continue
        for entry in entries:
            meta = entry.meta
            metrics.append({"width": n, "seed": meta["seed"], "regime": regime, "eval_images": ev, "key": entry.key,
                            "model_key": meta["model_key"], "seconds": meta["timings"]["total"]})
            metric_s += meta["timings"]["total"]
            for stage in metric_stage:
                metric_stage[stage] += meta["timings"].get(stage, 0.0)
            if ev == "clean":
                manifest = results.store.read_manifest(meta["model_key"])
                models.append({"width": n, "seed": meta["seed"], "regime": regime, "key": meta["model_key"],
                               "test_accuracy": manifest.get("test_accuracy"), "device": manifest.get("device"),
                               "seconds": manifest.get("seconds"),
                               **({"test_r2": manifest["test_r2"]} if "test_r2" in manifest else {})})
                train_devices.add(manifest.get("device"))
                group = (n, regime, tuple(manifest.get("group_seeds", [])))
                if group not in seen_groups:
                    seen_groups.add(group)
                    train_s += manifest.get("group_seconds", 0.0)
    return {
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "profile": p.name,
        "profile_config": dataclasses.asdict(p),
        "seeds": list(p.seeds),
        "versions": package_versions(),
        "git": git or git_state(),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "training_devices": sorted(d for d in train_devices if d),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_identity(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "data": {"name": results.mnist.name, "sha256": results.mnist.sha256, "source": results.mnist.source},
        "timings": {"session_seconds": session_seconds, "training_seconds": train_s, "metrics_seconds": metric_s,
                    "metrics_seconds_by_stage": metric_stage,
                    "note": "training and metric seconds are summed over models as recorded when they were computed "
                            "(possibly in earlier runs); session seconds is this run's wall time"},
        "cache": {"store": str(results.store.root), "models": models, "metrics": metrics},
    }


def assemble(results: Results, verdicts: dict[str, list[dict]], table: ResultTable,
             session_seconds: float | None = None, device: str | None = None,
             git: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole report as data; ``table`` holds every cached row (``results.available()``)."""
    p = results.profile
    criteria, summary = [], []
    judge_variants(results, verdicts)  # every judged cell under every variant of its claim (SPEC §7)
    for c in CLAIMS:
        rows = verdicts[c.id]
        status = claim_status(c, rows)
        status["robustness"] = robustness(c, rows, status["status"], p, lambda cl, rr: claim_status(cl, rr)["status"])
        status["variant_names"] = claim_variants(c, p)
        entry = {"id": c.id, "group": c.group, "claim": c.statement, "measurement": c.measurement, "rule": str(c.rule),
                 "thresholds": dict(c.thresholds), "cells_description": c.cells_description,
                 "profiles": list(c.profiles), "xfail_reason": c.xfail.get(p.name), "control": c.control,
                 "figure": c.figure, **status, "plain": plain(c, rows), "cells": rows,
                 "does_not_apply": does_not_apply(c, get_study(p.study)) or "",
                 "zero_minors": zero_minor_table(table, p, c.id)}
        criteria.append(entry)
        summary.append({k: entry[k] for k in ("id", "claim", "status", "label", "counts", "counts_text", "judged",
                                              "as_expected", "key_number", "plain", "control", "xfail_reason",
                                              "robustness")}
                       | {"n_cells": len(rows)})
    prov = provenance(results, session_seconds, device, git)
    study = get_study(p.study)
    title = "Reproduction of 'Scale-Agnostic Kolmogorov-Arnold Geometry in Neural Networks' (arXiv 2511.21626)"
    return {
        "title": title if study.name == DEFAULT_STUDY else f"{title}: the {study.name} study",
        "profile": {"name": p.name, "description": p.description, "reductions": list(p.reductions)},
        "study": {"name": study.name, "dataset": study.dataset, "model": study.model, "summary": study.summary},
        "headline": headline(criteria, prov),
        "summary": summary,
        "criteria": criteria,
        "assumptions": assumptions(p),
        "figures_data": figure_data(table, p),
        "methods": methods(table, p),
        "n2_statement": n2_statement(criteria),
        "table": {"file": TABLE_FILE, "schema": TABLE_VERSION, "rows": len(table)},
        "provenance": prov,
    }


def jsonable(obj: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> floats, so results.json is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
