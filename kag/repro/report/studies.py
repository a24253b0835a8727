"""The cross-study report: every claim's verdict in every study, from the studies' own reports.

``python -m kag.repro.report.studies [--profile quick]`` (or ``kag studies``) reads the
``results.json`` of each study's report of one profile (``reports/<profile>`` for ``mnist-mlp``,
``reports/studies/<study>/<profile>`` for the others; nothing is judged again, so the matrix shows
exactly what each report says) and writes ``reports/studies/<profile>/``: README.md and index.html
with the claim × study matrix (status, robustness, key number), N2 per study, a plain summary of
what holds in every study and what is specific to one, and every study's fidelity (profile, its
reductions, commit). A study without a report is listed as such, never guessed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from kag.experiments.families import by_depth
from kag.repro.studies import STUDIES, Study

STATUSES = ("reproduced", "contradicted", "inconclusive", "not run", "skipped")


def read_report(study: Study, profile: str, base: Path) -> dict[str, Any] | None:
    """The study's ``results.json`` for ``profile`` under ``base``, or None when it has none."""
    path = study.report_dir(profile, base) / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fidelity(data: dict[str, Any], path: Path, base: Path) -> dict[str, Any]:
    prov = data.get("provenance") or {}
    git = prov.get("git") or {}
    try:  # as the repository names it (reports/...), not where this machine keeps it
        shown = path.resolve().relative_to(base.resolve().parent)
    except ValueError:
        shown = path
    return {"report": str(shown), "profile": (data.get("profile") or {}).get("name"),
            "reductions": (data.get("profile") or {}).get("reductions") or [],
            "generated": prov.get("generated"), "commit": git.get("commit"), "dirty": bool(git.get("dirty")),
            "data": (prov.get("data") or {}).get("name") or "mnist", "device": prov.get("device")}


def _cell(entry: dict[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        return {"status": "not run", "label": "not run", "robustness": "", "key_number": ""}
    robust = entry.get("robustness") or {}
    return {"status": entry.get("status"), "label": entry.get("label") or entry.get("status"),
            "robustness": robust.get("status", ""), "disagree": robust.get("disagree") or [],
            "key_number": entry.get("key_number") or "", "counts_text": entry.get("counts_text") or ""}


def assemble_studies(profile: str, base: Path) -> dict[str, Any]:
    """The cross-study report's data for ``profile``: studies, matrix rows, N2, summary sentences."""
    reports = {name: read_report(study, profile, base) for name, study in STUDIES.items()}
    present = [name for name, data in reports.items() if data is not None]
    studies = []
    for name, study in STUDIES.items():
        data = reports[name]
        studies.append({"name": name, "dataset": study.dataset, "model": study.model, "summary": study.summary,
                        "available": data is not None, "not_applicable": dict(study.not_applicable),
                        "metric_changes": {k: str(v) for k, v in study.metric_changes.items()},
                        "fidelity": _fidelity(data, study.report_dir(profile, base), base) if data else None})
    claims: dict[str, dict[str, Any]] = {}
    for name in present:
        for entry in reports[name].get("summary") or []:
            row = claims.setdefault(entry["id"], {"id": entry["id"], "claim": entry.get("claim", ""),
                                                  "control": bool(entry.get("control")), "cells": {}})
            row["cells"][name] = _cell(entry)
    rows = list(claims.values())
    for row in rows:
        row["cells"] = {name: row["cells"].get(name, _cell(None)) for name in present}
    n2 = [{"study": name, "statement": reports[name].get("n2_statement") or "",
           **_cell(next((e for e in reports[name].get("summary") or [] if e["id"] == "N2"), None))} for name in present]
    questions = [{"id": q, "question": text, "drawn": drawn,
                  "studies": {name: series[q] for name in present
                              if q in (series := question_series(reports[name].get("figures_data") or {}))}}
                 for q, (text, drawn) in QUESTIONS.items()]
    return {
        "title": f"KAG claims across studies ({profile} profile)",
        "questions": [q for q in questions if q["studies"]],
        "profile": profile,
        "studies": studies,
        "present": present,
        "rows": rows,
        "n2": n2,
        "summary": summarize(rows, present),
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# The questions the cross-study report answers with one figure each: id -> (question, what is drawn).
QUESTIONS = {
    "emergence": ("Does training concentrate the minors, and at which layers?",
                  "PR ratio (trained / init) per hidden layer, largest width and k, standard regime"),
    "width": ("Does the geometry grow with width?",
              "PR ratio (trained / init) at L1 against width, largest k, standard regime"),
    "norms": ("Is it more than the row and column norms (N2)?",
              "PR(trained) / PR(norm-matched surrogate) per hidden layer, largest width, standard regime"),
}


def question_series(fd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One study's numbers for each of :data:`QUESTIONS`, from its report's ``figures_data``: ``{question
    id: {"x": [...], "seeds": [per-seed values per x], "at": what was fixed}}`` (a question without
    data is left out)."""
    out: dict[str, dict[str, Any]] = {}
    g = (fd.get("global") or {}).get("standard") or {}
    if g:
        widths = sorted(g, key=int)
        n = widths[-1]
        layers = by_depth(g[n])
        ks = sorted({k for layer in g[n].values() for k in (layer or {})}, key=float)
        if layers and ks:
            k = ks[-1]
            out["emergence"] = {"x": layers, "at": f"n={n}, k={k}",
                                "seeds": [((g[n][layer] or {}).get(k) or {}).get("pr_ratio") for layer in layers]}
            out["width"] = {"x": [int(w) for w in widths], "at": f"L1, k={k}",
                            "seeds": [(((g[w] or {}).get("L1") or {}).get(k) or {}).get("pr_ratio") for w in widths]}
    sd = fd.get("surrogate") or {}
    layers = by_depth(layer for layer, v in (sd.get("layers") or {}).items() if (v or {}).get("pr"))
    if layers:
        per_width = {layer: (sd["layers"][layer]["pr"].get("surrogate") or {}) for layer in layers}
        widths = sorted({w for v in per_width.values() for w in v}, key=int)
        if widths:
            n = widths[-1]
            out["norms"] = {"x": layers, "at": f"n={n}, k={sd.get('k')}",
                            "seeds": [per_width[layer].get(n) for layer in layers]}
    return out


def summarize(rows: list[dict[str, Any]], present: list[str]) -> list[str]:
    """Plain sentences: which judged claims come out the same in every study, and which differ."""
    if len(present) < 2:
        return [f"Only {', '.join(present) or 'no study'} has a report for this profile: nothing can be compared yet."]
    unjudged = ("skipped", "not run")
    judged = [r for r in rows if not all(c["status"] in unjudged for c in r["cells"].values())]
    partial = [r for r in judged if any(c["status"] in unjudged for c in r["cells"].values())]
    judged = [r for r in judged if r not in partial]
    same = [r for r in judged if len({c["label"] for c in r["cells"].values()}) == 1]
    differ = [r for r in judged if r not in same]
    out = []
    for status in STATUSES:
        ids = [r["id"] for r in same if not r["control"] and next(iter(r["cells"].values()))["status"] == status]
        if ids:
            out.append(f"{status.capitalize()} in every study ({', '.join(present)}): {', '.join(ids)}.")
    for r in same:
        if r["control"]:  # a control's words say whether it came out as it should
            out.append(f"The control {r['id']}: {next(iter(r['cells'].values()))['label']} in every study.")
    for r in differ:
        parts = "; ".join(f"{name}: {c['label']}" for name, c in r["cells"].items())
        out.append(f"{r['id']} differs between studies ({parts}).")
    for r in partial:  # judged in some studies only (it does not apply to the others, or was not run there)
        where = {name: c for name, c in r["cells"].items() if c["status"] not in unjudged}
        parts = "; ".join(f"{name}: {c['label']}" for name, c in where.items())
        out.append(f"{r['id']} is judged in {', '.join(where)} only ({parts}).")
    return out


def write_studies_report(profile: str = "quick", base: Path | None = None, out_dir: Path | None = None) -> Path:
    """Assemble and render the cross-study report of ``profile`` (reports under ``base``, default
    ``./reports``) into ``out_dir`` (default ``<base>/studies/<profile>``)."""
    from kag.repro.report.render import render_studies

    base = Path(base) if base is not None else Path.cwd() / "reports"
    data = assemble_studies(profile, base)
    if not data["present"]:
        raise FileNotFoundError(f"no study has a report of the {profile} profile under {base}: run "
                                f"`pytest claims -n auto --kag-profile {profile} --kag-study <study>` first")
    return render_studies(data, Path(out_dir) if out_dir else base / "studies" / profile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kag.repro.report.studies", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", help="the profile whose study reports are compared")
    parser.add_argument("--reports", type=Path, default=None, help="the reports folder (default: ./reports)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: reports/studies/<profile>)")
    args = parser.parse_args(argv)
    try:
        out = write_studies_report(args.profile, args.reports, args.out)
    except FileNotFoundError as exc:
        print(f"kag: error: {exc}", file=sys.stderr)
        return 1
    print(f"cross-study report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
