"""The sweep's time-left estimate: every unfinished task priced by the work of its class (hand-made logs)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from kag.repro.sweep import eta


def task(kind: str, width: int, regime: str = "standard", epochs: int = 20, seeds=(0, 1, 2), tables: int = 3,
         table_kind: str = "quick"):
    return SimpleNamespace(kind=kind, width=width, regime=regime, seeds=tuple(seeds),
                           train=SimpleNamespace(epochs=epochs), keys=tuple(f"k{i}" for i in range(tables)),
                           table_kind=table_kind)


def train_event(width, regime, seconds, epochs=20, seeds=(0, 1, 2), time=100.0):
    return {"time": time, "kind": "train", "width": width, "regime": regime, "seeds": list(seeds),
            "epochs": epochs, "seconds": seconds}


def table_event(width, regime, seconds, time=100.0, table_kind="quick"):
    return {"time": time, "kind": "metrics", "width": width, "regime": regime, "seed": 0, "seconds": seconds,
            "table_kind": table_kind}


def test_each_task_is_priced_by_its_own_class():
    events = [train_event(512, "standard", 600.0), train_event(64, "standard", 60.0),
              table_event(512, "standard", 100.0), table_event(512, "standard", 140.0)]
    rates = eta.pace(events, [], since=0.0)
    assert rates.train[512, "standard"] == pytest.approx(600.0 / (20 * 3))
    assert rates.table[512, "standard", "quick"] == pytest.approx(120.0)
    # 200 epochs of the same class cost ten times the 20-epoch training; a table group costs its tables
    assert eta.task_seconds(task("train", 512, epochs=200), rates) == pytest.approx(6000.0)
    assert eta.task_seconds(task("train", 64, seeds=(0,)), rates) == pytest.approx(20.0)
    assert eta.task_seconds(task("metrics", 512, tables=3), rates) == pytest.approx(360.0)
    assert math.isnan(eta.task_seconds(task("metrics", 64), rates))  # never timed: not guessed


def test_the_wall_time_shares_the_work_but_never_undercuts_the_longest_task():
    rates = eta.Pace(train={(512, "standard"): 10.0, (64, "standard"): 1.0})
    long, short = task("train", 512, epochs=200, seeds=(0,)), task("train", 64, seeds=(0,))
    assert eta.seconds_left([long, short], rates, workers=2) == (pytest.approx(2000.0), 0)
    assert eta.seconds_left([short, short], rates, workers=2) == (pytest.approx(20.0), 0)
    assert eta.eta_text([long, short], rates, workers=2) == "~33 min 20 s left"


def test_this_runs_pace_comes_first_then_a_running_training_then_older_events():
    old, new = train_event(512, "standard", 6000.0, time=10.0), train_event(512, "standard", 600.0, time=100.0)
    assert eta.pace([old, new], [], since=50.0).train[512, "standard"] == pytest.approx(10.0)
    running = {"width": 512, "regime": "standard", "seeds": [0, 1, 2], "epoch": 5, "epochs": 200, "seconds": 300.0}
    assert eta.pace([old], [running], since=50.0).train[512, "standard"] == pytest.approx(20.0)
    assert eta.pace([old], [], since=50.0).train[512, "standard"] == pytest.approx(100.0)


def test_a_resumed_training_is_priced_by_what_this_process_did():
    """A training resumed at epoch 100 after a slow run: its event and its running record count only the
    epochs of the process that finished or runs it."""
    resumed = {**train_event(512, "standard", 8000.0, epochs=200, seeds=(0,)), "epochs_run": 100, "seconds_run": 1000.0}
    assert eta.pace([resumed], [], since=0.0).train[512, "standard"] == pytest.approx(10.0)
    running = {"width": 512, "regime": "standard", "seeds": [0], "epoch": 150, "epochs": 200, "seconds": 7500.0,
               "since_epoch": 101, "since_seconds": 7010.0}
    assert eta.pace([], [running], since=0.0).train[512, "standard"] == pytest.approx(10.0)
    assert eta.task_seconds(task("train", 512, epochs=200, seeds=(0,)), eta.Pace(), [running]) == pytest.approx(500.0)


def test_a_running_training_is_priced_by_what_its_own_pace_leaves():
    running = {"width": 512, "regime": "augmented", "seeds": [0, 1, 2], "epoch": 50, "epochs": 200, "seconds": 1000.0}
    t = task("train", 512, "augmented", epochs=200)
    assert eta.task_seconds(t, eta.Pace(), [running]) == pytest.approx(3000.0)
    other_seeds = task("train", 512, "augmented", epochs=200, seeds=(3, 4))
    assert eta.task_seconds(other_seeds, eta.pace([], [running], 0.0), [running]) == pytest.approx(20.0 / 3 * 400)


def test_untimed_work_is_named_not_guessed():
    rates = eta.Pace(table={(512, "standard", "quick"): 60.0})
    untimed = "time left: estimated once a task of each kind has run (1 task not yet timed)"
    assert eta.eta_text([task("train", 512)], rates, 2) == untimed
    finishing = {"width": 8, "regime": "standard", "seeds": [0], "epoch": 1, "epochs": 1, "seconds": 3.0}
    last_epoch = task("train", 8, epochs=1, seeds=(0,))  # a floor of 0 s says nothing: not given
    assert eta.eta_text([last_epoch, task("train", 512), task("train", 64)], rates, 2, [finishing]) == \
        "time left: estimated once a task of each kind has run (2 tasks not yet timed)"
    text = eta.eta_text([task("train", 512), task("metrics", 512)], rates, 2)
    assert text == "at least ~3 min 00 s left (1 task of a kind not yet timed)"
    assert eta.eta_text([], rates, 2) == "nothing left"


def test_a_table_is_priced_only_by_tables_of_its_kind():
    """A paper-size table costs tens of times a quick one of the same width: the kind (what is measured,
    at which sizes) is part of its class, and events from before kinds were recorded price no kind."""
    old = {k: v for k, v in table_event(512, "standard", 50.0).items() if k != "table_kind"}
    rates = eta.pace([table_event(512, "standard", 60.0), table_event(512, "standard", 1800.0, table_kind="paper"),
                      old], [], since=0.0)
    assert eta.task_seconds(task("metrics", 512, tables=5), rates) == pytest.approx(300.0)
    assert eta.task_seconds(task("metrics", 512, tables=5, table_kind="paper"), rates) == pytest.approx(9000.0)
    assert math.isnan(eta.task_seconds(task("metrics", 512, table_kind="smoke"), rates))
    assert math.isnan(eta.task_seconds(task("metrics", 512), eta.pace([old], [], since=0.0)))


def test_malformed_event_lines_are_ignored():
    events = [{"time": 1.0, "kind": "train"}, {"time": 1.0, "kind": "metrics", "width": "512", "seconds": 3},
              {"time": 1.0, "kind": "train", "width": 64, "regime": "standard", "seeds": [0], "epochs": 0,
               "seconds": 5.0}, {"kind": "metrics", "width": 64, "regime": "standard", "seconds": 1.0},
              table_event(64, "standard", float("nan")), table_event(64, "standard", True)]
    assert eta.pace(events, [{"width": 64}], since=0.0) == eta.Pace()
