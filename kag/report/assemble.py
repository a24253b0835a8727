"""Everything behind the report, as one JSON-serialisable dict (written as ``results.json``).

Verdicts come either from a pytest run (the outcomes the controller collected) or, for
``kag report``, from judging every cell on the cached tables; figures and provenance read the
cached tables and model manifests. Nothing here trains or computes metrics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from claims.criteria import CRITERIA, Criterion, rule_text
from claims.judge import ANALYSES, LAYERS, REGIMES, Cell, cells, judge
from kag.analysis import MissingResults
from kag.profiles import Profile, resolve_device
from kag.results import Results

REPO_ROOT = Path(__file__).resolve().parents[2]


# -- verdicts -----------------------------------------------------------------------------------
def _cell_row(c: Criterion, cell: Cell, outcome: str, verdict: dict | None, message: str = "") -> dict:
    row = {"cell": cell.id, "params": cell.p, "outcome": outcome, "supported": None, "as_expected": None,
           "values": {}, "detail": message}
    if verdict:
        row.update(supported=verdict["supported"], as_expected=verdict["supported"] == c.expect_supported,
                   values=verdict["values"], detail=verdict["detail"])
    return row


def verdicts_from_outcomes(profile: Profile, outcomes: dict[str, dict]) -> dict[str, list[dict]]:
    """criterion id -> one row per cell, from what a pytest run recorded (absent cells: not run)."""
    by_cell: dict[tuple[str, str], dict] = {}
    for nodeid, info in outcomes.items():
        v = info.get("verdict")
        if v:
            by_cell[(v["criterion"], v["cell"])] = info
        else:  # an error or skip before a verdict: find the cell from the node id
            for c in CRITERIA:
                fn = f"test_{c.id.replace('-', '_')}_"
                if fn in nodeid and "[" in nodeid:
                    by_cell[(c.id, nodeid.rsplit("[", 1)[1].rstrip("]"))] = info
    out = {}
    for c in CRITERIA:
        rows = []
        for cell in cells(c, profile):
            info = by_cell.get((c.id, cell.id))
            if info is None:
                rows.append(_cell_row(c, cell, "not run", None))
            else:
                rows.append(_cell_row(c, cell, info["outcome"], info.get("verdict"), info.get("message", "")))
        out[c.id] = rows
    return out


def verdicts_from_cache(results: Results) -> dict[str, list[dict]]:
    """Judge every cell on cached tables (``kag report``); cells whose tables are missing are not run."""
    out = {}
    for c in CRITERIA:
        rows = []
        for cell in cells(c, results.profile):
            if results.profile.name not in c.profiles:
                rows.append(_cell_row(c, cell, "skipped", None, f"judged under the {', '.join(c.profiles)} profile only"))
                continue
            try:
                v = judge(c, cell, results).to_dict()
            except MissingResults as exc:
                rows.append(_cell_row(c, cell, "not run", None, str(exc)))
                continue
            expected = v["supported"] == c.expect_supported
            xfail = results.profile.name in c.xfail
            outcome = ("xpassed" if expected else "xfailed") if xfail else ("passed" if expected else "failed")
            rows.append(_cell_row(c, cell, outcome, v))
        out[c.id] = rows
    return out


def claim_status(c: Criterion, rows: list[dict]) -> dict[str, Any]:
    judged = [r for r in rows if r["supported"] is not None]
    n_ok = sum(bool(r["as_expected"]) for r in judged)
    if not judged:
        status = "not run"
    elif n_ok == len(rows):
        status = "reproduced"
    else:
        status = "not reproduced"
    return {"status": status, "cells": len(rows), "judged": len(judged), "as_expected": n_ok,
            "key_number": key_number(c, judged)}


def key_number(c: Criterion, judged: list[dict]) -> str:
    """One headline number per claim for the summary table."""
    if not judged:
        return ""
    g = c.group
    vals = [r["values"] for r in judged]
    try:
        if g in ("C1", "C2", "C3", "C10"):
            lbs = [v["lower_bound"] for v in vals]
            return f"lower bound {min(lbs):.3g} to {max(lbs):.3g} (threshold {vals[0]['threshold']:g})"
        if g in ("C4", "C11"):
            return "rho " + ", ".join(f"{r['cell']}: {r['values']['rho']:.2f}" for r in judged[:4])
        if g == "C5":
            return "spread " + ", ".join(f"{v['spread']:.2f}" for v in vals[:8])
        if g == "C6":
            lbs = [s["lower_bound"] for v in vals for s in v["conditions"].values()]
            return f"patch lower bounds {min(lbs):.3g} to {max(lbs):.3g}"
        if g == "C7":
            return "change at far d: " + ", ".join(f"{v['relative_change']:+.2f}" for v in vals[:8])
        if g == "C8":
            red = [v["reduction"] for v in vals]
            return f"reduction {min(red):.2f} to {max(red):.2f}"
        if g == "C9":
            return "mean accuracy " + ", ".join(f"{r['cell']}: {r['values']['mean']:.4f}" for r in judged[:4])
        if g == "N1":
            lbs = [v["pr_ratio_null"]["lower_bound"] for v in vals]
            return f"null PR-ratio lower bound {min(lbs):.3g} to {max(lbs):.3g}"
    except (KeyError, TypeError, ValueError):
        return ""
    return ""


# -- figure data -------------------------------------------------------------------------------
def _try(results: Results, width: int, regime: str, eval_images: str = "clean") -> list[dict] | None:
    try:
        return results.tables(width, regime, eval_images)
    except MissingResults:
        return None


def figure_data(results: Results) -> dict[str, Any]:
    """Seed-level numbers for every figure, from whatever tables are cached."""
    p = results.profile
    data: dict[str, Any] = {"global": {}, "zero_rows": {}, "timeline": {}, "accuracy": {}, "spatial": {}}
    for regime in REGIMES:
        for n in p.widths:
            tables = _try(results, n, regime)
            if not tables:
                continue
            g = data["global"].setdefault(regime, {}).setdefault(str(n), {})
            for layer in LAYERS:
                for k in p.metrics.ks:
                    rows = [t["global"][layer][str(k)] for t in tables]
                    g.setdefault(layer, {})[str(k)] = {
                        name: [r[name] for r in rows]
                        for name in ("pr_ratio", "pr_ratio_null", "kl", "kl_null", "rr_ratio", "rr_ratio_null",
                                     "pr_trained", "pr_init", "rr_trained", "rr_init")
                    }
            data["zero_rows"].setdefault(regime, {})[str(n)] = {
                layer: {s: [t["zero_rows"][layer][s] for t in tables] for s in ("trained", "init", "null")} for layer in LAYERS
            }
            data["accuracy"].setdefault(regime, {})[str(n)] = {
                "clean": [t["test_accuracy"] for t in tables],
                "shifted": [t["shifted_test_accuracy"] for t in tables],
            }
            if tables[0].get("timeline"):
                data["timeline"].setdefault(regime, {})[str(n)] = {
                    "epochs": tables[0]["timeline"]["epochs"], "pr_ratio": [t["timeline"]["pr_ratio"] for t in tables]}
    for n in p.spatial_widths:
        for regime, ev in (("standard", "clean"), ("augmented", "clean"), ("augmented", "augmented")):
            tables = _try(results, n, regime, ev)
            if not tables or not tables[0].get("spatial"):
                continue
            label = regime if ev == "clean" else "augmented (shifted test images)"
            sp = data["spatial"].setdefault(str(n), {}).setdefault(label, {})
            for analysis in ANALYSES:
                for layer in LAYERS:
                    for k in p.metrics.spatial_ks:
                        conds = tables[0]["spatial"][analysis][layer][str(k)]
                        sp.setdefault(analysis, {}).setdefault(layer, {})[str(k)] = {
                            cond: {"pr_ratio": [t["spatial"][analysis][layer][str(k)][cond]["pr_ratio"] for t in tables],
                                   "pool_size": conds[cond]["pool_size"]}
                            for cond in conds
                        }
    return data


# -- assumptions and provenance -----------------------------------------------------------------
def assumptions(p: Profile) -> list[dict[str, str]]:
    """SPEC's [assumed] choices and ours, with the values this profile used."""
    t, m = p.train, p.metrics
    return [
        {"name": "Widths", "value": ", ".join(map(str, p.widths)), "source": "SPEC §2 [assumed]"},
        {"name": "Initialisation", "value": "Kaiming normal, std = sqrt(2/fan_in); biases zero", "source": "SPEC §2 [assumed]"},
        {"name": "Learning rate", "value": f"{t.lr:g}", "source": "SPEC §2 [assumed]"},
        {"name": "Weight decay", "value": f"{t.weight_decay:g}", "source": "SPEC §2 [assumed]"},
        {"name": "Images the augmented regime is measured on", "value": f"{m.eval_images} (C8/C9 shown on both)",
         "source": "SPEC §3 [assumed]"},
        {"name": "KL histogram", "value": f"{m.kl_bins} bins over the joint range of log10 minors, smoothing {m.kl_smoothing:g}; "
                                          "exact-zero minors dropped", "source": "SPEC §5 [assumed]"},
        {"name": "Separation grid d", "value": ", ".join(map(str, m.separations)), "source": "SPEC §6 [assumed grid]"},
        {"name": "Spatial analyses at widths", "value": ", ".join(map(str, p.spatial_widths)), "source": "ours [assumed]"},
        {"name": "Ball centres", "value": f"{m.n_centres} random centres (seed {m.index_seed}), each used for every spatial image "
                                          "and every radius", "source": "ours [assumed]"},
        {"name": "PR ratio", "value": "mean PR of the trained network over images / mean PR of its initialisation "
                                      "(same images, same index sample)", "source": "ours [assumed]"},
        {"name": "Independent initialisation (KL null, N1)", "value": f"seed + {m.null_init_offset}", "source": "ours [assumed]"},
        {"name": "Evaluation images", "value": f"the first {m.n_images} test images ({m.n_spatial_images} for spatial analyses); "
                                               f"RR over the first {m.n_rotation_images}", "source": "ours [assumed]"},
        {"name": "Timeline", "value": f"fc1 checkpoints every {t.checkpoint_every} epoch(s), regimes: "
                                      f"{', '.join(t.timeline_regimes)}; L1, k = {m.timeline_k}", "source": "ours [assumed]"},
        {"name": "Regime of C1-C3, C10, C11", "value": "standard", "source": "SPEC §7 (C1), ours (others) [assumed]"},
        {"name": "C8 reduction", "value": "averaged over the conditions (radii, patches or distances) of one analysis",
         "source": "ours [assumed]"},
    ]


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = run("rev-parse", "HEAD")
    return {"commit": commit or "unknown", "dirty": bool(run("status", "--porcelain", "--", "kag", "claims"))}


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("kag", "torch", "torchvision", "numpy", "scipy", "jinja2", "matplotlib", "safetensors", "pytest", "pytest-xdist"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def provenance(results: Results, session_seconds: float | None, device: str | None) -> dict[str, Any]:
    """Versions, commit, device, profile, timings per stage and the cache keys behind the numbers."""
    p = results.profile
    dev = resolve_device(device)
    models, metrics = [], []
    train_s, metric_s, metric_stage = 0.0, 0.0, {"global": 0.0, "timeline": 0.0, "spatial": 0.0}
    train_devices, seen_groups = set(), set()
    for n in p.widths:
        for regime, ev in [(r, "clean") for r in REGIMES] + ([("augmented", "augmented")] if n in p.spatial_widths else []):
            tables = _try(results, n, regime, ev)
            for t in tables or []:
                metrics.append({"width": n, "seed": t["seed"], "regime": regime, "eval_images": ev, "key": t["key"],
                                "model_key": t["model_key"], "seconds": t["timings"]["total"]})
                metric_s += t["timings"]["total"]
                for stage in metric_stage:
                    metric_stage[stage] += t["timings"].get(stage, 0.0)
                if ev == "clean":
                    manifest = results.store.read_manifest(t["model_key"])
                    models.append({"width": n, "seed": t["seed"], "regime": regime, "key": t["model_key"],
                                   "test_accuracy": manifest.get("test_accuracy"), "device": manifest.get("device"),
                                   "seconds": manifest.get("seconds")})
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
        "versions": _versions(),
        "git": _git(),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "training_devices": sorted(d for d in train_devices if d),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "data": {"sha256": results.mnist.sha256, "source": results.mnist.source},
        "timings": {"session_seconds": session_seconds, "training_seconds": train_s, "metrics_seconds": metric_s,
                    "metrics_seconds_by_stage": metric_stage,
                    "note": "training and metric seconds are summed over models as recorded when they were computed "
                            "(possibly in earlier runs); session seconds is this run's wall time"},
        "cache": {"store": str(results.store.root), "models": models, "metrics": metrics},
    }


def assemble(results: Results, verdicts: dict[str, list[dict]], session_seconds: float | None = None,
             device: str | None = None) -> dict[str, Any]:
    """The whole report as data."""
    p = results.profile
    criteria, summary = [], []
    for c in CRITERIA:
        rows = verdicts[c.id]
        status = claim_status(c, rows)
        entry = {"id": c.id, "group": c.group, "claim": c.claim, "measurement": c.measurement, "rule": rule_text(c),
                 "thresholds": dict(c.thresholds), "cells_description": c.cells, "profiles": list(c.profiles),
                 "xfail_reason": c.xfail.get(p.name), "expect_supported": c.expect_supported, "figure": c.figure,
                 **status, "cells": rows}
        criteria.append(entry)
        summary.append({k: entry[k] for k in ("id", "claim", "status", "judged", "as_expected", "key_number",
                                              "expect_supported", "xfail_reason")} | {"n_cells": len(rows)})
    return {
        "title": "Reproduction of 'Scale-Agnostic Kolmogorov-Arnold Geometry in Neural Networks' (arXiv 2511.21626)",
        "profile": {"name": p.name, "description": p.description, "reductions": list(p.reductions)},
        "summary": summary,
        "criteria": criteria,
        "assumptions": assumptions(p),
        "figures_data": figure_data(results),
        "provenance": provenance(results, session_seconds, device),
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
