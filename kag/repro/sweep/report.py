"""The sweep's verdict-matrix report (SPEC §8): ``reports/sweep/`` with index.html, README.md,
results.json and one figure per question.

:func:`assemble_sweep` turns the judged rows of every grid point (:func:`~kag.repro.sweep.engine.judge_point`)
into one JSON-serialisable dict: the matrix (a row per claim, a column per point, the default first;
a cell is the claim's status at that point with its key number and, when it did not reproduce, the
claim's plain-words sentence), a summary generated from the matrix, the numbers behind the figures
(from the points' verdict values, and the accuracy rows of their tables where C9 is not judged) and
the provenance. :func:`kag.repro.report.render.render_sweep` writes it. :func:`write_sweep_report`
does both after a run; :func:`report_from_cache` re-renders from the store alone (``kag sweep GRID
--report-only``) and refuses when a point has no cached metric table. Nothing here trains or
computes metrics.

A figure shows only the points that vary its axes (``point.changed`` within them): in a one-factor
design, the default point plus the points that vary that axis (and, for C8, the augmentation x
weight-decay pairs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kag.errors import MissingResults
from kag.repro.claims import BY_ID, CLAIMS
from kag.repro.criteria import CONTROL_SAYS_NO, CONTROL_SHOWS_EFFECT, Claim
from kag.repro.multiverse import FRAGILE, ROBUST, judge_variants, robustness
from kag.repro.prose import plain
from kag.repro.report.assemble import (CONTRADICTED, INCONCLUSIVE, NOT_RUN, REPRODUCED, claim_status, git_state,
                                       package_versions)
from kag.repro.results import Results
from kag.repro.profiles import PAPER
from kag.repro.studies import DEFAULT_STUDY, does_not_apply, get_study, layers_of, regimes_of
from kag.repro.sweep.engine import Summary, judge_point, point_groups
from kag.repro.sweep.grid import AUGMENTATIONS, AXES, DECAY_CAN_ACT, DEFAULTS, EVAL_IMAGES, Grid, Point, value_text

PAPER_AUGMENTED_ACCURACY = 0.96  # the paper's test accuracy of its augmented models (SPEC §3)
ACCURACY_TOLERANCE = 0.01  # "recovered": within 1 percentage point of it, at every width
SKIPPED = "skipped"  # a claim judged at the paper's fidelity only (C9), at a reduced-fidelity point
MATRIX_STATUSES = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN, SKIPPED)
IMAGES = {"clean": "clean", "augmented": "shifted"}  # a C8/C9 cell's ``eval`` -> the images, in words
AXIS_WORDS = {"epochs": "training epochs", "lr": "learning rate", "weight_decay": "weight decay",
              "augmentation": "augmentation", "eval_images": "evaluation images"}
# an axis as the verdict matrix's column headers name it, so 15+ columns fit a 1,400-pixel page
AXIS_SHORT = {"epochs": "ep", "lr": "lr", "weight_decay": "wd", "augmentation": "aug", "eval_images": "eval"}
ZEROS_K = 3  # the order whose exact-zero minors the report tabulates (the most of them: a k-minor needs k live rows)
MOSTLY_ZERO = 0.5  # a (width, regime, layer) is named when more than this share of its trained k-minors is exactly 0
ZEROS_INTRO = (f"The share of the trained networks' sampled {ZEROS_K}-minors that are exactly 0 (global analysis, clean "
               "test images, mean over seeds), and the images on which every sampled minor is 0 (no defined PR). A "
               "minor is exactly 0 chiefly when one of its rows belongs to a unit whose activation derivative underflowed "
               "(SPEC §3). Where most minors are 0, PR rests on the few others.")
SHIFTED_NOTE = ("At an eval_images=shifted point, the augmented-regime cells of C5-C7 read the augmented models "
                "measured on shifted test images (one fixed shift per image); C8 and C9 judge both image sets at "
                "every point, and every other cell reads the standard models (or, for C4, the augmented models on "
                "clean images), so it repeats the default point's verdict.")


# One figure per question; a figure is drawn when the grid varies its axes (see figures_data).
FIGURES = (
    {"stem": "sweep_c8_reduction", "claim": "C8", "axes": ["augmentation", "weight_decay"],
     "question": "Does augmentation lower the PR ratios by about 30% (C8) under another augmentation or weight decay?",
     "caption": "Per grid point, the reduction 1 - PR ratio(augmented) / PR ratio(standard): the mean over the "
                "point's judged C8 cells (bar: their range), on clean and on shifted test images; C8's band shaded. "
                "Points: the default and those that vary the augmentation, the weight decay or both."},
    {"stem": "sweep_c2_gap", "claim": "C2", "axes": ["lr", "weight_decay"],
     "question": "Is layer 1's PR ratio above layer 2's (C2) at another learning rate or weight decay?",
     "caption": "Per grid point and C2 cell, layer 1's PR ratio minus layer 2's (mean ± 2 std over seeds); C2 "
                "holds where the whole bar lies above the line. Points: the default and those that vary the "
                "learning rate (left) or the weight decay (right)."},
    {"stem": "sweep_accuracy", "claim": "C9", "axes": ["augmentation"],
     "question": f"Do the augmented models reach the paper's {PAPER_AUGMENTED_ACCURACY:.0%} test accuracy under "
                 "another augmentation?",
     "caption": "Per grid point and width, the augmented models' test accuracy (mean ± 2 std over seeds) on clean "
                "test images (solid) and shifted ones (dashed): C9's values where it is judged, else the accuracy "
                f"rows of the results tables. The paper's {PAPER_AUGMENTED_ACCURACY:.0%} is marked, "
                f"± {ACCURACY_TOLERANCE * 100:g} percentage point shaded. Points: the default and those that vary "
                "the augmentation."},
)


def default_out_dir() -> Path:
    """``reports/sweep`` under the current directory."""
    return Path.cwd() / "reports" / "sweep"


def short_name(point: Point, untested: Sequence[str] = ()) -> list[str]:
    """A point's name as header lines for the matrix: ``["wd=0.01", "aug=translate6"]``; ``["default"]``;
    a last line "wd cannot act" for a point in ``untested`` (see :func:`weight_decay_note`)."""
    if not point.changed:
        return [point.name]
    lines = [f"{AXIS_SHORT.get(a, a)}={value_text(v)}" for a, v in point.changed.items()]
    return lines + (["wd cannot act"] if point.name in untested else [])


def weight_decay_note(grid: Grid | None, points: Sequence[Point], not_run: Sequence[str] = ()) -> dict[str, Any]:
    """Whether the weight-decay axis is a test at each training length of the grid (docs/SPEC.md §8,
    :data:`~kag.repro.sweep.grid.DECAY_CAN_ACT`): the shrink factor of the axis's largest value per
    length, the points that vary weight decay where it cannot act, and one sentence (None when the grid
    does not vary weight decay, or is not known). ``not_run``: points with no judged claim; when every
    point where the decay can act is among them, the sentence says that nothing here tests the axis."""
    varied = [p for p in points if "weight_decay" in p.changed]
    if grid is None or not varied:
        return {"levels": {}, "untested": [], "sentence": None}
    levels = {e: grid.weight_decay_tested(e) for e in sorted({p.values["epochs"] for p in points})}
    untested = [p.name for p in varied if not levels[p.values["epochs"]][0]]
    testing = [p.name for p in varied if p.name not in untested]
    unrun = [n for n in testing if n in not_run]
    largest = value_text(max(grid.axis("weight_decay")))

    def at(epochs: list[int]) -> str:
        return " and ".join(f"{e} epochs (to {levels[e][1]:.1%})" for e in epochs)

    can = [e for e, (ok, _) in levels.items() if ok]
    cannot = [e for e, (ok, _) in levels.items() if not ok]
    head = (f"Weight decay can act where its decoupled decay alone shrinks the weights to at most "
            f"{DECAY_CAN_ACT:.0%} of their size at the axis's largest value ({largest}, lr "
            f"{value_text(grid.defaults['lr'])})")
    parts = [f"it can at {at(can)}" if can else "it can at no training length of this grid"]
    if cannot:
        parts.append(f"it cannot at {at(cannot)}, so the {len(untested)} point"
                     f"{'s' if len(untested) != 1 else ''} varying weight decay there "
                     f"({_where(untested)}) {'are' if len(untested) != 1 else 'is'} not a test of that axis"
                     if untested else f"it cannot at {at(cannot)}")
    if testing and len(unrun) == len(testing):
        parts.append(f"the point{'s' if len(unrun) != 1 else ''} varying it where it can ({_where(unrun)}) "
                     f"{'were' if len(unrun) != 1 else 'was'} not run, so no point of this report tests weight decay")
    return {"levels": {str(e): {"can_act": ok, "shrink": f} for e, (ok, f) in levels.items()},
            "untested": untested, "not_run": unrun, "sentence": f"{head}: " + "; ".join(parts) + "."}


def c8_in_band(points: Sequence[Point], verdicts: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The judged C8 cells whose mean reduction lies inside C8's band, at every point, and one sentence."""
    t8 = BY_ID["C8"].thresholds
    lo, hi = t8["min_reduction"], t8["max_reduction"]
    per: dict[str, list[dict[str, Any]]] = {}
    judged: dict[str, int] = {}
    for p in points:
        rows = _judged(verdicts.get(p.name, []), "C8")
        judged[p.name] = len(rows)
        per[p.name] = [{"cell": r["cell"], "reduction": x} for r in rows
                       if (x := _finite(r["values"].get("reduction"))) is not None and lo <= x <= hi]
    band = f"C8's {lo:.0%}–{hi:.0%} band"
    hits = [n for n in per if per[n]]
    if not any(judged.values()):
        return {"cells": per, "sentence": f"No C8 cell was judged, so none can fall inside {band}."}
    clauses = [f"{len(per[n])} of {judged[n]} at {_where([n])} ("
               + "; ".join(f"{c['cell']}: {c['reduction']:.2f}" for c in per[n]) + ")" for n in hits]
    rest = [n for n in per if not per[n] and judged[n]]
    if len(rest) > 2:
        clauses.append(f"none at {'the other' if hits else 'any of the'} {len(rest)} points where C8 was judged")
    elif rest:
        clauses.append(f"none at {_where(rest)}")
    return {"cells": per, "sentence": f"C8 cells whose mean reduction lies inside {band}: " + "; ".join(clauses) + "."}


def ordered(points: Sequence[Point]) -> list[Point]:
    """The grid's points with the default point first (where the design holds it)."""
    return sorted(points, key=lambda p: p.name != "default")


def _where(names: Sequence[str]) -> str:
    """Point names as a sentence lists them: "the default point, lr=3e-3"."""
    return ", ".join("the default point" if n == "default" else n for n in names)


def _at(where: Sequence[str], names: Sequence[str]) -> str:
    """"at lr=3e-3", or, when ``where`` holds most of ``names``, "at every point but lr=3e-3"."""
    if len(where) == len(names):
        return "at every point of the grid"
    if len(where) > len(names) / 2:
        return f"at every point but {_where([n for n in names if n not in where])}"
    return f"at {_where(where)}"


# -- the matrix -------------------------------------------------------------------------------------
def _status_word(c: Claim, status: str) -> str:
    if c.control and status == REPRODUCED:
        return CONTROL_SAYS_NO
    if c.control and status == CONTRADICTED:
        return CONTROL_SHOWS_EFFECT
    return status


def _status(c: Claim, rows: list[dict[str, Any]]) -> str:
    return claim_status(c, rows)["status"]


def point_robustness(rows: list[dict[str, Any]], results: Any) -> dict[str, dict[str, Any]]:
    """Claim id -> its robustness at one point (:func:`kag.repro.multiverse.robustness`): every judged cell
    of ``rows`` (the point's :func:`~kag.repro.sweep.engine.judge_point` rows, left as they are) judged again
    under each pre-registered estimator variant of its claim (SPEC §7) on the point's own tables. Claims
    not judged at the point are left out."""
    by_claim = {c.id: [dict(r) for r in rows if r["claim"] == c.id] for c in CLAIMS}
    judge_variants(results, by_claim)
    out = {}
    for c in CLAIMS:
        mine = by_claim[c.id]
        primary = _status(c, mine) if mine else NOT_RUN
        if primary != NOT_RUN and not all(r["outcome"] == SKIPPED for r in mine):
            out[c.id] = robustness(c, mine, primary, results.profile, _status)
    return out


def matrix_cell(c: Claim, rows: list[dict[str, Any]], robust: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One claim at one point: its status over the point's cells, the words to show, its key number
    (``Claim.key_number``), its robustness under the estimator variants (``robust``: from
    :func:`point_robustness`, None when not judged) and, when it did not come out as expected, its plain
    sentence (``Claim.plain``)."""
    if rows and all(r["outcome"] == SKIPPED for r in rows):
        return {"status": SKIPPED, "label": SKIPPED, "key_number": "", "plain": "", "counts_text": "",
                "cells": len(rows), "judged": 0, "detail": rows[0]["detail"], "robustness": None, "disagree": []}
    s = claim_status(c, rows)
    return {"status": s["status"], "label": s["label"], "key_number": s["key_number"], "plain": plain(c, rows),
            "counts_text": s["counts_text"], "cells": s["cells"], "judged": s["judged"],
            "missing": sum(r["outcome"] == NOT_RUN for r in rows), "detail": "",
            "robustness": (robust or {}).get("status"), "disagree": list((robust or {}).get("disagree", [])),
            "variant_statuses": {v["name"]: v["status"] for v in (robust or {}).get("variants", [])}}


def matrix(points: Sequence[Point], verdicts: Mapping[str, list[dict[str, Any]]],
           robust: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per claim (registry order): its cells keyed by point name (``robust``: point name ->
    :func:`point_robustness`), and its plain sentences, each once with the points where it was said
    (``plain``: [{"points", "label", "text"}])."""
    out = []
    robust = robust or {}
    for c in CLAIMS:
        cells = {p.name: matrix_cell(c, [r for r in verdicts.get(p.name, []) if r["claim"] == c.id],
                                     robust.get(p.name, {}).get(c.id)) for p in points}
        plain: dict[tuple[str, str], list[str]] = {}
        for name, cell in cells.items():
            if cell["plain"]:
                plain.setdefault((cell["label"], cell["plain"]), []).append(name)
        out.append({"id": c.id, "claim": c.statement, "rule": str(c.rule), "control": c.control, "cells": cells,
                    "plain": [{"points": names, "label": label, "text": text}
                              for (label, text), names in plain.items()]})
    return out


# -- the numbers behind the figures and the recovery sentences --------------------------------------
def _judged(rows: list[dict[str, Any]], claim: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["claim"] == claim and r["verdict"] is not None]


def _finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def c8_reductions(rows: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """images ("clean", "shifted") -> the reductions of the point's judged C8 cells on them."""
    out: dict[str, list[float | None]] = {}
    for r in _judged(rows, "C8"):
        out.setdefault(IMAGES[r["params"]["eval"]], []).append(_finite(r["values"].get("reduction")))
    return out


def c2_cells(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The point's judged C2 cells: width, k and L1 - L2 (mean, mean ∓ 2 std over seeds)."""
    return [{"n": r["params"]["n"], "k": r["params"]["k"],
             **{key: _finite(r["values"].get(key)) for key in ("mean", "lower_bound", "upper_bound")}}
            for r in _judged(rows, "C2")]


def augmented_accuracy(profile: Any, rows: list[dict[str, Any]], results: Any) -> dict[str, Any]:
    """Per-seed test accuracy of the augmented models, width -> images -> seeds: C9's values where C9
    was judged at this point, else the ``test_accuracy`` rows of the augmented regime's tables
    (None for a seed without a row; a width without tables is left out)."""
    judged = {(r["params"]["n"], IMAGES[r["params"]["eval"]]): r["values"].get("seeds")
              for r in _judged(rows, "C9") if r["params"]["regime"] == "augmented"}
    out: dict[str, Any] = {}
    for n in profile.widths:
        per_images = {}
        for images in ("clean", "shifted"):
            seeds = judged.get((n, images))
            if seeds is None:
                try:
                    found = results.table(n, "augmented", "clean").by_seed(
                        analysis="accuracy", observable="test_accuracy", condition=images)
                except MissingResults:
                    continue
                seeds = [found.get(s) for s in profile.seeds]
            if any(_finite(s) is not None for s in seeds):
                per_images[images] = [_finite(s) for s in seeds]
        if per_images:
            out[str(n)] = per_images
    return {"widths": out, "source": "C9" if judged else "tables"}


def robustness_sentences(rows: list[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Where a claim's status at a point changes under one of its pre-registered estimator variants
    (fragile there): one sentence per such claim, the points grouped by what the variants make of the
    status; then the claims whose status no variant moves at any point."""
    said, steady = [], []
    for row in rows:
        judged = [n for n in names if row["cells"][n].get("robustness") in (ROBUST, FRAGILE)]
        if not judged:
            continue
        groups: dict[tuple, list[str]] = {}
        for n in judged:
            cell = row["cells"][n]
            if cell["robustness"] == FRAGILE:
                moved = tuple((v, cell["variant_statuses"].get(v, "?")) for v in cell["disagree"])
                groups.setdefault((cell["status"], moved), []).append(n)
        if not groups:
            steady.append(row["id"])
            continue
        parts = []
        for (status, moved), where in groups.items():
            by_status: dict[str, list[str]] = {}
            for variant, v_status in moved:
                by_status.setdefault(v_status, []).append(variant)
            under = ", ".join(f"{v_status} under {' and '.join(vs)}" for v_status, vs in by_status.items())
            parts.append(f"{status} {_among(where, judged)}, but {under}")
        said.append(f"{row['id']} is fragile: {'; '.join(parts)}.")
    if not said and not steady:
        return ["Robustness: no claim was judged under its estimator variants (SPEC §7)."]
    if not said:
        return ["Robust: every status above is the same under every pre-registered estimator variant of its claim "
                "(SPEC §7), at every point where it was judged."]
    head = ("Under the pre-registered estimator variants (SPEC §7; the primary status first, then what a variant "
            "makes of it): ")
    tail = ([f"Robust at every point where judged: {', '.join(steady)}."] if steady else [])
    return [head + said[0], *said[1:], *tail]


def _among(where: Sequence[str], judged: Sequence[str]) -> str:
    """Where a status holds, in words: "at lr=3e-3", "at every point where judged" (except ...), or "at 8 of
    17 points (...)"."""
    if len(where) == len(judged):
        return "at every point where judged"
    if len(where) > len(judged) / 2:
        return f"at every point where judged except {_where([n for n in judged if n not in where])}"
    if len(where) > 3:
        return f"at {len(where)} of {len(judged)} points ({_where(where)})"
    return f"at {_where(where)}"


def exact_zeros(profile: Any, results: Any) -> list[dict[str, Any]]:
    """The trained networks' exact-zero minors at k = :data:`ZEROS_K` (global analysis, clean test
    images), one entry per width, regime and layer with a cached table: the fraction of the sampled
    minors that are exactly 0 and the number of images with no defined PR (every minor 0), each the
    mean over seeds, beside the number of images measured. Where most minors are 0, PR rests on the
    few others (it is 1 when one is left): the report says where."""
    out = []
    for n in profile.widths:
        for regime in regimes_of(profile):
            try:
                table = results.table(n, regime, "clean")
            except MissingResults:
                continue
            for layer in layers_of(profile):
                where = dict(analysis="global", role="trained", layer=layer, k=ZEROS_K, condition=None)
                zero = [_finite(v) for v in table.by_seed(observable="zero_minor_fraction", **where).values()]
                undefined = [_finite(v) for v in table.by_seed(observable="pr_undefined", **where).values()]
                if any(z is not None for z in zero):
                    out.append({"n": n, "regime": regime, "layer": layer, "zero_fraction": _mean(zero),
                                "undefined": _mean(undefined) if undefined else None,
                                "images": profile.metrics.n_images})
    return out


def _share(x: float) -> str:
    """A fraction as a percentage that keeps "none" and "a few" apart, and "all" and "nearly all": 0%, <0.1%,
    12.3%, >99.9%, 100%."""
    if x in (0, 1):
        return f"{x:.0%}"
    return "<0.1%" if x < 0.001 else ">99.9%" if x > 0.999 else f"{x:.1%}"


def _at_most(x: float) -> str:
    """ "at most 12.3%", or "below 0.1%" where the share is that small (never "at most <0.1%")."""
    share = _share(x)
    return "below 0.1%" if share == "<0.1%" else f"at most {share}"


def _images(x: float) -> str:
    """A mean count of images over seeds: whole when it is, else one decimal (127.7 is not all 128)."""
    return f"{x:.0f}" if x == round(x) else f"{x:.1f}"


def _zeros_cell(c: Mapping[str, Any]) -> str:
    undefined = "" if not c["undefined"] else f", no defined PR on {_images(c['undefined'])} of {c['images']} images"
    return f"n = {c['n']} {c['regime']} {c['layer']} {_share(c['zero_fraction'])}{undefined}"


def exact_zeros_table(names: Sequence[str], zeros: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The exact-zero fractions as a table: a column per (width, regime, layer) any point measured, a row
    per point with a cached table; a cell is the percentage, with the images that have no defined PR."""
    columns: list[tuple[int, str, str]] = []
    for name in names:
        for c in zeros.get(name, []):
            if (c["n"], c["regime"], c["layer"]) not in columns:
                columns.append((c["n"], c["regime"], c["layer"]))
    rows = []
    for name in names:
        found = {(c["n"], c["regime"], c["layer"]): c for c in zeros.get(name, [])}
        if not found:
            continue
        cells = []
        for col in columns:
            c = found.get(col)
            if c is None or c["zero_fraction"] is None:
                cells.append("–")
            else:
                undefined = f" ({_images(c['undefined'])} of {c['images']} images undefined)" if c["undefined"] else ""
                cells.append(f"{_share(c['zero_fraction'])}{undefined}")
        rows.append({"point": name, "cells": cells})
    return {"columns": [f"n = {n} {regime} {layer}" for n, regime, layer in columns], "rows": rows}


def exact_zeros_sentence(names: Sequence[str], zeros: Mapping[str, list[dict[str, Any]]]) -> str | None:
    """One sentence: the points where most trained k-minors of some width, regime and layer are exactly 0
    (each such cell named with its fraction), and the largest fraction anywhere else; None when no point
    has a cached table."""
    cells = {n: [c for c in zeros.get(n, []) if c["zero_fraction"] is not None] for n in names}
    if not any(cells.values()):
        return None
    mostly = {n: sorted((c for c in cs if c["zero_fraction"] > MOSTLY_ZERO), key=lambda c: -c["zero_fraction"])
              for n, cs in cells.items()}
    mostly = {n: cs for n, cs in mostly.items() if cs}
    rest = [(c["zero_fraction"], n, c) for n, cs in cells.items() if n not in mostly for c in cs]
    head = f"Exact-zero minors of the trained networks (k = {ZEROS_K}, clean test images): "
    if not mostly:
        top, name, c = max(rest, key=lambda t: t[0])
        return head + f"{_at_most(top)} of them at any point ({_where([name])}, n = {c['n']} {c['regime']} {c['layer']})."
    said = "; ".join(f"at {_where([n])} {', '.join(_zeros_cell(c) for c in cs)}" for n, cs in mostly.items())
    tail = ""
    if rest:
        top, name, c = max(rest, key=lambda t: t[0])
        tail = f" At the other points {_at_most(top)} ({_where([name])}, n = {c['n']} {c['regime']} {c['layer']})."
    return (head + f"more than {MOSTLY_ZERO:.0%} are exactly 0 {said}. There PR rests on the few non-zero minors of "
            "each image (it is 1 when a single one is left), an image with none has no defined PR, and a cell whose "
            "images have none is inconclusive; the PR variant on non-zero minors at a matched count (SPEC §7) is "
            "the reading that zeros cannot move." + tail)


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if _finite(v) is not None]
    return float(np.mean(finite)) if finite else None


def _axis_values(axis: str, values: Sequence[Any]) -> list[str]:
    """Distinct axis values in reading order (numbers ascending; names in the grid module's order)."""
    if axis in ("lr", "weight_decay"):
        ordered_ = sorted(set(values))
    else:
        names = list(AUGMENTATIONS if axis == "augmentation" else EVAL_IMAGES)
        ordered_ = sorted(set(values), key=names.index)
    return [value_text(v) for v in ordered_]


def _varying(points: Sequence[Point], axes: Sequence[str]) -> list[Point]:
    """The points that leave the default on ``axes`` only (the default point included)."""
    return [p for p in points if set(p.changed) <= set(axes)]


def figures_data(points: Sequence[Point], verdicts: Mapping[str, list[dict[str, Any]]],
                 accuracy: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The numbers of the three figures (see :data:`kag.repro.report.figures.SWEEP_FIGURES`)."""
    c8 = BY_ID["C8"].thresholds
    sel = _varying(points, ("augmentation", "weight_decay"))
    out: dict[str, Any] = {"c8": {
        "x_axis": AXIS_WORDS["augmentation"],
        "x_values": _axis_values("augmentation", [p.values["augmentation"] for p in sel]),
        "x_default": value_text(DEFAULTS["augmentation"]), "line_axis": AXIS_WORDS["weight_decay"],
        "line_values": _axis_values("weight_decay", [p.values["weight_decay"] for p in sel]),
        "line_default": value_text(DEFAULTS["weight_decay"]), "band": [c8["min_reduction"], c8["max_reduction"]],
        "points": [{"name": p.name, "x": value_text(p.values["augmentation"]),
                    "line": value_text(p.values["weight_decay"]), "reduction": c8_reductions(verdicts.get(p.name, []))}
                   for p in sel]}}
    panels = []
    for axis in ("lr", "weight_decay"):
        sel = _varying(points, (axis,))
        panels.append({"axis": AXIS_WORDS[axis], "x_values": _axis_values(axis, [p.values[axis] for p in sel]),
                       "x_default": value_text(DEFAULTS[axis]),
                       "points": [{"name": p.name, "x": value_text(p.values[axis]),
                                   "cells": c2_cells(verdicts.get(p.name, []))} for p in sel]})
    out["c2"] = {"panels": panels, "threshold": BY_ID["C2"].thresholds["min_lower_bound"]}
    sel = _varying(points, ("augmentation",))
    out["accuracy"] = {
        "x_axis": AXIS_WORDS["augmentation"],
        "x_values": _axis_values("augmentation", [p.values["augmentation"] for p in sel]),
        "x_default": value_text(DEFAULTS["augmentation"]), "paper": PAPER_AUGMENTED_ACCURACY,
        "tolerance": ACCURACY_TOLERANCE,
        "points": [{"name": p.name, "x": value_text(p.values["augmentation"]), **accuracy[p.name]} for p in sel
                   if accuracy.get(p.name, {}).get("widths")]}
    return out


# -- the summary ------------------------------------------------------------------------------------
def _by_status(row: dict[str, Any], names: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in names:
        out.setdefault(row["cells"][name]["status"], []).append(name)
    return out


def _span(xs: Sequence[float], spec: str = ".2f") -> str:
    xs = sorted(xs)
    lo, hi = format(xs[0], spec), format(xs[-1], spec)
    return lo if lo == hi else f"{lo} to {hi}"


def _recovered(claim_id: str, what: str, rows: list[dict[str, Any]], names: Sequence[str],
               number: Mapping[str, float | None], number_words: str) -> tuple[list[str], str]:
    """(points where the claim is reproduced, one sentence) for C2 or C8."""
    row = next(r for r in rows if r["id"] == claim_id)
    by = _by_status(row, names)
    judged = [n for n in names if row["cells"][n]["status"] not in (NOT_RUN, SKIPPED)]
    where = by.get(REPRODUCED, [])
    head = f"{claim_id} ({what})"
    if not judged:
        return where, f"{head} was not judged at any point of the grid."
    if not where:
        return where, f"{head} is recovered nowhere in the grid."
    nums = [number[n] for n in where if number.get(n) is not None]
    more = f" ({number_words} {_span(nums)})" if nums else ""
    return where, f"{head} is recovered {_at(where, names)}{more}."


def _accuracy_recovered(names: Sequence[str], accuracy: Mapping[str, dict[str, Any]]
                        ) -> tuple[dict[str, list[str]], list[str]]:
    """images -> points where every width's mean augmented accuracy is within the tolerance of the
    paper's; and the sentences that say so."""
    paper, tol = PAPER_AUGMENTED_ACCURACY, ACCURACY_TOLERANCE
    where: dict[str, list[str]] = {}
    measured: dict[str, list[float]] = {}
    for images in ("clean", "shifted"):
        where[images] = []
        for name in names:
            means = [_mean(per.get(images) or []) for per in (accuracy.get(name, {}).get("widths") or {}).values()]
            means = [m for m in means if m is not None]
            if not means:
                continue
            measured.setdefault(images, []).extend(means)
            if all(abs(m - paper) <= tol + 1e-12 for m in means):
                where[images].append(name)
    goal = (f"The paper's {paper:.0%} test accuracy of augmented models (within {tol * 100:g} percentage point"
            f"{'' if tol * 100 == 1 else 's'}, at every width)")
    if not measured:
        return where, [f"{goal} cannot be checked: no augmented model's accuracy is cached."]
    sentences = []
    for images in ("clean", "shifted"):
        subject = goal if images == "clean" else ("On shifted test images (where SPEC §3 notes the paper may have "
                                                  "measured), it")
        on = " on clean test images" if images == "clean" else ""
        if images not in measured:
            sentences.append(f"{subject} was not measured{on}.")
        elif where[images]:
            sentences.append(f"{subject} is recovered{on} {_at(where[images], names)}.")
        else:
            span = _span([100 * m for m in measured[images]], ".1f")
            sentences.append(f"{subject} is recovered nowhere in the grid{on} (mean accuracies {span}%).")
    return where, sentences


def _flip(c: Claim, judged: dict[str, list[str]], names: Sequence[str]) -> dict[str, Any]:
    """A claim whose status differs between points: its status at the default point (else at most
    points), and each other status with the points where the claim flips to it."""
    base = next((s for s, ns in judged.items() if "default" in ns), None)
    if base is None:
        base = max(judged, key=lambda s: (len(judged[s]), -MATRIX_STATUSES.index(s)))
    others = [s for s in MATRIX_STATUSES if s in judged and s != base]
    at = judged[base]
    if "default" in at:
        rest = [n for n in at if n != "default"]
        where = "the default point" + (f" and {_where(rest)}" if 0 < len(rest) <= 2 else
                                       f" and {len(rest)} other points" if rest else "")
    else:
        where = f"{len(at)} of {len(names)} points" if len(at) > 2 else _where(at)
    is_ = ":" if c.control else " is"
    sentence = (f"{c.id}{is_} {_status_word(c, base)} at {where}; it flips to "
                + "; to ".join(f"{_status_word(c, s)} at {_where(judged[s])}" for s in others) + ".")
    return {"claim": c.id, "from": base, "by_status": {s: judged[s] for s in (base, *others)}, "sentence": sentence}


def partly_run(rows: list[dict[str, Any]], names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """point name -> the claims judged there on only some of their cells (the others' tables are missing):
    ``[{"claim", "judged", "cells"}]``, so a status resting on part of a claim's cells is never silent."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for name in names:
            cell = row["cells"][name]
            if cell["status"] not in (NOT_RUN, SKIPPED) and cell.get("missing"):
                out.setdefault(name, []).append({"claim": row["id"], "judged": cell["judged"], "cells": cell["cells"]})
    return out


def summary(rows: list[dict[str, Any]], points: Sequence[Point], verdicts: Mapping[str, list[dict[str, Any]]],
            accuracy: Mapping[str, dict[str, Any]], grid: Grid | None = None,
            zeros: Mapping[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """What the matrix says, in sentences: the claims that hold at every point, those that keep one
    other status, those that flip (and where), those not judged, where most of the trained networks'
    minors are exactly 0 (``zeros``: point name -> :func:`exact_zeros`), and where C2, C8 and the
    paper's 96% augmented accuracy are recovered."""
    names = [p.name for p in points]
    not_run: dict[str, list[str]] = {}  # point -> the claims with cells there, none of them judged
    for row in rows:
        for name in _by_status(row, names).get(NOT_RUN, []):
            if row["cells"][name]["cells"]:  # a claim with no cell under this fidelity is not "missing"
                not_run.setdefault(name, []).append(row["id"])
    # a point none of whose claims was judged is "not run": named once, and "every point" means the others
    with_cells = {name: sum(bool(row["cells"][name]["cells"]) and row["cells"][name]["status"] != SKIPPED
                            for row in rows) for name in names}
    absent = [name for name, ids in not_run.items() if len(ids) == with_cells[name]]
    ran = [n for n in names if n not in absent]
    hold, steady, flips, skipped, inapplicable = [], [], [], [], []
    for row in rows:
        c = BY_ID[row["id"]]
        by = _by_status(row, names)
        judged = {s: ns for s, ns in by.items() if s not in (NOT_RUN, SKIPPED)}
        if not judged:
            if by.get(SKIPPED):
                (inapplicable if does_not_apply(c, get_study(DEFAULT_STUDY)) else skipped).append(row["id"])
            continue
        if len(judged) == 1:
            (status, ns), = judged.items()
            if status == REPRODUCED and len(ns) == len(ran):
                hold.append(row["id"] + (f" ({CONTROL_SAYS_NO})" if c.control else ""))
            else:
                steady.append({"claim": row["id"], "status": status, "points": ns,
                               "words": _status_word(c, status)})
            continue
        flips.append(_flip(c, judged, names))
    sentences = []
    everywhere = (f"at every point of the grid ({len(names)} point{'s' if len(names) != 1 else ''})" if not absent
                  else f"at every point that was run ({len(ran)} of the grid's {len(names)})")
    sentences.append(f"Reproduced {everywhere}: {', '.join(hold)}." if hold else
                     f"No claim is reproduced {everywhere}.")
    same: dict[tuple[str, str], list[str]] = {}  # (words, where) -> claims: one sentence per status
    for s in steady:
        partial = len(s["points"]) < len(ran)
        at = (f"at every point where judged ({_where(s['points'])})" if partial
              else "at every point that was run" if absent else "at every point")
        same.setdefault((s["words"], at), []).append(s["claim"])
    sentences += [f"{words[0].upper()}{words[1:]} {at}: {', '.join(ids)}." for (words, at), ids in same.items()]
    sentences += [f["sentence"] for f in flips]
    if not flips:
        sentences.append("No claim flips between the points of the grid.")
    if skipped:
        sentences.append(f"Not judged at this fidelity: {', '.join(skipped)} (judged at the paper's fidelity only).")
    if inapplicable:
        sentences.append(f"Not applicable to the {DEFAULT_STUDY} study's networks: {', '.join(inapplicable)}.")
    if absent:
        sentences.append(f"Not run: {len(absent)} of {len(names)} points ({_where(absent)}): no claim is judged there, "
                         "for want of the metric tables its cells read (none, or not all, are in the cache).")
    for name, ids in not_run.items():
        if name not in absent:
            sentences.append(f"Not run at {_where([name])} (its metric tables are missing from the cache): "
                             f"{', '.join(ids)}.")
    partly = partly_run(rows, names)
    for name, parts in partly.items():
        said_ = ", ".join(f"{p['claim']} ({p['judged']} of {p['cells']} cells judged)" for p in parts)
        sentences.append(f"Partly run at {_where([name])} (some of its metric tables are missing from the cache): "
                         f"{said_}; each status there rests on the cells judged, and reads inconclusive where "
                         "those all support the claim.")
    reductions = {n: _mean([x for xs in c8_reductions(verdicts.get(n, [])).values() for x in xs]) for n in names}
    gaps = {n: _mean([c["mean"] for c in c2_cells(verdicts.get(n, []))]) for n in names}
    c2_where, c2_sentence = _recovered("C2", "layer 1's PR ratio above layer 2's", rows, names, gaps,
                                       "mean L1 - L2")
    t8 = BY_ID["C8"].thresholds
    c8_where, c8_sentence = _recovered(
        "C8", f"augmentation lowers the PR ratios by {t8['min_reduction']:.0%} to {t8['max_reduction']:.0%} and "
              f"keeps them above {t8['min_lower_bound']:g}", rows, names, reductions, "mean reduction")
    acc_where, acc_sentences = _accuracy_recovered(names, accuracy)
    in_band = c8_in_band(points, verdicts)
    decay = weight_decay_note(grid, points, absent)
    if decay["sentence"]:
        sentences.append(decay["sentence"])
    sentences += robustness_sentences(rows, names)
    zeros_said = exact_zeros_sentence(names, zeros or {})
    if zeros_said:
        sentences.append(zeros_said)
    return {"sentences": sentences, "c8_in_band": in_band["cells"], "weight_decay": decay, "hold": hold,
            "steady": steady, "flips": flips, "skipped": skipped,
            "not_run": not_run, "points_not_run": absent, "partly_run": partly,
            "recovered": {"C2": c2_where, "C8": c8_where, "accuracy": acc_where,
                          "sentences": [c2_sentence, c8_sentence, in_band["sentence"], *acc_sentences]}}


# -- provenance -------------------------------------------------------------------------------------
def point_cache(point: Point, results: Any) -> dict[str, Any]:
    """The cache entries behind a point: its metric-table and model keys (of the groups its claims
    read), the groups missing from the store, and where its models were trained."""
    tables, models, missing, devices = [], [], [], set()
    for g in point_groups(point.profile):
        try:
            entries = results.entries(g.width, g.regime, g.eval_images)
        except MissingResults:
            missing.append(str(g))
            continue
        for e in entries:
            tables.append(e.key)
            models.append(e.meta["model_key"])
            try:
                devices.add(results.store.read_manifest(e.meta["model_key"]).get("device"))
            except (OSError, KeyError, ValueError, LookupError):
                pass
    return {"tables": sorted(set(tables)), "models": sorted(set(models)), "missing": missing,
            "training_devices": sorted(d for d in devices if d)}


def provenance(grid: Grid, points: Sequence[Point], caches: Mapping[str, dict[str, Any]], run: Summary | None,
               session_seconds: float | None, device: str | None, scheduler: str | None) -> dict[str, Any]:
    """The grid file (text, sha256), fidelity, design, points and their cache keys, versions,
    device, the run's wall time (None when re-rendered from the cache) and the commit."""
    import torch

    from kag.devices import resolve_device

    versions = package_versions()
    for pkg in ("distributed", "dask"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    dev = resolve_device(device)
    all_tables = {k for c in caches.values() for k in c["tables"]}
    all_models = {k for c in caches.values() for k in c["models"]}
    return {
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "grid": {"source": grid.source, "sha256": hashlib.sha256(grid.text.encode()).hexdigest() if grid.text else None,
                 "text": grid.text},
        "fidelity": {"widths": list(grid.widths), "seeds": list(grid.seeds), "epochs": grid.epochs,
                     "train_subset": grid.train_subset, "checkpoint_every": grid.checkpoint_every,
                     "metrics": grid.metrics, "reductions": list(grid.reductions()),
                     "at_paper_fidelity": grid.at_paper_fidelity},
        "design": {"kind": grid.design, "pairs": [list(p) for p in grid.pairs],
                   "points": [{a: value_text(v) for a, v in settings} for settings in grid.extra],
                   "axes": {a: [value_text(v) for v in grid.axis(a)] for a in AXES}},
        "points": [{"name": p.name, "settings": {a: value_text(v) for a, v in p.settings},
                    "changed": {a: value_text(v) for a, v in p.changed.items()},
                    "tables": len(caches[p.name]["tables"]), "models": len(caches[p.name]["models"]),
                    "groups": len(point_groups(p.profile)), "missing": caches[p.name]["missing"],
                    "table_keys": caches[p.name]["tables"], "model_keys": caches[p.name]["models"]} for p in points],
        "keys": {"tables": len(all_tables), "models": len(all_models)},
        "versions": versions,
        "git": git_state(),
        "device": "the Dask cluster's workers" if scheduler else str(dev),
        "device_name": (f"cluster at {scheduler}" if scheduler else torch.cuda.get_device_name(dev)
                        if dev.type == "cuda" else platform.processor() or platform.machine()),
        "training_devices": sorted({d for c in caches.values() for d in c["training_devices"]}),
        "platform": platform.platform(),
        "run": None if run is None else {
            "summary": str(run), "seconds": run.seconds, "planned": run.planned, "cached": run.cached, "ran": run.ran,
            "computed": run.computed, "retried": run.retried, "failed": run.failed},
        "session_seconds": session_seconds,
    }


# -- SPEC §8's check of a reduced fidelity -------------------------------------------------------------
def compare_fidelity(reduced: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, Any]:
    """The default point's verdicts at the sweep's fidelity (``reduced``) against the same point at the paper's
    fidelity (``reference``; both :func:`~kag.repro.sweep.engine.judge_point` rows): per claim both statuses
    and how many of the cells judged in both agree, and one sentence. A claim with a cell not run on either
    side (a reference whose tables are partly computed) is not compared: its status would be of some cells only."""
    claims, compared, agree, partial = [], [], [], []
    for c in CLAIMS:
        a = matrix_cell(c, [r for r in reduced if r["claim"] == c.id])
        b = matrix_cell(c, [r for r in reference if r["claim"] == c.id])
        verdict_b = {r["cell"]: r["verdict"] for r in reference if r["claim"] == c.id and r["outcome"] == "judged"}
        cells = [(r["verdict"], verdict_b[r["cell"]]) for r in reduced
                 if r["claim"] == c.id and r["outcome"] == "judged" and r["cell"] in verdict_b]
        both = a["status"] not in (NOT_RUN, SKIPPED) and b["status"] not in (NOT_RUN, SKIPPED)
        if both and (a.get("missing") or b.get("missing")):
            both = False
            partial.append(c.id)
        claims.append({"id": c.id, "reduced": a["status"], "reduced_label": a["label"], "reduced_key": a["key_number"],
                       "reference": b["status"], "reference_label": b["label"], "reference_key": b["key_number"],
                       "compared": both, "match": both and a["status"] == b["status"],
                       "cells": len(cells), "cells_agree": sum(x == y for x, y in cells)})
        if both:
            compared.append(c.id)
            agree += [c.id] if a["status"] == b["status"] else []
    differ = [c for c in claims if c["compared"] and not c["match"]]
    cells = sum(c["cells"] for c in claims)
    cells_agree = sum(c["cells_agree"] for c in claims)
    if not compared:
        sentence = "No claim is judged at both fidelities, so the reduced fidelity is not justified by a measurement."
    else:
        sentence = (f"At the default point, the reduced fidelity gives the paper-fidelity status for {len(agree)} of "
                    f"{len(compared)} claims judged at both ({cells_agree} of {cells} cells agree)")
        if differ:
            sentence += ("; it differs for " + "; ".join(f"{c['id']} ({c['reduced_label']} here, "
                                                        f"{c['reference_label']} at the paper's fidelity)" for c in differ)
                         + ", so the sweep's verdicts on " + ", ".join(c["id"] for c in differ)
                         + " are about the reduced runs and may not carry over to the paper's")
        sentence += "."
    if partial:
        sentence += (f" Not compared, some of their cells not run at one of the two fidelities: {', '.join(partial)}"
                     " (`kag sweep GRID` computes the rest).")
    return {"available": True, "claims": claims, "compared": compared, "agree": agree, "partial": partial,
            "differ": [c["id"] for c in differ], "cells": cells, "cells_agree": cells_agree, "sentence": sentence}


def fidelity_check(grid: Grid, reduced: list[dict[str, Any]], store: Any, mnist: Any) -> dict[str, Any]:
    """SPEC §8's justification of a reduced fidelity, measured: the default point's verdicts here
    (``reduced``) against the default point at the paper's fidelity (:meth:`Grid.reference`), judged
    on the tables in ``store`` only (nothing is trained or computed here: a sweep of a grid with
    ``fidelity.check = true``, or the ``paper`` profile's run, leaves them there). ``{"needed": False}`` at the paper's fidelity; ``available`` False, with the reason,
    when the reference tables are not cached."""
    if grid.at_paper_fidelity:
        return {"needed": False}
    ref = grid.reference().default_point()
    rows = judge_point(ref.profile, Results(ref.profile, store=store, mnist=mnist, compute=False))
    widths = ", ".join(map(str, grid.widths))
    out = {"needed": True, "reference": f"the default point at the paper's fidelity: widths {widths}, seeds "
                                        f"{', '.join(map(str, PAPER.seeds))}, {PAPER.train.epochs} epochs, SPEC sizes"}
    if not any(r["outcome"] == "judged" for r in rows):
        return {**out, "available": False,
                "sentence": f"Not measured: the paper-fidelity tables of widths {widths} were not in the store this "
                            "report was rendered from; `kag sweep GRID` computes them there when the grid sets "
                            "`check = true` in [fidelity] (as does `pytest claims --kag-profile paper`), and "
                            "`kag sweep GRID --report-only` then adds this check."}
    return {**out, **compare_fidelity(reduced, rows), "reference_verdicts": rows}


# -- the whole report ---------------------------------------------------------------------------------
def assemble_sweep(grid: Grid, points: Sequence[Point], verdicts: Mapping[str, list[dict[str, Any]]],
                   results: Mapping[str, Any], *, caches: Mapping[str, dict[str, Any]] | None = None,
                   run: Summary | None = None, session_seconds: float | None = None, device: str | None = None,
                   scheduler: str | None = None, fidelity: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sweep report as data (``fidelity``: :func:`fidelity_check`'s result, None when not run). ``verdicts``: point name -> :func:`~kag.repro.sweep.engine.judge_point`
    rows; ``results``: point name -> its results (the accuracy rows and the cache entries are read
    from them); ``run``: the summary of a run made in this process (None when re-rendered)."""
    points = ordered(points)
    caches = dict(caches) if caches is not None else {p.name: point_cache(p, results[p.name]) for p in points}
    accuracy = {p.name: augmented_accuracy(p.profile, verdicts.get(p.name, []), results[p.name]) for p in points}
    zeros = {p.name: exact_zeros(p.profile, results[p.name]) for p in points}
    robust = {p.name: point_robustness(verdicts.get(p.name, []), results[p.name]) for p in points}
    rows = matrix(points, verdicts, robust)
    notes = [SHIFTED_NOTE] if any(p.values["eval_images"] == "shifted" for p in points) else []
    said = summary(rows, points, verdicts, accuracy, grid, zeros)
    return {
        "title": "Assumption sweep of 'Scale-Agnostic Kolmogorov-Arnold Geometry in Neural Networks' "
                 "(arXiv 2511.21626)",
        "grid": {"source": grid.source, "design": grid.design, "pairs": [list(p) for p in grid.pairs],
                 "reductions": list(grid.reductions()), "at_paper_fidelity": grid.at_paper_fidelity},
        "points": [{"name": p.name, "short": short_name(p, said["weight_decay"]["untested"]),
                    "changed": {a: value_text(v) for a, v in p.changed.items()},
                    "settings": {a: value_text(v) for a, v in p.settings}} for p in points],
        "axis_short": [[AXIS_SHORT[a], AXIS_WORDS[a]] for a in AXES if a in AXIS_SHORT],
        "statuses": list(MATRIX_STATUSES),
        "matrix": rows,
        "summary": said,
        "fidelity": fidelity or {"needed": not grid.at_paper_fidelity, "available": False,
                                 "sentence": "Not measured in this report."},
        "notes": notes,
        "figures": [dict(f, axes_words=[AXIS_WORDS[a] for a in f["axes"]]) for f in FIGURES],
        "accuracy": accuracy,
        "exact_zeros": {"k": ZEROS_K, "mostly": MOSTLY_ZERO, "intro": ZEROS_INTRO, "points": zeros,
                        "table": exact_zeros_table([p.name for p in points], zeros)},
        "figures_data": figures_data(points, verdicts, accuracy),
        "verdicts": {p.name: verdicts.get(p.name, []) for p in points},
        "provenance": provenance(grid, points, caches, run, session_seconds, device, scheduler),
    }


def write_sweep_report(grid: Grid, points: Sequence[Point], results: Mapping[str, Any],
                       out_dir: str | Path | None = None, *, verdicts: Mapping[str, list[dict[str, Any]]] | None = None,
                       caches: Mapping[str, dict[str, Any]] | None = None, run: Summary | None = None,
                       session_seconds: float | None = None, device: str | None = None,
                       scheduler: str | None = None) -> Path:
    """Judge every point (unless ``verdicts`` are given), assemble the report (the other arguments
    as :func:`assemble_sweep`'s) and render it into ``out_dir`` (default ``reports/sweep``)."""
    from kag.repro.report.render import render_sweep

    if verdicts is None:
        verdicts = {p.name: judge_point(p.profile, results[p.name]) for p in points}
    default = grid.default_point()
    fidelity = None
    if default.name in verdicts and default.name in results:
        fidelity = fidelity_check(grid, verdicts[default.name], results[default.name].store,
                                  results[default.name].mnist)
    data = assemble_sweep(grid, points, verdicts, results, caches=caches, run=run, session_seconds=session_seconds,
                          device=device, scheduler=scheduler, fidelity=fidelity)
    return render_sweep(data, Path(out_dir) if out_dir else default_out_dir())


def report_from_cache(grid: Grid, out_dir: str | Path | None = None, *, device: str | None = None,
                      store: Any = None, mnist: Any = None, partial: bool = False) -> Path:
    """Re-judge every point on cached tables and render the report (nothing is trained or computed).

    Raises :class:`~kag.errors.MissingResults`, before anything is written, when a point has no
    cached metric table (its column would be all "not run"), unless ``partial``: then such points
    render as "not run" (the summary names them) and only a cache with no table of any point is
    refused. A point with some of its tables renders, the claims that read the missing ones "not run"."""
    from kag.experiments.data import load_mnist
    from kag.experiments.store import Store

    store = store or Store()
    mnist = mnist or load_mnist()
    points = ordered(grid.points())
    results = {p.name: Results(p.profile, store=store, mnist=mnist, compute=False) for p in points}
    caches = {p.name: point_cache(p, results[p.name]) for p in points}
    empty = [p.name for p in points if not caches[p.name]["tables"]]
    if empty and (not partial or len(empty) == len(points)):
        shown = ", ".join(empty[:3]) + (f" and {len(empty) - 3} more" if len(empty) > 3 else "")
        others = (", or add --partial to render the other points with these marked 'not run'"
                  if len(empty) < len(points) else "")
        raise MissingResults(f"{len(empty)} of {len(points)} points of {grid.source} have no cached metric table in "
                             f"{store.root} ({shown}): run `kag sweep {grid.source}` first (or set KAG_HOME to the "
                             f"kag home that holds them){others}")
    return write_sweep_report(grid, points, results, out_dir, caches=caches, device=device)
