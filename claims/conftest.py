"""The claims suite's machinery: profile selection, cells, shared results, the report.

* ``--kag-profile`` / ``KAG_PROFILE`` pick the profile; every claim test is parametrized over the
  cells of that profile (ids such as ``n=256-k=3-L1``; ``-k "C5 and n=512"`` works).
* The session fixture ``results`` first runs :func:`kag.results.prepare` over the groups the
  selected tests need, each xdist worker starting at a different group, so models and metric
  tables are computed once (store locks) and workers are not idle while one trains everything.
* Each test records its verdict; the controlling process (not the workers) writes the report.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from claims.criteria import BY_ID
from claims.judge import cells, needs

_START = time.time()
_CONFIG: dict = {}  # the active config, for hooks that are not handed one


def _profile(config):
    from kag.profiles import get_profile

    return get_profile(config.getoption("kag_profile"), device=config.getoption("kag_device"))


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config) -> None:
    # `-k "C5 and n=512"`: pytest's -k grammar has no '=', so match "n:512" (an extra keyword of each item).
    keyword = config.option.keyword
    if keyword and "=" in keyword:
        config.option.keyword = re.sub(r"(\w+)=([\w.]+)", r"\1:\2", keyword)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:  # share the cores instead of oversubscribing them
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    try:
        _profile(config)
    except ValueError as exc:  # a bad --kag-profile/--kag-device: one line, no traceback
        raise pytest.UsageError(str(exc)) from None
    config._kag_outcomes = {}
    _CONFIG["config"] = config


def pytest_generate_tests(metafunc) -> None:
    cid = getattr(metafunc.function, "kag_criterion", None)
    if cid is None or "cell" not in metafunc.fixturenames:
        return
    profile = _profile(metafunc.config)
    crit = BY_ID[cid]
    params = []
    for cell in cells(crit, profile):
        marks = []
        if profile.name not in crit.profiles:
            marks.append(pytest.mark.skip(reason=f"{cid} is judged under the {', '.join(crit.profiles)} profile only"))
        elif profile.name in crit.xfail:
            marks.append(pytest.mark.xfail(reason=crit.xfail[profile.name], strict=True))
        params.append(pytest.param(cell, id=cell.id, marks=marks))
    metafunc.parametrize("cell", params)


@pytest.hookimpl(tryfirst=True)  # before -k deselection reads the keywords
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        cell = _cell(item)
        if cell is not None:
            item.extra_keyword_matches.update(part.replace("=", ":") for part in cell.id.split("-") if "=" in part)


def _cell(item):
    return getattr(getattr(item, "callspec", None), "params", {}).get("cell")


def _groups_to_prepare(items, profile) -> list[tuple[int, str, str]]:
    """The metric-table groups that the selected, not-skipped tests read."""
    groups: list[tuple[int, str, str]] = []
    for item in items:
        cell = _cell(item)
        if cell is not None and not any(m.name == "skip" for m in item.iter_markers()):
            groups.extend(g for g in needs(cell, profile) if g not in groups)
    return groups


@pytest.fixture(scope="session")
def results(request):
    """All metric tables of the profile; computes (and trains) what the selected tests need, once."""
    from kag.results import Group, Results, prepare

    config = request.config
    res = Results(_profile(config), device=config.getoption("kag_device"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    start = int(worker[2:]) if worker[2:].isdigit() else 0
    order = [Group(*g) for g in _groups_to_prepare(request.session.items, res.profile)]
    order.sort(key=lambda g: (-g.width, g.eval_images != "clean"))
    prepare(res, groups=order, start=start)
    return res


@pytest.fixture
def record_verdict(record_property):
    def record(verdict) -> None:
        record_property("kag_verdict", verdict.to_dict())

    return record


def pytest_runtest_logreport(report) -> None:
    """Collect verdicts and outcomes (on the controller, these arrive from the xdist workers)."""
    config = _CONFIG.get("config")
    if config is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        verdict = next((v for k, v in report.user_properties if k == "kag_verdict"), None)
        outcome = "xfailed" if hasattr(report, "wasxfail") and report.outcome == "skipped" else report.outcome
        if hasattr(report, "wasxfail") and report.outcome == "passed":
            outcome = "xpassed"
        config._kag_outcomes[report.nodeid] = {"outcome": outcome, "verdict": verdict,
                                               "message": str(report.longrepr)[:2000] if report.failed else ""}


def pytest_sessionfinish(session, exitstatus) -> None:
    config = session.config
    if _is_worker(config) or config.getoption("kag_no_report") or not config._kag_outcomes:
        return
    if config.option.collectonly:
        return
    from kag.report import write_report

    profile = _profile(config)
    out = write_report(profile, outcomes=config._kag_outcomes, out_dir=config.getoption("kag_report_dir"),
                       device=config.getoption("kag_device"), session_seconds=time.time() - _START)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.ensure_newline()
        tr.write_line(f"[kag] {_run_summary(time.time() - _START)}")
        tr.write_line(f"[kag] reproduction report ({profile.name} profile): {out}")


def _run_summary(seconds: float) -> str:
    """What this run trained and computed (from the store's event log), and how long it took."""
    from kag.store import Store

    events = [e for e in Store().events() if e["time"] >= _START]
    trained = [e for e in events if e["kind"] == "train"]
    tables = [e for e in events if e["kind"] == "metrics"]
    return (f"this run: trained {sum(len(e['seeds']) for e in trained)} models in {len(trained)} batched groups "
            f"({sum(e['seconds'] for e in trained):.0f} s), computed {len(tables)} metric tables "
            f"({sum(e['seconds'] for e in tables):.0f} s); everything else came from the store; "
            f"wall time {seconds:.0f} s")
