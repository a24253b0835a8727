"""Many layers in one call: ``kag.measure`` on a small CNN (a conv layer of 1,568 units, a hidden fc
layer, the logits) against ``kag.compare_to_init`` of an earlier revision called once per layer, in
the same sizes (issue 18 item 8).

The baseline is the library before the one measurement path (default: f8c7fc1, one RR index sample
with float64 rotations and no SEs): it is checked out into a temporary git worktree and timed in a
subprocess that imports it (the network and images are built here, from the same seeds). The
library is timed at the baseline's sizes (one RR index sample) and at its own defaults for RR
(16 index samples, with every SE).

    python benchmarks/measure_throughput.py [--baseline f8c7fc1] [--images 16]

The last line is ``ratio <baseline / measure>`` at the same sizes.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("conv", "fc1", "fc2")
SIZES = dict(ks=(1, 2, 3), n_samples=2_000, n_rotations=10, rotation_images=16, seed=0)


class SmallCNN(nn.Module):
    """The README's CNN: conv (stride 2, 8 x 14 x 14) -> ReLU -> max-pool -> fc1 -> ReLU -> fc2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, kernel_size=5, stride=2, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 7 * 7, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.pool(torch.relu(self.conv(x))).flatten(1))))


def networks(images: int) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """(trained stand-in, init, x): the init perturbed by 10% noise, Gaussian images, fixed seeds."""
    torch.manual_seed(0)
    init = SmallCNN().eval()
    trained = copy.deepcopy(init)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.1 * p.abs().mean() * torch.randn_like(p))
    return trained, init, torch.randn(images, 1, 28, 28)


def time_compare_to_init(images: int) -> float:
    """Seconds of one ``compare_to_init`` per layer with whatever ``kag`` is importable (the baseline's)."""
    import kag

    trained, init, x = networks(images)
    start = time.perf_counter()
    for layer in LAYERS:
        kag.compare_to_init(trained, init, x, layer=layer, sampling="support", **SIZES)
    return time.perf_counter() - start


def baseline_seconds(revision: str, images: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree), "KAG_QUIET": "1"}
            code = (f"import sys; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(ROOT / 'benchmarks')!r}); "
                    f"import warnings; warnings.simplefilter('ignore'); import measure_throughput as m; "
                    f"print(m.time_compare_to_init({images}))")
            out = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, check=True, capture_output=True,
                                 text=True).stdout
            return float(out.strip().splitlines()[-1])
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="f8c7fc1", help="git revision whose compare_to_init is the baseline")
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import kag

    trained, init, x = networks(args.images)
    print(f"CNN layers {', '.join(LAYERS)}, {args.images} images, sizes {json.dumps(SIZES)}, "
          f"{torch.get_num_threads()} threads", flush=True)
    timings = {}
    for label, rr_samples in (("measure, 1 RR index sample", 1), ("measure, 16 RR index samples", 16)):
        start = time.perf_counter()
        kag.measure(trained, init, x, list(LAYERS), sampling="support", rr_index_samples=rr_samples, verbose=False,
                    **SIZES)
        timings[label] = time.perf_counter() - start
        print(f"{label}: {timings[label]:.1f} s", flush=True)
    before = baseline_seconds(args.baseline, args.images)
    print(f"compare_to_init at {args.baseline}, once per layer: {before:.1f} s")
    print(f"ratio {before / timings['measure, 1 RR index sample']:.2f}")


if __name__ == "__main__":
    main()
