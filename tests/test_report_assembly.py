"""Report assembly on fake results: verdict rows, claim status, figure data as filters over the
results table, and a whole report rendered from them."""

from __future__ import annotations

import csv
import json

import pytest

from fakes import FakeResults, anti_kag, kag_like, noisy
from kag.repro.claims import CLAIMS, get_claim
from kag.repro.studies import does_not_apply, get_study
from kag.repro.profiles import QUICK, SMOKE
from kag.repro.report.assemble import (
    STATUSES,
    assemble,
    claim_status,
    counts_text,
    figure_data,
    verdicts_from_cache,
    verdicts_from_outcomes,
)
from kag.repro.report.render import render
from kag.experiments.table import COLUMNS, TABLE_VERSION


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
    assert c5_rows[first.id]["as_expected"] is True and c5_rows[first.id]["verdict"] == "supported"
    assert c5_rows[second.id]["outcome"] == "error" and c5_rows[second.id]["detail"] == "boom"
    assert c5_rows[second.id]["verdict"] is None and c5_rows[second.id]["as_expected"] is None
    assert all(r["outcome"] == "not run" for r in rows["C1-PR"])


def test_a_skipped_cell_of_a_pytest_run_carries_why_it_was_not_judged():
    from kag.repro.report.assemble import _deviation

    depth = get_claim("C2-depth").cells(SMOKE)
    outcomes = {("C2-depth", cell.id): {"outcome": "skipped", "verdict": None} for cell in depth}
    rows = verdicts_from_outcomes(SMOKE, outcomes)["C2-depth"]
    assert {r["detail"] for r in rows} == {"C2-depth does not apply to the mnist-mlp study: it needs networks of at "
                                           "least 3 hidden layers, and the paper's 2-layer GELU MLP, 784 -> n -> n -> "
                                           "10 has 2"}
    entry = {"id": "C2-depth", "status": "not run", "cells": rows, "profiles": ["paper", "quick", "smoke"],
             "does_not_apply": does_not_apply(get_claim("C2-depth"), get_study("mnist-mlp"))}
    assert _deviation(entry).startswith("not run: does not apply to the mnist-mlp study")


def _with(rows: list[dict], i: int, verdict: str | None, **more) -> list[dict]:
    out = list(rows)
    out[i] = {**rows[i], "verdict": verdict, "as_expected": None if verdict is None else verdict == "supported", **more}
    return out


def test_kag_report_records_outcomes_as_pytest_would_in_either_mode(monkeypatch):
    """A paper claim's cell that is not as expected: "failed", or "xfailed" as under
    --kag-not-reproduced=xfail; a control's cell fails in both modes (pytest fails it in both)."""
    import dataclasses

    import kag.repro.judging

    real = kag.repro.judging.judge_every_cell

    def control_shows_kag(results, profile=None):  # N1 "supported": the control failed
        for j in real(results, profile):
            if j.claim.control and j.verdict is not None:
                j = dataclasses.replace(j, verdict=dataclasses.replace(j.verdict, verdict="supported"))
            yield j

    monkeypatch.setattr(kag.repro.judging, "judge_every_cell", control_shows_kag)
    contradicted = FakeResults(SMOKE, anti_kag)
    fail, xfail = (verdicts_from_cache(contradicted, mode) for mode in ("fail", "xfail"))
    missed = [(c, i) for c in CLAIMS for i, r in enumerate(fail[c.id]) if r["as_expected"] is False]
    assert any(not c.control for c, _ in missed) and any(c.control for c, _ in missed)
    for c, i in missed:
        assert fail[c.id][i]["outcome"] == "failed"
        assert xfail[c.id][i]["outcome"] == ("failed" if c.control else "xfailed")
    for c in CLAIMS:  # only the outcome of a missed cell differs between the modes
        for a, b in zip(fail[c.id], xfail[c.id]):
            if a["as_expected"] is not False:
                assert a == b
    with pytest.raises(ValueError, match="not_reproduced='skip' is not allowed: use 'fail' or 'xfail'"):
        verdicts_from_cache(contradicted, "skip")


def test_claim_status_is_reproduced_only_when_every_cell_is_supported(results):
    c1 = get_claim("C1-PR")
    rows = verdicts_from_cache(results)["C1-PR"]
    n = len(rows)
    status = claim_status(c1, rows)
    assert status["status"] == status["label"] == "reproduced" and status["as_expected"] == status["cells"] == n
    assert status["counts"] == {"supported": n} and status["counts_text"] == f"{n} supported"
    assert status["key_number"].startswith("lower bound")
    mixed = _with(_with(_with(rows, 0, "inconclusive"), 1, "contradicted"), 2, "inconclusive")
    s = claim_status(c1, mixed)
    assert s["status"] == "contradicted" and s["as_expected"] == n - 3
    assert s["counts_text"] == f"{n - 3} supported, 1 contradicted, 2 inconclusive"
    assert claim_status(c1, _with(rows, 0, "inconclusive"))["status"] == "inconclusive"
    not_judged = claim_status(c1, _with(rows, 0, None, outcome="error"))
    assert not_judged["status"] == "inconclusive" and not_judged["counts_text"] == f"{n - 1} supported, 1 not judged"
    not_run = [{**r, "verdict": None, "as_expected": None} for r in rows]
    assert claim_status(c1, not_run) == {"status": "not run", "label": "not run", "cells": n, "judged": 0,
                                         "as_expected": 0, "counts": {"not judged": n},
                                         "counts_text": f"{n} not judged", "key_number": ""}


def test_control_status_says_no_shows_kag_or_is_invalid(results):
    n1 = get_claim("N1")
    rows = verdicts_from_cache(results)["N1"]
    n = len(rows)
    says_no = claim_status(n1, rows)
    assert (says_no["status"], says_no["label"]) == ("reproduced", "the control says no")
    assert says_no["counts_text"] == f"{n} inconclusive" and says_no["as_expected"] == n
    shows = claim_status(n1, _with(rows, 3, "supported", as_expected=False))
    assert (shows["status"], shows["label"]) == ("contradicted", f"the control shows KAG in 1 of {n} cells")
    invalid = _with(_with(rows, 0, "invalid", as_expected=False, problems=["NaN in PR ratio (null) at seed 1"]),
                    1, "supported", as_expected=False)
    s = claim_status(n1, invalid)
    assert s["status"] == "inconclusive"
    assert s["label"] == f"invalid: NaN in PR ratio (null) at seed 1 (cell {rows[0]['cell']})"
    assert s["counts"] == {"supported": 1, "inconclusive": n - 2, "invalid": 1}
    partial = claim_status(n1, _with(rows, 0, None))
    assert partial["status"] == "inconclusive" and partial["label"] == f"inconclusive: 1 of {n} cells not judged"


@pytest.mark.parametrize(("world", "status", "word"), [(anti_kag, "contradicted", "contradicted"),
                                                        (noisy, "inconclusive", "inconclusive")])
def test_summary_statuses_and_counts_follow_the_verdicts(world, status, word):
    fake = FakeResults(SMOKE, world)
    data = assemble(fake, verdicts_from_cache(fake), fake.available())
    for s in data["summary"]:
        assert s["status"] in STATUSES
        if s["id"] in ("C9", "C2-depth", "FM1"):  # paper only; 3+ hidden layers; xor3d only (smoke is mnist-mlp)
            assert s["status"] == "not run" and s["counts"] == {"not judged": s["n_cells"]}
        elif s["id"] == "N1":
            assert (s["status"], s["label"]) == ("reproduced", "the control says no") and s["control"]
        else:
            assert (s["status"], s["label"]) == (status, status), s["id"]
            assert s["counts"] == {word: s["n_cells"]} and s["counts_text"] == f"{s['n_cells']} {word}"
    rows = [r for c in data["criteria"] if c["id"] not in ("C9", "C2-depth", "FM1", "N1") for r in c["cells"]]
    assert {r["outcome"] for r in rows} == {"failed"} and {r["verdict"] for r in rows} == {word}


def test_counts_text_lists_the_verdicts_in_order():
    assert counts_text({"supported": 20, "contradicted": 1, "inconclusive": 3}) == \
        "20 supported, 1 contradicted, 3 inconclusive"


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
    assert {s["id"]: s["label"] for s in data["summary"]}["N1"] == "the control says no"
    assert data["table"] == {"file": "table.csv", "schema": TABLE_VERSION, "rows": len(table)}
    assert data["provenance"]["profile"] == "smoke" and data["provenance"]["cache"]["models"] == []
    out = render(data, tmp_path, table)
    saved = json.loads((out / "results.json").read_text())
    assert saved["criteria"][0]["id"] == "C1-PR" and saved["criteria"][0]["rule"].startswith("lower bound")
    assert saved["summary"][0]["counts_text"] == f"{saved['summary'][0]['n_cells']} supported"
    assert saved["criteria"][0]["cells"][0]["verdict"] == "supported"
    md, html = (out / "README.md").read_text(), (out / "index.html").read_text()
    assert "| Claim | Statement | Status | Robustness | Cells | Key number |" in md
    assert "**the control says no**" in md and "std 0.001, measurement SE 0.02" in md
    assert not any(ch in md + html for ch in "✅❌❔⚪➖"), "status marks must not need an emoji font"
    assert '<span class="verdict supported">12 supported</span>' in html and '<section class="control">' in html
    with open(out / "table.csv") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == (*COLUMNS, "variant") and len(rows) == len(table) + 1
    assert {row[-1] for row in rows[1:]} == {"primary"}  # the fake measures no variant rows


def test_quick_cells_cover_every_registered_claim():
    assert all(c.cells(QUICK) for c in CLAIMS)


def test_the_report_names_the_commit_its_run_started_from(monkeypatch):
    # A commit made while a two-hour run works is not the code that produced its numbers: pytest's
    # claims run records the commit at its start and passes it; a re-render from the cache records now's.
    import sys

    assembly = sys.modules["kag.repro.report.assemble"]  # the package's `assemble` is the function
    fake = FakeResults(SMOKE, kag_like)
    monkeypatch.setattr(assembly, "git_state", lambda: {"commit": "later", "dirty": False})
    started = {"commit": "at-start", "dirty": True}
    assert assemble(fake, verdicts_from_cache(fake), fake.available(), git=started)["provenance"]["git"] == started
    assert assemble(fake, verdicts_from_cache(fake), fake.available())["provenance"]["git"]["commit"] == "later"
