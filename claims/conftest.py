"""The pytest layer of the reproduction: profile selection, one test per (claim, cell), shared
results, and the report. The claims themselves live in :mod:`kag.repro.claims`.

* ``--kag-profile`` / ``KAG_PROFILE`` pick the profile; ``test_claim`` is parametrized over every
  registered claim and its cells under that profile (ids such as ``C5-standard-L1-k=2-n=512``;
  ``-k "C5 and n=512"`` works).
* The session fixture ``results`` first runs :func:`kag.repro.results.prepare` over the groups the
  selected tests need, each xdist worker starting at a different group, so models and metric
  tables are computed once (store locks) and workers are not idle while one trains everything.
* Each test records its verdict; the controlling process (not the workers) writes the report.
  Run state lives in ``config.stash``.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest

from kag.repro.claims import CLAIMS, Cell, Claim
from kag.repro.profiles import Profile, get_profile

PROFILE = pytest.StashKey[Profile]()
OUTCOMES = pytest.StashKey[dict]()  # (claim id, cell id) -> {"outcome", "verdict", "message"}
START = pytest.StashKey[float]()
CELL_PROPERTY = "kag_cell"
VERDICT_PROPERTY = "kag_verdict"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # `-k "C5 and n=512"`: pytest's -k grammar has no '=', so match "n:512" (an extra keyword of each item).
    keyword = config.option.keyword
    if keyword and "=" in keyword:
        config.option.keyword = re.sub(r"(\w+)=([\w.]+)", r"\1:\2", keyword)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:  # share the cores instead of oversubscribing them
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    try:
        config.stash[PROFILE] = get_profile(config.getoption("kag_profile"), device=config.getoption("kag_device"))
    except ValueError as exc:  # a bad --kag-profile/--kag-device: one line, no traceback
        raise pytest.UsageError(str(exc)) from None
    config.stash[OUTCOMES] = {}
    config.stash[START] = time.time()
    config.pluginmanager.register(_VerdictCollector(config), "kag-verdicts")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not {"claim", "cell"} <= set(metafunc.fixturenames):
        return
    profile = metafunc.config.stash[PROFILE]
    params = []
    for claim in CLAIMS:
        for cell in claim.cells(profile):
            marks = []
            if not claim.judged_under(profile):
                marks.append(pytest.mark.skip(reason=f"{claim.id} is judged under the {', '.join(claim.profiles)} "
                                                     "profile only"))
            elif profile.name in claim.xfail:
                marks.append(pytest.mark.xfail(reason=claim.xfail[profile.name], strict=True))
            params.append(pytest.param(claim, cell, id=f"{claim.id}-{cell.id}", marks=marks))
    metafunc.parametrize(("claim", "cell"), params)


def _claim_cell(item: pytest.Item) -> tuple[Claim, Cell] | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return (params["claim"], params["cell"]) if "cell" in params else None


@pytest.hookimpl(tryfirst=True)  # before -k deselection reads the keywords
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        found = _claim_cell(item)
        if found is not None:
            claim, cell = found
            item.extra_keyword_matches.update(part.replace("=", ":") for part in cell.id.split("-") if "=" in part)
            item.user_properties.append((CELL_PROPERTY, (claim.id, cell.id)))  # travels with every report


def _groups_to_prepare(items: list[pytest.Item], profile: Profile) -> list:
    """The metric-table groups that the selected, not-skipped tests read, largest width first."""
    groups: list = []
    for item in items:
        found = _claim_cell(item)
        if found is not None and not any(m.name == "skip" for m in item.iter_markers()):
            claim, cell = found
            groups.extend(g for g in claim.needs(cell, profile) if g not in groups)
    return sorted(groups, key=lambda g: (-g.width, g.eval_images != "clean"))


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest):
    """All metric tables of the profile; computes (and trains) what the selected tests need, once."""
    from kag.repro.results import Results, prepare

    config = request.config
    res = Results(config.stash[PROFILE], device=config.getoption("kag_device"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    start = int(worker[2:]) if worker[2:].isdigit() else 0
    prepare(res, groups=_groups_to_prepare(request.session.items, res.profile), start=start)
    return res


@pytest.fixture
def record_verdict(record_property):
    def record(verdict) -> None:
        record_property(VERDICT_PROPERTY, verdict.to_dict())

    return record


class _VerdictCollector:
    """Collects outcomes and verdicts into ``config.stash`` (on the controller, they arrive from the
    xdist workers), and has the controller write the report at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if CELL_PROPERTY not in props:
            return
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            outcome = report.outcome
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.outcome == "skipped" else "xpassed"
            self.config.stash[OUTCOMES][tuple(props[CELL_PROPERTY])] = {
                "outcome": outcome, "verdict": props.get(VERDICT_PROPERTY),
                "message": str(report.longrepr)[:2000] if report.failed else ""}

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = self.config
        outcomes = config.stash[OUTCOMES]
        if _is_worker(config) or config.getoption("kag_no_report") or not outcomes or config.option.collectonly:
            return
        from kag.repro.report import write_report

        profile, start = config.stash[PROFILE], config.stash[START]
        out = write_report(profile, outcomes=outcomes, out_dir=config.getoption("kag_report_dir"),
                           device=config.getoption("kag_device"), session_seconds=time.time() - start)
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.ensure_newline()
            tr.write_line(f"[kag] {_run_summary(start, time.time() - start)}")
            tr.write_line(f"[kag] reproduction report ({profile.name} profile): {out}")


def _run_summary(start: float, seconds: float) -> str:
    """What this run trained and computed (from the store's event log), and how long it took."""
    from kag.store import Store

    events: list[dict[str, Any]] = [e for e in Store().events() if e["time"] >= start]
    trained = [e for e in events if e["kind"] == "train"]
    tables = [e for e in events if e["kind"] == "metrics"]
    return (f"this run: trained {sum(len(e['seeds']) for e in trained)} models in {len(trained)} batched groups "
            f"({sum(e['seconds'] for e in trained):.0f} s), computed {len(tables)} metric tables "
            f"({sum(e['seconds'] for e in tables):.0f} s); everything else came from the store; "
            f"wall time {seconds:.0f} s")
