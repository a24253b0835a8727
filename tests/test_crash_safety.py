"""``kill -9`` while training and while writing entries, repeated: the store never holds a broken
entry, a finished entry is never redone, and ``verify --repair`` leaves it clean.

Two kinds of death: at random moments of a whole run (spread over its measured duration), and
exactly inside the writes (the child kills itself with SIGKILL in the middle of writing the weights,
and between writing a temporary and renaming it into place), where a crash could do harm.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kag.experiments.store import Store

TRAIN = ["train", "--width", "8", "16", "--seeds", "0", "1", "--epochs", "2", "--profile", "smoke", "--device", "cpu"]
METRICS = ["metrics", "--width", "8", "--seeds", "0", "1", "--epochs", "2", "--profile", "smoke", "--device", "cpu"]
RANDOM_KILLS = 4  # per phase

# A child that runs the CLI but dies by SIGKILL at a chosen point of a write (no cleanup can run).
_DIE_AT = r"""
import os, signal, sys
import kag.experiments.store as s
from kag.cli import main

def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)

where = sys.argv[1]
if where == "weights":  # half the weights written, then death
    def half(path, data):
        open(path, "wb").write(data[: len(data) // 2])
        die()
    s.write_file = half
elif where == "rename":  # a whole temporary of an entry written, death before it is renamed into place
    replace = os.replace  # (a training's progress record, written on the way, is renamed as usual)
    s.os.replace = lambda src, dst, *a, **k: replace(src, dst) if os.sep + "training" + os.sep in str(dst) else die()
sys.exit(main(sys.argv[2:]))
"""


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "KAG_HOME": str(home), "OMP_NUM_THREADS": "1"}


def _kag(argv: list[str], home: Path, die_at: str | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-c", _DIE_AT, die_at, *argv] if die_at else [sys.executable, "-m", "kag", *argv]
    return subprocess.Popen(cmd, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finished(store: Store) -> dict[str, float]:
    """Every whole entry and when it was written."""
    out = {}
    for key in store.keys():
        if store.has_model(key):
            out[f"model {key}"] = store.read_manifest(key)["created"]
        if store.has_metrics(key):
            out[f"metrics {key}"] = store.load_metrics(key)["created"]
    return out


def _check_after_death(store: Store, seen: dict[str, float]) -> list:
    """Only temporaries and the dead training's progress record may be left behind; no finished entry
    changed. Returns the temporaries."""
    problems = store.problems()  # the dead child owned every temporary and record: each one is an orphan
    left = [p for p in problems if p.path.parent.name != "training" or p.path.name.startswith(".tmp-")]
    assert all(p.path.name.startswith(".tmp-") for p in left), [str(p) for p in problems]
    assert all("which has ended" in p.reason for p in problems if p not in left), [str(p) for p in problems]
    problems = [p for p in problems if p.path.name.startswith(".tmp-")]
    now = _finished(store)
    assert all(now.get(entry) == created for entry, created in seen.items()), "a finished entry was redone"
    seen.update(now)
    return problems


@pytest.mark.xdist_group("crash")
@pytest.mark.slow
def test_kill_minus_9_while_training_and_measuring_never_breaks_the_store(tmp_path, mnist):
    rng = random.Random(20261129)
    home, seen, temporaries = tmp_path / "home", {}, 0
    store = Store(home / "store")
    for argv in (TRAIN, METRICS):
        t0 = time.perf_counter()  # the phase's duration, on a scratch home, spreads the random kills over it
        assert _kag(argv, tmp_path / f"scratch-{argv[0]}").wait(timeout=300) == 0
        duration = time.perf_counter() - t0
        for die_at in ("weights", "rename") if argv is TRAIN else ("rename",):
            proc = _kag(argv, home, die_at)
            assert proc.wait(timeout=300) == -signal.SIGKILL, proc.stderr.read()
            temporaries += len(_check_after_death(store, seen))
        for _ in range(RANDOM_KILLS):
            proc = _kag(argv, home)
            time.sleep(rng.uniform(0.2, 1.0) * duration)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            temporaries += len(_check_after_death(store, seen))
        done = _kag(argv, home)
        _, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
        _check_after_death(store, seen)
    assert temporaries >= 3  # the deaths inside writes did leave temporaries behind
    assert sum(e.startswith("model") for e in seen) == 4 and sum(e.startswith("metrics") for e in seen) == 2
    events = [json.loads(line) for line in (home / "store" / "events.jsonl").read_text().splitlines()]
    trained = [(e["width"], e["regime"], s) for e in events if e["kind"] == "train" for s in e["seeds"]]
    assert len(trained) == len(set(trained)), f"a model was trained twice: {trained}"
    assert all(p.path.name.startswith(".tmp-") for p in store.repair())
    assert store.problems() == [] and not list(store.models_dir.glob(".tmp-*"))
