"""Report assembly on fake results: verdict rows, claim status, figure data as filters over the
results table, and a whole report rendered from them."""

from __future__ import annotations

import csv
import json

import pytest

from fakes import FakeResults, kag_like
from kag.repro.claims import CLAIMS, get_claim
from kag.repro.profiles import QUICK, SMOKE
from kag.repro.report.assemble import (
    assemble,
    claim_status,
    figure_data,
    verdicts_from_cache,
    verdicts_from_outcomes,
)
from kag.repro.report.render import render
from kag.table import COLUMNS


@pytest.fixture(scope="module")
def results() -> FakeResults:
    return FakeResults(SMOKE, kag_like)


def test_outcomes_are_matched_to_cells_by_claim_and_cell_id(results):
    c5 = get_claim("C5")
    first, second = c5.cells(SMOKE)[:2]
    verdict = c5.judge(first, results).to_dict()
    outcomes = {("C5", first.id): {"outcome": "passed", "verdict": verdict},
                ("C5", second.id): {"outcome": "error", "verdict": None, "message": "boom"}}
    rows = verdicts_from_outcomes(SMOKE, outcomes)
    assert set(rows) == {c.id for c in CLAIMS}
    c5_rows = {r["cell"]: r for r in rows["C5"]}
    assert c5_rows[first.id]["outcome"] == "passed" and c5_rows[first.id]["values"] == verdict["values"]
    assert c5_rows[first.id]["as_expected"] is True
    assert c5_rows[second.id]["outcome"] == "error" and c5_rows[second.id]["detail"] == "boom"
    assert c5_rows[second.id]["supported"] is None
    assert all(r["outcome"] == "not run" for r in rows["C1-PR"])


def test_claim_status_is_reproduced_only_when_every_cell_is_as_expected(results):
    rows = verdicts_from_cache(results)["C1-PR"]
    status = claim_status(get_claim("C1-PR"), rows)
    assert status["status"] == "reproduced" and status["as_expected"] == status["cells"] == len(rows)
    assert status["key_number"].startswith("lower bound")
    rows[0] = {**rows[0], "as_expected": False, "supported": False}
    assert claim_status(get_claim("C1-PR"), rows)["status"] == "not reproduced"
    not_run = [{**r, "supported": None, "as_expected": None} for r in rows]
    assert claim_status(get_claim("C1-PR"), not_run) == {"status": "not run", "cells": len(rows), "judged": 0,
                                                         "as_expected": 0, "key_number": ""}


def test_claims_outside_their_profiles_are_skipped(results):
    rows = verdicts_from_cache(results)["C9"]  # C9 is judged under the paper profiles only
    assert rows and all(r["outcome"] == "skipped" for r in rows)
    assert claim_status(get_claim("C9"), rows)["status"] == "not run"


def test_figure_data_are_per_seed_filters_of_the_table(results):
    fd = figure_data(results.available(), SMOKE)
    t = results.available()
    g = fd["global"]["standard"]["8"]["L1"]["3"]
    assert g["pr_ratio"] == t.seed_values(SMOKE.seeds, width=8, regime="standard", eval_images="clean",
                                          analysis="global", layer="L1", k=3, observable="pr_ratio", role="trained")
    assert set(g) == {"pr_ratio", "pr_ratio_null", "kl", "kl_null", "rr_ratio", "rr_ratio_null", "pr_trained",
                      "pr_init", "rr_trained", "rr_init"}
    assert g["pr_trained"] == [None] * len(SMOKE.seeds)  # the fake has no raw PR rows: None, never a crash
    assert fd["accuracy"]["augmented"]["16"] == {"clean": [0.99] * 3, "shifted": [0.96] * 3}
    assert fd["timeline"]["standard"]["8"]["epochs"] == [0, 1, 2, 3, 4]
    assert "augmented" not in fd["timeline"]
    labels = set(fd["spatial"]["16"])
    assert labels == {"standard", "augmented", "augmented (shifted test images)"}
    balls = fd["spatial"]["16"]["standard"]["balls"]["L1"]["2"]
    assert list(balls) == [str(r) for r in SMOKE.metrics.radii] and balls["7"]["pool_size"] == 100.0


def test_a_whole_report_is_assembled_and_rendered_from_fake_results(results, tmp_path):
    table = results.available()
    data = assemble(results, verdicts_from_cache(results), table)
    assert [s["id"] for s in data["summary"]] == [c.id for c in CLAIMS]
    status = {s["id"]: s["status"] for s in data["summary"]}
    assert status["C1-PR"] == "reproduced" and status["N1"] == "reproduced" and status["C9"] == "not run"
    assert data["table"] == {"file": "table.csv", "schema": 1, "rows": len(table)}
    assert data["provenance"]["profile"] == "smoke" and data["provenance"]["cache"]["models"] == []
    out = render(data, tmp_path, table)
    saved = json.loads((out / "results.json").read_text())
    assert saved["criteria"][0]["id"] == "C1-PR" and saved["criteria"][0]["rule"].startswith("lower bound")
    with open(out / "table.csv") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS and len(rows) == len(table) + 1


def test_quick_cells_cover_every_registered_claim():
    assert all(c.cells(QUICK) for c in CLAIMS)
