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
from typing import Any

import numpy as np
import torch

from kag.devices import resolve_device
from kag.errors import MissingResults
from kag.repro.claims import ANALYSES, CLAIMS, LAYERS, REGIMES, Cell, Claim
from kag.repro.profiles import Profile
from kag.repro.results import Results, groups_needed
from kag.table import TABLE_VERSION, ResultTable

TABLE_FILE = "table.csv"  # the long-format results table, written beside results.json


# -- verdicts -----------------------------------------------------------------------------------
def _cell_row(c: Claim, cell: Cell, outcome: str, verdict: dict | None, message: str = "") -> dict:
    row = {"cell": cell.id, "params": cell.p, "outcome": outcome, "supported": None, "as_expected": None,
           "values": {}, "detail": message}
    if verdict:
        row.update(supported=verdict["supported"], as_expected=verdict["supported"] == c.expect_supported,
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
            else:
                rows.append(_cell_row(c, cell, info["outcome"], info.get("verdict"), info.get("message", "")))
        out[c.id] = rows
    return out


def verdicts_from_cache(results: Results) -> dict[str, list[dict]]:
    """Judge every cell on cached tables (``kag report``); cells whose tables are missing are not run."""
    out = {}
    for c in CLAIMS:
        rows = []
        for cell in c.cells(results.profile):
            if not c.judged_under(results.profile):
                rows.append(_cell_row(c, cell, "skipped", None, f"judged under the {', '.join(c.profiles)} profile only"))
                continue
            try:
                v = c.judge(cell, results).to_dict()
            except MissingResults as exc:
                rows.append(_cell_row(c, cell, "not run", None, str(exc)))
                continue
            expected = v["supported"] == c.expect_supported
            xfail = results.profile.name in c.xfail
            outcome = ("xpassed" if expected else "xfailed") if xfail else ("passed" if expected else "failed")
            rows.append(_cell_row(c, cell, outcome, v))
        out[c.id] = rows
    return out


def claim_status(c: Claim, rows: list[dict]) -> dict[str, Any]:
    judged = [r for r in rows if r["supported"] is not None]
    n_ok = sum(bool(r["as_expected"]) for r in judged)
    if not judged:
        status = "not run"
    elif n_ok == len(rows):
        status = "reproduced"
    else:
        status = "not reproduced"
    return {"status": status, "cells": len(rows), "judged": len(judged), "as_expected": n_ok,
            "key_number": c.key_number(judged)}


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
            for layer in LAYERS:
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
                for layer in LAYERS
            }
            acc = t.select(analysis="accuracy")
            data["accuracy"].setdefault(regime, {})[str(n)] = {
                "clean": _by_seed(acc, seeds, condition="clean"), "shifted": _by_seed(acc, seeds, condition="shifted")}
            tl = t.select(analysis="timeline")
            if len(tl):
                epochs = tl.unique("condition")
                data["timeline"].setdefault(regime, {})[str(n)] = {
                    "epochs": [int(e) for e in epochs],
                    "pr_ratio": [[tl.value(seed=s, condition=e) for e in epochs] for s in seeds]}
    for n in p.spatial_widths:
        for regime, ev in (("standard", "clean"), ("augmented", "clean"), ("augmented", "augmented")):
            t = table.select(width=n, regime=regime, eval_images=ev, analysis=set(ANALYSES))
            if not len(t):
                continue
            label = regime if ev == "clean" else "augmented (shifted test images)"
            sp = data["spatial"].setdefault(str(n), {}).setdefault(label, {})
            for analysis in ANALYSES:
                for layer in LAYERS:
                    for k in p.metrics.spatial_ks:
                        at = t.select(analysis=analysis, layer=layer, k=k)
                        sp.setdefault(analysis, {}).setdefault(layer, {})[str(k)] = {
                            cond: {"pr_ratio": _by_seed(at, seeds, condition=cond, observable="pr_ratio"),
                                   "pool_size": at.select(condition=cond, observable="pool_size").rows[0].value}
                            for cond in at.unique("condition")
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
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
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


def assemble(results: Results, verdicts: dict[str, list[dict]], table: ResultTable,
             session_seconds: float | None = None, device: str | None = None) -> dict[str, Any]:
    """The whole report as data; ``table`` holds every cached row (``results.available()``)."""
    p = results.profile
    criteria, summary = [], []
    for c in CLAIMS:
        rows = verdicts[c.id]
        status = claim_status(c, rows)
        entry = {"id": c.id, "group": c.group, "claim": c.statement, "measurement": c.measurement, "rule": str(c.rule),
                 "thresholds": dict(c.thresholds), "cells_description": c.cells_description,
                 "profiles": list(c.profiles), "xfail_reason": c.xfail.get(p.name), "expect_supported": c.expect_supported,
                 "figure": c.figure, **status, "cells": rows}
        criteria.append(entry)
        summary.append({k: entry[k] for k in ("id", "claim", "status", "judged", "as_expected", "key_number",
                                              "expect_supported", "xfail_reason")} | {"n_cells": len(rows)})
    return {
        "title": "Reproduction of 'Scale-Agnostic Kolmogorov-Arnold Geometry in Neural Networks' (arXiv 2511.21626)",
        "profile": {"name": p.name, "description": p.description, "reductions": list(p.reductions)},
        "summary": summary,
        "criteria": criteria,
        "assumptions": assumptions(p),
        "figures_data": figure_data(table, p),
        "table": {"file": TABLE_FILE, "schema": TABLE_VERSION, "rows": len(table)},
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
