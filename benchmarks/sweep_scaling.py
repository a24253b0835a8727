"""How the sweep engine scales with Dask workers: one grid on 1 worker, then on 2, repeated.

Each run starts an embedded ``LocalCluster`` (single-threaded worker processes, as ``kag sweep``
does) on a fresh, empty ``KAG_HOME``, so every model is trained and every table computed. What
every run would pay once and the sweep does not scale with is done before the clock starts: each
worker imports torch and kag, reads MNIST and runs one throwaway training step (torch's imports on
first use), and this process reads MNIST and plans the grid once. The start-up is printed apart.

    python benchmarks/sweep_scaling.py [--grid sweeps/smoke.toml] [--workers 1 2] [--repeats 5]

The worker counts alternate (1, 2, 2, 1, 1, 2, ...), so a drift of the machine's speed falls on
both alike, and each count's time is the median of its runs. The last line printed is
``ratio <median sweep time on the fewest workers / on the most>`` (goal: >= 1.7 for 1 vs 2 workers
on 2 CPU cores; the smoke grid has 4 training and 6 metric tasks of about half a second each, and a
metric task waits for its training task, so the ratio is bounded by the critical path as well as
the cores). Run it on an otherwise idle machine: on a busy one the workers share their cores and
the ratio means little.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _warm() -> bool:
    """A worker's start-up, not sweep work: import torch and kag, read MNIST, and train a throwaway
    width-1 model for one step on 8 images (nothing is stored). The step makes torch import what it
    imports on first use (``torch.optim`` pulls in ``torch._dynamo``: about 1 s on this CPU, once
    per process), which would otherwise fall on each worker's first task."""
    from kag.experiments.config import TrainConfig
    from kag.repro.sweep import engine
    from kag.experiments.train import train_seeds

    train_seeds(1, [0], "augmented", TrainConfig(epochs=1, train_subset=8, batch_size=8), engine._mnist(),
                evaluate=False)
    return True


def warm_client(grid_path: Path) -> None:
    """Read MNIST and plan the grid once in this process, so the first timed run does not pay for it."""
    from kag.experiments.data import load_mnist
    from kag.repro.sweep import engine, load_grid
    from kag.experiments.store import Store

    with tempfile.TemporaryDirectory(prefix="kag-sweep-bench-") as home:
        engine.plan_sweep(load_grid(grid_path).points(), load_mnist(), Store(Path(home) / "store"))


def one_run(grid_path: Path, workers: int) -> tuple[float, float, str]:
    """(cluster start-up seconds, sweep seconds, summary) on a fresh store with ``workers`` workers."""
    from distributed import Client

    from kag.repro.sweep import engine, load_grid
    from kag.experiments.store import Store

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


def run_order(workers: list[int], repeats: int) -> list[int]:
    """The worker counts of every run, alternating direction each repeat: 1 2, 2 1, 1 2, ..."""
    order = []
    for r in range(repeats):
        order += workers if r % 2 == 0 else workers[::-1]
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=ROOT / "sweeps" / "smoke.toml")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5, help="runs per worker count (default 5); the median counts")
    args = parser.parse_args()
    if args.repeats < 1 or min(args.workers) < 1:
        parser.error(f"--repeats {args.repeats} and --workers {args.workers} must be at least 1")
    os.environ.setdefault("KAG_QUIET", "1")
    warm_client(args.grid)
    times: dict[int, list[float]] = {n: [] for n in args.workers}
    for n in run_order(sorted(set(args.workers)), args.repeats):
        started, seconds, summary = one_run(args.grid, n)
        times[n].append(seconds)
        print(f"{n} worker{'s' if n > 1 else ''}: sweep {seconds:.2f} s (cluster start-up {started:.1f} s); {summary}",
              flush=True)
    medians = {n: statistics.median(ts) for n, ts in times.items()}
    for n, ts in sorted(times.items()):
        print(f"{n} worker{'s' if n > 1 else ''}: median {medians[n]:.2f} s of {len(ts)} runs "
              f"(min {min(ts):.2f}, max {max(ts):.2f})")
    fewest, most = min(medians), max(medians)
    print(f"ratio {medians[fewest] / medians[most]:.2f}")


if __name__ == "__main__":
    main()
