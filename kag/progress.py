"""Progress for long work: periodic lines on stderr (:class:`Progress`), and a monitor that watches a
store fill up (:class:`WorkMonitor`).

Plain lines rather than a redrawn bar: they survive pytest capture, xdist workers and CI logs.
``KAG_QUIET=1`` silences :class:`Progress`, except its warnings (:meth:`Progress.warn`).

:class:`WorkMonitor` is for a process that waits while others compute, as pytest-xdist's controller
does while its workers train models and compute metric tables: it polls the store for the entries
the run still lacks and, through a ``write`` callback, reports how many are done and an estimate
of the time left, from the seconds the finished ones took (the store's event log).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable


def quiet() -> bool:
    """Whether ``KAG_QUIET`` asks for no progress lines (any value but empty or ``0``)."""
    return os.environ.get("KAG_QUIET", "") not in ("", "0")


class Progress:
    """Print ``[kag] <task>: 3/10 epoch, <note> (12.3 s)`` at most every ``every`` seconds."""

    def __init__(self, task: str, total: int, unit: str = "step", every: float = 5.0) -> None:
        self.task, self.total, self.unit, self.every = task, total, unit, every
        self.start = self._last = time.perf_counter()
        self.quiet = quiet()

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(f"[kag] {self.task}: {text}", file=sys.stderr, flush=True)

    def update(self, done: int, note: str = "") -> None:
        now = time.perf_counter()
        if now - self._last >= self.every or done == self.total:
            self._last = now
            suffix = f", {note}" if note else ""
            self._print(f"{done}/{self.total} {self.unit}{suffix} ({now - self.start:.1f} s)")

    def done(self, summary: str) -> None:
        self._print(f"done: {summary}")

    def note(self, text: str) -> None:
        """One line about the task that is not a step of it (e.g. where it resumed from)."""
        self._print(text)

    def warn(self, text: str) -> None:
        """One line the user must see even under ``KAG_QUIET`` (e.g. a saved state thrown away)."""
        print(f"[kag] {self.task}: {text}", file=sys.stderr, flush=True)


def format_duration(seconds: float | None) -> str:
    """"12.3 s", "5 min 20 s", "2 h 05 min"; "n/a" for None or NaN."""
    if seconds is None or not math.isfinite(float(seconds)):
        return "n/a"
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(round(s % 60)):02d} s"
    return f"{int(s // 3600)} h {int(round(s % 3600 / 60)):02d} min"


def running_trainings(store: Any) -> list[dict[str, Any]]:
    """The trainings ``store`` says are running (:meth:`kag.experiments.store.Store.trainings`); [] when
    it cannot say."""
    try:
        return store.trainings() if hasattr(store, "trainings") else []
    except (OSError, ValueError):
        return []


def trainings_text(store: Any, running: list[dict[str, Any]] | None = None) -> str:
    """``training width 512 standard: epoch 37/200 (~1 h 05 min left), ...`` for the trainings running
    (``running``, else read from ``store`` by :func:`running_trainings`), so a long training shows how
    far it has come; "" when none runs or the store cannot say."""
    running = running_trainings(store) if running is None else running
    parts = [f"{r.get('label', 'a model')}: epoch {r.get('epoch')}/{r.get('epochs')}{_training_left(r)}"
             for r in running]
    return f"training {', '.join(parts)}" if parts else ""


def finite_number(value: Any) -> bool:
    """Whether ``value`` (read from a record or event that may be malformed) is a finite int or float."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def epoch_seconds(record: Any) -> float | None:
    """Seconds per epoch of a running training (its record in :meth:`kag.experiments.store.Store.trainings`)
    at its recent pace: from the epoch its record names (``since_epoch``, ``since_seconds``: one of the
    process running it, about ten minutes back), since a resumed training's earlier epochs may have run on
    another machine, and a machine's load changes; over all its epochs until it has a second one. None
    when it cannot say."""
    epoch, seconds = record.get("epoch"), record.get("seconds")
    if not (finite_number(epoch) and finite_number(seconds) and epoch > 0 and seconds > 0):
        return None
    since_epoch, since_seconds = record.get("since_epoch"), record.get("since_seconds")
    if finite_number(since_epoch) and finite_number(since_seconds) and 0 < since_epoch < epoch \
            and since_seconds < seconds:
        return (seconds - since_seconds) / (epoch - since_epoch)
    return seconds / epoch


def _training_left(record: Any) -> str:
    """`` (~1 h 05 min left)`` for a training record, at the pace of its epochs so far; "" when it cannot say."""
    epoch, epochs, pace = record.get("epoch"), record.get("epochs"), epoch_seconds(record)
    if pace is None or not (finite_number(epochs) and 0 < epoch < epochs):
        return ""
    return f" (~{format_duration(pace * (epochs - epoch))} left)"


class WorkMonitor:
    """Watch ``store`` until it holds the model keys ``models`` and metric-table keys ``tables``,
    writing ``[kag] progress: models trained 6/24 (training width 512 standard: epoch 37/200), metric
    tables computed 3/27, ~4 min 10 s left (elapsed 1 min 02 s)`` through ``write`` when a count
    changes, and at least every ``every`` seconds (the trainings in parentheses are those the store
    says are running, :meth:`kag.experiments.store.Store.trainings`).

    The estimate is the mean seconds per model and per table of the ones this run finished (the
    store's ``events.jsonl``), times what is left, divided by ``workers`` (the processes sharing
    the work). Until a model and a table have been timed, it says so instead of guessing.

    :meth:`start` runs the polling in a daemon thread; the thread first waits for ``ready()`` (e.g.
    until pytest-xdist has printed its collection line), then writes ``header`` if given, and writes
    nothing while :meth:`pause` holds. :meth:`finish`
    prints the final line once (from any thread) and stops the thread.
    """

    def __init__(self, store: Any, models: Iterable[str], tables: Iterable[str], write: Callable[[str], None],
                 *, workers: int = 1, every: float = 15.0, poll: float = 2.0,
                 ready: Callable[[], bool] | None = None, header: str | None = None) -> None:
        self.store, self.write = store, write
        self.models, self.tables = set(models), set(tables)
        self.workers, self.every, self.poll = max(1, int(workers)), every, poll
        self.ready = ready or (lambda: True)
        self.header = header
        self.start_time = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None

    # -- what is done, and how long the rest will take ------------------------------------------
    @property
    def pending(self) -> bool:
        return bool(self.models or self.tables)

    def counts(self) -> tuple[int, int]:
        """(models in the store, metric tables in the store), of those this run lacked at the start."""
        return (sum(self.store.has_model(k) for k in self.models),
                sum(self.store.has_metrics(k) for k in self.tables))

    def _unit_seconds(self) -> tuple[float, float]:
        """Mean seconds per model trained and per table computed by this run (NaN until one was)."""
        try:
            events = [e for e in self.store.events() if e.get("time", 0) >= self.start_time]
        except (OSError, ValueError):
            return math.nan, math.nan
        train = [e for e in events if e.get("kind") == "train"]
        tables = [e for e in events if e.get("kind") == "metrics" and e.get("key") in self.tables]
        n_models = sum(len(e.get("seeds") or []) for e in train)
        per_model = sum(e.get("seconds", 0.0) for e in train) / n_models if n_models else math.nan
        per_table = sum(e.get("seconds", 0.0) for e in tables) / len(tables) if tables else math.nan
        return per_model, per_table

    def _work_left(self, models_done: int, tables_done: int) -> list[tuple[str, str, int, float]]:
        """``(one, all of them, how many are left, seconds each or NaN)`` for each kind with work left."""
        kinds = (("a model", "the models", len(self.models) - models_done),
                 ("a table", "the tables", len(self.tables) - tables_done))
        return [(one, every, todo, each) for (one, every, todo), each in zip(kinds, self._unit_seconds()) if todo > 0]

    def seconds_left(self, models_done: int, tables_done: int) -> float:
        """The estimate of the wall time left (NaN when a kind with work left has not been timed yet)."""
        return self._seconds(self._work_left(models_done, tables_done))

    def _seconds(self, work: list[tuple[str, str, int, float]]) -> float:
        return sum(todo * each for _, _, todo, each in work) / self.workers

    def line(self) -> str:
        """One progress line."""
        m, t = self.counts()
        work = self._work_left(m, t)  # the event log read once per line
        left = self._seconds(work)
        if not work:
            eta = "done"
        elif math.isfinite(left):
            eta = f"~{format_duration(left)} left"
        else:  # name the kinds whose first one is awaited, and give a floor from the kind already timed
            eta = self._partial_eta(work)
        return (f"[kag] progress: models trained {m}/{len(self.models)}{self._training_now()}, metric tables "
                f"computed {t}/{len(self.tables)}, {eta} (elapsed {format_duration(time.time() - self.start_time)})")

    def _partial_eta(self, work: list[tuple[str, str, int, float]]) -> str:
        """The time-left words while a kind with work left (``work``, from :meth:`_work_left`) has not been
        timed yet: which first one is awaited, and, when the other kind has been timed, the floor its own
        work left sets (a resumed run that computes tables before it trains would otherwise say nothing
        for an hour)."""
        waiting = [one for one, _, _, each in work if not math.isfinite(each)]
        timed = [(every, todo * each) for _, every, todo, each in work if math.isfinite(each)]
        if not waiting:
            return "time left: unknown"
        verb = "are" if len(waiting) > 1 else "is"
        awaited = f"estimated once {' and '.join(waiting)} {verb} done"
        if timed:
            floor = sum(seconds for _, seconds in timed) / self.workers
            return f"time left: at least ~{format_duration(floor)} for {' and '.join(e for e, _ in timed)}, {awaited}"
        return f"time left: {awaited}"

    def _training_now(self) -> str:
        text = trainings_text(self.store)
        return f" ({text})" if text else ""

    # -- the thread -------------------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        with self._lock:
            if not self._finished:
                self.write(text)

    def _run(self) -> None:
        deadline = time.time() + 30.0
        while not self._stop.is_set() and not self.ready() and time.time() < deadline:
            self._stop.wait(0.2)
        if self.header and not self._stop.wait(0.5):  # let the terminal finish the line it is on
            self._emit(self.header)
        last_counts, last_time = None, 0.0
        while not self._stop.wait(self.poll):
            if self._paused.is_set():
                continue
            counts = self.counts()
            if counts == (len(self.models), len(self.tables)):
                self.finish()
                return
            if counts != last_counts or time.time() - last_time >= self.every:
                last_counts, last_time = counts, time.time()
                self._emit(self.line())

    def start(self) -> "WorkMonitor":
        """Poll in a daemon thread (when nothing is pending, it only writes the header)."""
        if not self.pending:
            if self.header and self._thread is None:
                self._thread = threading.Thread(target=self._header_only, name="kag-progress", daemon=True)
                self._thread.start()
            return self
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kag-progress", daemon=True)
            self._thread.start()
        return self

    def _header_only(self) -> None:
        deadline = time.time() + 30.0
        while not self._stop.is_set() and not self.ready() and time.time() < deadline:
            self._stop.wait(0.2)
        if not self._stop.wait(0.5):
            self._emit(self.header or "")

    def pause(self) -> None:
        """Write nothing until :meth:`resume` (e.g. while the terminal's output is captured)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def finish(self) -> None:
        """Write the final line (once, if anything was pending) and stop the thread."""
        self._stop.set()
        with self._lock:
            if self._finished:
                return
            if self.pending:
                m, t = self.counts()
                complete = m == len(self.models) and t == len(self.tables)
                self.write(f"[kag] progress: {'done: ' if complete else 'stopped: '}models trained {m}/"
                           f"{len(self.models)}, metric tables computed {t}/{len(self.tables)} in "
                           f"{format_duration(time.time() - self.start_time)}")
            self._finished = True
