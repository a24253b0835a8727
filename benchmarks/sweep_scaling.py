"""How the sweep engine scales with Dask workers: one grid on 1 worker, then on 2.

Each run starts an embedded ``LocalCluster`` (single-threaded worker processes, as ``kag sweep``
does) on a fresh, empty ``KAG_HOME``, so every model is trained and every table computed. The
cluster's start-up (spawning workers, importing torch and kag, reading MNIST in each) is timed apart
from the sweep itself.

    python benchmarks/sweep_scaling.py [--grid sweeps/smoke.toml] [--workers 1 2]

The last line printed is ``ratio <sweep time on the fewest workers / on the most>`` (goal: >= 1.7
for 1 vs 2 workers on 2 CPU cores; the smoke grid has 4 training and 6 metric tasks, and a metric
task waits for its training task, so the ratio is bounded by the critical path as well as the cores).
Run it on an otherwise idle machine: on a busy one the workers share their cores and the ratio means little.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _warm() -> bool:
    """Import torch and kag and read MNIST in a worker: start-up cost, not sweep cost."""
    from kag.repro.sweep import engine

    engine._mnist()
    return True


def one_run(grid_path: Path, workers: int) -> tuple[float, float, str]:
    """(cluster start-up seconds, sweep seconds, summary) on a fresh store with ``workers`` workers."""
    from distributed import Client

    from kag.repro.sweep import engine, load_grid
    from kag.store import Store

    with tempfile.TemporaryDirectory(prefix="kag-sweep-bench-") as home:
        os.environ["KAG_HOME"] = home  # the workers inherit it
        t0 = time.perf_counter()
        cluster = engine.local_cluster(workers=workers, device="cpu")
        try:
            with Client(cluster) as client:
                client.wait_for_workers(workers)
                client.run(_warm)
                started = time.perf_counter() - t0
                t1 = time.perf_counter()
                run = engine.run_sweep(load_grid(grid_path), client=client, store=Store(Path(home) / "store"))
                seconds = time.perf_counter() - t1
        finally:
            cluster.close()
    if run.failed:
        raise SystemExit(f"{len(run.failed)} tasks failed: {next(iter(run.failed.values()))}")
    return started, seconds, str(run.summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=ROOT / "sweeps" / "smoke.toml")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    os.environ.setdefault("KAG_QUIET", "1")
    times = {}
    for n in args.workers:
        started, seconds, summary = one_run(args.grid, n)
        times[n] = seconds
        print(f"{n} worker{'s' if n > 1 else ''}: sweep {seconds:.1f} s (cluster start-up {started:.1f} s); {summary}",
              flush=True)
    fewest, most = min(times), max(times)
    print(f"ratio {times[fewest] / times[most]:.2f}")


if __name__ == "__main__":
    main()
