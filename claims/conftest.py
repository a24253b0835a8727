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
* The terminal: while models are trained and tables computed, the controlling process prints
  ``[kag] progress: models trained i/N (training width 512 standard: epoch e/E), metric tables
  computed j/M, ~T left`` lines (the running trainings record their epoch in the store). It knows what
  the selected cells need (their ids: from the collected items, or under xdist from the ids the
  workers report), looks up which of those models and tables the store lacks, and a
  :class:`kag.progress.WorkMonitor` thread polls the store for them (xdist captures the workers'
  own output, so they cannot print it). Without xdist the ``results`` fixture lets the terminal
  through while it computes. The run ends with the report's headline: the outcome, one line per
  claim (status, robustness, key number), what this run computed, and the report's path, as the
  last lines. A failing cell's message starts with what was expected and what was measured
  (:func:`kag.repro.report.words.failure_text`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import pytest

from kag.progress import WorkMonitor
from kag.repro.claims import CLAIMS
from kag.repro.criteria import Cell, Claim
from kag.repro.profiles import Profile, get_profile
from kag.repro.report.words import headline_lines

PROFILE = pytest.StashKey[Profile]()
OUTCOMES = pytest.StashKey[dict]()  # (claim id, cell id) -> {"outcome", "verdict", "message"}
START = pytest.StashKey[float]()
GIT = pytest.StashKey[dict]()  # the commit the run started from (a commit made while it runs is not its code)
MONITOR = pytest.StashKey["WorkMonitor | None"]()  # the controller's progress monitor, once started
REPORT = pytest.StashKey["Path | None"]()  # where the controller wrote the report
IN_PROCESS = pytest.StashKey[bool]()  # -n auto found everything cached and started no workers
CELL_PROPERTY = "kag_cell"
VERDICT_PROPERTY = "kag_verdict"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` with every model and metric table of the profile in the store runs in this process:
    starting workers (each imports torch and reloads the tables it judges) would cost more than the
    judging itself (a warm quick run: 16 s with 2 workers, 8 s in-process). None: xdist's default."""
    try:
        from kag.repro.results import groups_needed
        from kag.experiments.store import Store

        profile = get_profile(config.getoption("kag_profile"), device=config.getoption("kag_device"),
                              study=config.getoption("kag_study"))
        models, tables = _pending_work(profile, groups_needed(profile), Store())
    except Exception:  # noqa: BLE001 - a bad option or store is reported later, where it is used
        return None
    config.stash[IN_PROCESS] = not models and not tables
    return 0 if config.stash[IN_PROCESS] else None


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
        config.stash[PROFILE] = get_profile(config.getoption("kag_profile"), device=config.getoption("kag_device"),
                                            study=config.getoption("kag_study"))
    except ValueError as exc:  # a bad --kag-profile/--kag-device: one line, no traceback
        raise pytest.UsageError(str(exc)) from None
    if not _is_worker(config):  # a KAG_HOME that is a file or cannot be written: one line before any work
        from kag.experiments.paths import writable_store

        try:
            writable_store()
        except OSError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[OUTCOMES] = {}
    config.stash[START] = time.time()
    if not _is_worker(config):
        from kag.repro.report.assemble import git_state

        config.stash[GIT] = git_state()
    config.stash[MONITOR] = None
    config.stash[REPORT] = None
    config.pluginmanager.register(_RunReporter(config), "kag-verdicts")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not {"claim", "cell"} <= set(metafunc.fixturenames):
        return
    from kag.repro.studies import why_not_judged

    profile = metafunc.config.stash[PROFILE]
    params = []
    for claim in CLAIMS:
        for cell in claim.cells(profile):
            marks = []
            reason = why_not_judged(claim, profile)
            if reason is not None:
                marks.append(pytest.mark.skip(reason=reason))
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


def _groups_for(pairs: Iterable[tuple[Claim, Cell]], profile: Profile) -> list:
    """The metric-table groups that these (claim, cell) pairs read, largest width first."""
    groups: list = []
    for claim, cell in pairs:
        groups.extend(g for g in claim.needs(cell, profile) if g not in groups)
    return sorted(groups, key=lambda g: (-g.width, g.eval_images != "clean"))


def _selected(items: list[pytest.Item]) -> list[tuple[Claim, Cell]]:
    """The (claim, cell) of every selected, not-skipped test item."""
    return [found for item in items if (found := _claim_cell(item)) is not None
            and not any(m.name == "skip" for m in item.iter_markers())]


def _groups_to_prepare(items: list[pytest.Item], profile: Profile) -> list:
    """The metric-table groups that the selected, not-skipped tests read, largest width first."""
    return _groups_for(_selected(items), profile)


def _pairs_from_ids(ids: Iterable[str], profile: Profile) -> list[tuple[Claim, Cell]]:
    """The (claim, cell) of each test node id (``...::test_claim[C5-standard-L1-k=2-n=512]``) that
    is judged under ``profile`` (the rule that skips the others, so the progress counts only the work
    that runs): what an xdist worker's collection tells the controller."""
    from kag.repro.studies import why_not_judged

    by_id = {f"{c.id}-{cell.id}": (c, cell) for c in CLAIMS if why_not_judged(c, profile) is None
             for cell in c.cells(profile)}
    found = (re.search(r"\[(.*)\]$", i) for i in ids)
    return [by_id[m.group(1)] for m in found if m and m.group(1) in by_id]


def _pending_work(profile: Profile, groups: list, store: Any) -> tuple[set[str], set[str]]:
    """(model keys, metric-table keys) that ``groups`` need and ``store`` lacks (nothing is loaded)."""
    from kag.repro.results import needed_keys

    models, tables = needed_keys(profile, groups)
    return ({k for k in models if not store.has_model(k)}, {k for k in tables if not store.has_metrics(k)})


def _workers(config: pytest.Config) -> int:
    """How many processes share the work: the xdist workers, else 1."""
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) and n > 0 and config.pluginmanager.getplugin("dsession") else 1


def _start_monitor(config: pytest.Config, pairs: list[tuple[Claim, Cell]], xdist: bool) -> None:
    """Say what the selected cells need, and start polling the store for it (once per run)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if config.stash[MONITOR] is not None or tr is None or config.option.collectonly or not pairs:
        return
    from kag.experiments.store import Store

    profile, store = config.stash[PROFILE], Store()
    models, tables = _pending_work(profile, _groups_for(pairs, profile), store)
    lock = threading.Lock()
    quiet = os.environ.get("KAG_QUIET", "") not in ("", "0")

    def write(line: str) -> None:
        if not quiet:
            with lock:
                tr.write_line(line)

    claims = len({c.id for c, _ in pairs})
    if models or tables:
        head = (f"[kag] {profile.name} profile, {len(pairs)} cells of {claims} claims: {len(models)} models to train "
                f"and {len(tables)} metric tables to compute (the rest is in {store.root}); progress below")
    else:
        head = (f"[kag] {profile.name} profile, {len(pairs)} cells of {claims} claims: every model and metric table "
                f"is in {store.root}; judging only"
                + (", in this process (-n auto starts no workers for that)" if config.stash.get(IN_PROCESS, False)
                   else ""))
    dsession = config.pluginmanager.getplugin("dsession")
    # under xdist, the thread writes the header once xdist has printed its "N workers [M items]" line
    ready = (lambda: getattr(getattr(dsession, "sched", None), "collection_is_completed", True)) if xdist else None
    monitor = WorkMonitor(store, models, tables, write, workers=_workers(config), ready=ready,
                          header=head if xdist else None)
    config.stash[MONITOR] = monitor
    if not xdist:
        write(head)
        if monitor.pending:
            monitor.pause()  # until the results fixture lets the terminal through
    monitor.start()


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest):
    """All metric tables of the profile; computes (and trains) what the selected tests need, once.

    In a process that owns the terminal (no xdist), the terminal is let through while it computes,
    so the progress lines of training and metrics show."""
    from kag.repro.results import Results, prepare

    config = request.config
    res = Results(config.stash[PROFILE], device=config.getoption("kag_device"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    start = int(worker[2:]) if worker[2:].isdigit() else 0
    groups = _groups_to_prepare(request.session.items, res.profile)
    monitor = None if _is_worker(config) else config.stash[MONITOR]
    capman = config.pluginmanager.getplugin("capturemanager")
    visible = capman.global_and_fixture_disabled() if monitor is not None and capman else contextlib.nullcontext()
    with visible:
        if monitor is not None:
            tr = config.pluginmanager.get_plugin("terminalreporter")
            if tr is not None:
                tr.ensure_newline()
            monitor.resume()
        try:
            prepare(res, groups=groups, start=start)
        finally:
            if monitor is not None:
                monitor.finish()
    return res


@pytest.fixture
def record_verdict(record_property):
    def record(verdict) -> None:
        record_property(VERDICT_PROPERTY, verdict.to_dict())

    return record


class _RunReporter:
    """The controlling process's view of the run: it starts the progress monitor once it knows the
    selected cells, collects outcomes and verdicts into ``config.stash`` (under xdist they arrive
    from the workers), writes the report, and ends the terminal output with its headline."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not _is_worker(self.config):  # without xdist: this process collects, computes and reports
            _start_monitor(self.config, _selected(session.items), xdist=False)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under xdist, the controller learns the selected cells from the first worker's collection."""
        _start_monitor(self.config, _pairs_from_ids(ids, self.config.stash[PROFILE]), xdist=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if CELL_PROPERTY not in props:
            return
        monitor = self.config.stash[MONITOR]
        if monitor is not None and not _is_worker(self.config):
            monitor.finish()  # the first verdict: every table is computed (or the computing failed)
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            outcome = report.outcome
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.outcome == "skipped" else "xpassed"
            self.config.stash[OUTCOMES][tuple(props[CELL_PROPERTY])] = {
                "outcome": outcome, "verdict": props.get(VERDICT_PROPERTY),
                "message": str(report.longrepr)[:2000] if report.failed else ""}

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # the outermost wrapper: its end runs after pytest's summary
    def pytest_sessionfinish(self, session: pytest.Session):
        monitor = self.config.stash[MONITOR]
        if monitor is not None:
            monitor.finish()
        result = yield
        self._write_report()
        self._print_headline()
        return result

    def _write_report(self) -> None:
        config = self.config
        outcomes = config.stash[OUTCOMES]
        if _is_worker(config) or config.getoption("kag_no_report") or not outcomes or config.option.collectonly:
            return
        from kag.repro.report import write_report

        profile, start = config.stash[PROFILE], config.stash[START]
        config.stash[REPORT] = write_report(profile, outcomes=outcomes, out_dir=config.getoption("kag_report_dir"),
                                            device=config.getoption("kag_device"),
                                            session_seconds=time.time() - start, git=config.stash[GIT])

    def _print_headline(self) -> None:
        """The last lines of the run: the report's headline, what this run computed, the report's path."""
        config, out = self.config, self.config.stash[REPORT]
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is None or out is None:
            return
        profile, start = config.stash[PROFILE], config.stash[START]
        try:
            head = json.loads((Path(out) / "results.json").read_text()).get("headline") or {}
        except (OSError, ValueError):
            head = {}
        tr.ensure_newline()
        tr.write_sep("=", f"kag: reproduction of arXiv 2511.21626, {profile.name} profile")
        for line in headline_lines(head, config.stash[OUTCOMES]):
            tr.write_line(line)
        tr.write_line(f"[kag] {_run_summary(start, time.time() - start)}")
        tr.write_line(f"[kag] reproduction report ({profile.name} profile): {Path(out) / 'index.html'} "
                      f"(also README.md, results.json and table.csv in {out})")


def _run_summary(start: float, seconds: float) -> str:
    """What this run trained and computed (from the store's event log), and how long it took."""
    from kag.experiments.store import Store

    events: list[dict[str, Any]] = [e for e in Store().events() if e["time"] >= start]
    trained = [e for e in events if e["kind"] == "train"]
    tables = [e for e in events if e["kind"] == "metrics"]
    return (f"this run: trained {sum(len(e['seeds']) for e in trained)} models in {len(trained)} batched groups "
            f"({sum(e['seconds'] for e in trained):.0f} s), computed {len(tables)} metric tables "
            f"({sum(e['seconds'] for e in tables):.0f} s); everything else came from the store; "
            f"wall time {seconds:.0f} s")
