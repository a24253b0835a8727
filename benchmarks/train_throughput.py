"""Batched multi-seed trainer vs the conventional way, in one process.

Conventional: one ``nn.Module`` per seed, trained one after another, fed by a ``DataLoader`` over
``torchvision.datasets.MNIST`` with per-sample transforms (``RandomAffine`` for the augmented
regime, then ``ToTensor`` and ``Normalize``). Batched: :func:`kag.experiments.train.train_seeds`, all seeds as
one computation with on-device augmentation. Both run a fixed number of optimiser steps per model
(a fraction of an epoch) and the times are scaled to seconds per model-epoch.

    python benchmarks/train_throughput.py --width 128 --seeds 5 --regime augmented

The last line printed is ``ratio <conventional / batched>``.

``--allocator`` measures instead what a Dask worker's default environment costs the batched trainer:
the same training in two fresh processes, one with ``MALLOC_TRIM_THRESHOLD_=65536`` (what Dask sets
for its workers unless told otherwise) and one without (glibc's adaptive mmap threshold; ``kag sweep``'s
workers start with :data:`kag.experiments.allocator.ENVIRONMENT` instead, which trains as fast, see
:data:`kag.repro.sweep.engine.WORKER_ALLOCATOR`), alternating; the last line is
``ratio <with Dask's setting / without>``, on the median of ``--repeats`` runs each.

    python benchmarks/train_throughput.py --allocator --width 512 --seeds 3 --steps 50
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from kag.experiments.data import MEAN, STD, load_mnist
from kag.experiments.model import MLP
from kag.experiments.config import TrainConfig
from kag.experiments.train import train_seeds


def conventional(width: int, seeds: int, regime: str, steps: int, root: str, batch: int, workers: int) -> float:
    """Seconds for ``seeds`` models, each trained for ``steps`` batches the usual way."""
    tf = [transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,)), transforms.Lambda(lambda t: t.view(-1))]
    if regime == "augmented":
        tf.insert(0, transforms.RandomAffine(degrees=0, translate=(4 / 28, 4 / 28)))
    dataset = torchvision.datasets.MNIST(root, train=True, download=False, transform=transforms.Compose(tf))
    dataset = Subset(dataset, range(steps * batch))  # the same number of steps for every seed
    start = time.perf_counter()
    for seed in range(seeds):
        torch.manual_seed(seed)
        model = MLP(width)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=1e-4)
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers)
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def batched(width: int, seeds: int, regime: str, steps: int, mnist, batch: int, device: str) -> float:
    config = dataclasses.replace(TrainConfig(), epochs=1, train_subset=steps * batch, batch_size=batch, checkpoint_every=0)
    group = train_seeds(width, tuple(range(seeds)), regime, config, mnist, device, evaluate=False)
    return group.seconds


DASK_WORKER_TRIM = {"MALLOC_TRIM_THRESHOLD_": "65536"}  # distributed's default pre-spawn environment


def allocator(args) -> None:
    """The batched training in fresh processes, with and without Dask's ``MALLOC_TRIM_THRESHOLD_``."""
    argv = [sys.executable, __file__, "--batched-only", "--width", str(args.width), "--seeds", str(args.seeds),
            "--regime", args.regime, "--steps", str(args.steps), "--device", args.device]
    # both as a kag sweep worker is started: one thread (Dask's OMP_NUM_THREADS=1), with or without the trim
    plain = {**{k: v for k, v in os.environ.items() if k not in DASK_WORKER_TRIM}, "OMP_NUM_THREADS": "1"}
    times: dict[str, list[float]] = {"with": [], "without": []}
    for i in range(2 * args.repeats):  # with, without, without, with, ...: a drift falls on both alike
        which = ("with", "without")[(i + i // 2) % 2]
        env = {**plain, **DASK_WORKER_TRIM} if which == "with" else plain
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout.split()
        times[which].append(float(out[-1]))
        print(f"run {i + 1}: {which:<7} MALLOC_TRIM_THRESHOLD_=65536  {times[which][-1]:.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"width {args.width}, {args.seeds} seeds, {args.regime}, {args.steps} steps: median {med['with']:.2f} s "
          f"with Dask's default worker environment, {med['without']:.2f} s without")
    print(f"ratio {med['with'] / med['without']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--regime", choices=("standard", "augmented"), default="augmented")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps per model (batch 256)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the conventional way")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--allocator", action="store_true",
                        help="compare the batched trainer with and without Dask's MALLOC_TRIM_THRESHOLD_ instead")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting for --allocator")
    parser.add_argument("--batched-only", action="store_true", help=argparse.SUPPRESS)  # one --allocator run
    args = parser.parse_args()
    if args.allocator:
        return allocator(args)

    mnist = load_mnist()
    batch = 256
    if args.batched_only:  # after a warm-up step, print the seconds of the training alone
        batched(args.width, 1, args.regime, 2, mnist, batch, args.device)
        print(batched(args.width, args.seeds, args.regime, args.steps, mnist, batch, args.device))
        return
    epoch_fraction = args.steps * batch / 60_000
    print(f"width {args.width}, {args.seeds} seeds, {args.regime}, {args.steps} steps/model "
          f"({epoch_fraction:.3f} epoch), torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    batched(args.width, 1, args.regime, 2, mnist, batch, args.device)  # warm-up
    t_batched = batched(args.width, args.seeds, args.regime, args.steps, mnist, batch, args.device)
    t_conv = conventional(args.width, args.seeds, args.regime, args.steps, str(mnist.root), batch, args.workers)
    per_batched = t_batched / (args.seeds * epoch_fraction)
    per_conv = t_conv / (args.seeds * epoch_fraction)
    print(f"batched      {per_batched:8.2f} s per model-epoch  ({t_batched:.1f} s measured)")
    print(f"conventional {per_conv:8.2f} s per model-epoch  ({t_conv:.1f} s measured, DataLoader workers={args.workers})")
    print(f"ratio {per_conv / per_batched:.2f}")


if __name__ == "__main__":
    main()
