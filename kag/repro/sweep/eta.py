"""How long a sweep's unfinished tasks will take: each task priced by what work like it took.

A sweep's tasks differ by two orders of magnitude (a 20-epoch width-64 training takes a minute on a
CPU core, a 200-epoch width-512 one an hour; a width-512 metric table takes minutes), so an ETA
from the count of finished tasks (elapsed / done x left) misleads in both directions. Here every
unfinished task is priced by its own class, from the store's event log and its running trainings:

* a training of width ``w`` and regime ``r``: seconds per epoch and seed of trainings of that
  class (finished ones, else the pace a running one reports), times its epochs and seeds; a
  training that is running is priced by what its own pace says is left;
* a metric task: seconds per table of that class and kind (what the tables measure, at which
  sizes: :func:`kag.experiments.analysis.table_kind`, recorded in each event), times its tables;
  a table of a kind never timed is not priced from tables of another kind.

Work finished since the run began is preferred (the machine as it is now); the store's older events
stand in for a class this run has not timed yet. The sum is divided by the workers sharing the
work, and never shorter than the longest single task. A task of a class never timed is not guessed:
the text says how many such tasks are left, and the time given is then a floor.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from kag.progress import epoch_seconds, finite_number, format_duration

Class = tuple[int, str]  # (width, regime)
TableClass = tuple[int, str, Any]  # (width, regime, table kind; None in events written before kinds were recorded)


@dataclass
class Pace:
    """Seconds per epoch and seed of a training by (width, regime), and per metric table by (width,
    regime, table kind)."""

    train: dict[Class, float] = field(default_factory=dict)
    table: dict[TableClass, float] = field(default_factory=dict)


def _mean_rates(events: Iterable[Mapping[str, Any]]) -> Pace:
    """The pace of finished work in ``events`` (the store's ``events.jsonl`` lines)."""
    train_s, train_units = defaultdict(float), defaultdict(float)
    table_s, tables = defaultdict(float), defaultdict(int)
    for e in events:
        width, regime, seconds = e.get("width"), e.get("regime"), e.get("seconds")
        if not (isinstance(width, int) and isinstance(regime, str) and finite_number(seconds) and seconds > 0):
            continue
        if e.get("kind") == "train" and finite_number(e.get("epochs")) and isinstance(e.get("seeds"), list):
            epochs = e["epochs"]
            if finite_number(e.get("epochs_run")) and finite_number(e.get("seconds_run")) and e["seconds_run"] > 0:
                epochs, seconds = e["epochs_run"], e["seconds_run"]  # a resumed training: this process's part
            units = epochs * max(1, len(e["seeds"]))
            if units > 0:
                train_s[width, regime] += seconds
                train_units[width, regime] += units
        elif e.get("kind") == "metrics":
            kind = e.get("table_kind") if isinstance(e.get("table_kind"), str) else None
            table_s[width, regime, kind] += seconds
            tables[width, regime, kind] += 1
    return Pace({c: train_s[c] / train_units[c] for c in train_s},
                {c: table_s[c] / tables[c] for c in table_s})


def _running_rates(trainings: Iterable[Mapping[str, Any]]) -> dict[Class, float]:
    """Seconds per epoch and seed that running trainings report (their records in ``store.trainings()``),
    at the pace of the process running each (:func:`kag.progress.epoch_seconds`)."""
    rates: dict[Class, float] = {}
    for r in trainings:
        width, regime, pace = r.get("width"), r.get("regime"), epoch_seconds(r)
        seeds = r.get("seeds") if isinstance(r.get("seeds"), list) else [0]
        if isinstance(width, int) and isinstance(regime, str) and pace is not None:
            rates[width, regime] = pace / max(1, len(seeds))
    return rates


def pace(events: Sequence[Mapping[str, Any]], trainings: Sequence[Mapping[str, Any]], since: float) -> Pace:
    """The pace of each class: this run's finished work (events at or after ``since``), else the pace
    a running training reports, else the store's older events."""
    now = _mean_rates(e for e in events if finite_number(e.get("time")) and e["time"] >= since)
    before = _mean_rates(e for e in events if finite_number(e.get("time")) and e["time"] < since)
    running = _running_rates(trainings)
    return Pace({**before.train, **running, **now.train}, {**before.table, **now.table})


def _running_left(task: Any, trainings: Sequence[Mapping[str, Any]]) -> float | None:
    """What a running training of ``task`` says is left (seconds), or None when none runs."""
    for r in trainings:
        epoch, epochs, pace = r.get("epoch"), r.get("epochs"), epoch_seconds(r)
        if (r.get("width"), r.get("regime")) == (task.width, task.regime) \
                and list(r.get("seeds") or []) == list(task.seeds) and epochs == task.train.epochs \
                and pace is not None and 0 < epoch <= epochs:
            return pace * (epochs - epoch)
    return None


def task_seconds(task: Any, rates: Pace, trainings: Sequence[Mapping[str, Any]] = ()) -> float:
    """The seconds ``task`` (a :class:`~kag.repro.sweep.engine.Task`) has left; NaN when its class was never timed."""
    if task.kind == "train":
        left = _running_left(task, trainings)
        if left is not None:
            return left
        rate = rates.train.get((task.width, task.regime))
        return rate * task.train.epochs * max(1, len(task.seeds)) if rate is not None else math.nan
    rate = rates.table.get((task.width, task.regime, task.table_kind))
    return rate * len(task.keys) if rate is not None else math.nan


def seconds_left(tasks: Sequence[Any], rates: Pace, workers: int,
                 trainings: Sequence[Mapping[str, Any]] = ()) -> tuple[float, int]:
    """(wall seconds the timed ``tasks`` need on ``workers`` processes, how many tasks were never timed)."""
    each = [task_seconds(t, rates, trainings) for t in tasks]
    timed = [s for s in each if math.isfinite(s)]
    wall = max(sum(timed) / max(1, workers), max(timed, default=0.0))
    return wall, len(each) - len(timed)


def eta_text(tasks: Sequence[Any], rates: Pace, workers: int, trainings: Sequence[Mapping[str, Any]] = ()) -> str:
    """``~1 h 05 min left``; ``at least ~40 min left (3 tasks of a kind not yet timed)``; or, while the
    timed tasks leave under a second, ``time left: estimated once a task of each kind has run (8 tasks
    not yet timed)``."""
    if not tasks:
        return "nothing left"
    wall, untimed = seconds_left(tasks, rates, workers, trainings)
    plural = "s" if untimed > 1 else ""
    if untimed and wall < 1.0:  # nothing timed, or only a floor too small to be worth saying
        return f"time left: estimated once a task of each kind has run ({untimed} task{plural} not yet timed)"
    if untimed:
        return f"at least ~{format_duration(wall)} left ({untimed} task{plural} of a kind not yet timed)"
    return f"~{format_duration(wall)} left"


def compute_text(tasks: Sequence[Any], events: Sequence[Mapping[str, Any]]) -> str:
    """What ``tasks`` (the uncached ones of a plan) will cost at the pace the store's event log records,
    in worker time, for ``kag sweep --dry-run``: ``~5 h 24 min of one worker at the pace this store
    recorded``, naming the tasks of a kind it never timed (not counted)."""
    if not tasks:
        return "nothing left to compute"
    total, untimed = seconds_left(tasks, pace(events, [], since=math.inf), workers=1)
    plural = "s" if untimed > 1 else ""
    if untimed == len(tasks):
        return "compute left: unknown (this store has timed no task of these kinds yet)"
    said = f"compute left: ~{format_duration(total)} of one worker at the pace this store recorded"
    return said + (f" ({untimed} task{plural} of a kind it never timed not counted)" if untimed else "")
