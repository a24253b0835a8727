"""Throughput of the measurement library against the conventional per-minor computation.

Same model, same images, same index sample, one process:

(a) library: ``hidden_jacobians`` + ``minors`` (k=3) + ``participation_ratio``, all images at once;
(b) conventional: per image ``torch.autograd.functional.jacobian`` of the L1 map, then one
    ``torch.det`` per minor in a Python loop, then PR. It is measured on a subset and
    extrapolated linearly (its cost is exactly linear in images and in samples).

Both must give the same PR on the common subset. The last line printed is ``ratio <number>``
(conventional time / library time, the library's best of ``--repeats`` runs: a shared machine
adds noise, never speed). The library computes both hidden Jacobians, the conventional path only
L1, so the ratio is conservative. Also reports the rotation ratio's throughput.

    python benchmarks/metrics_throughput.py [--width 256] [--images 512] [--samples 10000]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from kag.determinants import minors, sample_indices
from kag.jacobians import hidden_jacobians
from kag.metrics import participation_ratio, rotation_ratio
from kag.experiments.model import MLP


def load_images(n: int) -> tuple[torch.Tensor, str]:
    """``n`` normalised MNIST test images if kag.experiments.data can provide them, else random normals."""
    try:
        from kag.experiments.data import load_mnist, normalize  # noqa: PLC0415 (optional: data may be absent)

        return normalize(load_mnist().test_images[:n]).reshape(-1, 784), "MNIST test images"
    except Exception:  # noqa: BLE001 (any failure: fall back, the timing does not depend on pixels)
        return torch.randn(n, 784, generator=torch.Generator().manual_seed(0)), "random normal images"


def perturbed_model(width: int) -> MLP:
    """A random MLP, weights slightly perturbed and biases non-zero, so it is not exactly at init."""
    torch.manual_seed(0)
    model = MLP(width)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def library(model: MLP, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    J1, _ = hidden_jacobians(model, x)
    return participation_ratio(minors(J1, rows, cols))


def conventional(model: MLP, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """PR per image the textbook way; returns (PR, seconds in Jacobians, seconds in determinants)."""
    layer1 = lambda v: F.gelu(model.fc1(v))  # noqa: E731
    prs, t_jac, t_det = [], 0.0, 0.0
    for xi in x:
        J, dt = timed(lambda: torch.autograd.functional.jacobian(layer1, xi, vectorize=True))
        t_jac += dt
        start = time.perf_counter()
        dets = torch.stack([torch.det(J[r][:, c]).abs() for r, c in zip(rows, cols)])
        t_det += time.perf_counter() - start
        dets = dets.double()
        prs.append(dets.norm() / dets.sum())
    return torch.stack(prs), t_jac, t_det


def quick_table_timing() -> None:
    """Seconds for one full ``quick`` metric table per width, and the whole quick profile's metrics."""
    from kag.experiments.analysis import compute_table  # noqa: PLC0415
    from kag.experiments.data import load_mnist  # noqa: PLC0415
    from kag.experiments.pipeline import ModelRecord  # noqa: PLC0415
    from kag.repro.profiles import QUICK  # noqa: PLC0415
    from kag.experiments.train import initial_state  # noqa: PLC0415

    mnist, total = load_mnist(), 0.0
    for width in QUICK.widths:
        init = initial_state(width, 0)
        trained = {k: v + 0.01 * torch.randn_like(v) for k, v in init.items()}
        ckpts = {e: {k: trained[k] for k in ("fc1.weight", "fc1.bias")} for e in QUICK.train.checkpoint_epochs()}
        record = ModelRecord("0" * 64, width, 0, "standard", init, trained, ckpts, {"test_accuracy": float("nan")}, True)
        spatial = width in QUICK.spatial_widths
        _, meta = compute_table(record, QUICK.train, QUICK.metrics, mnist, torch.device("cpu"), spatial)
        seconds = meta["timings"]["total"]
        # every seed of both regimes, plus the augmented models measured on shifted images at spatial widths
        per_profile = seconds * len(QUICK.seeds) * (3 if spatial else 2)
        total += per_profile
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in meta["timings"].items() if k != "total")
        print(f"quick metric table, width {width}: {seconds:.1f} s per model ({stages})")
    print(f"quick profile, all metric tables: about {total / 60:.1f} min of compute on this machine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--conv-images", type=int, default=4, help="images measured on the conventional path")
    parser.add_argument("--conv-samples", type=int, default=2_000, help="samples measured on the conventional path")
    parser.add_argument("--rr-images", type=int, default=16, help="images for the rotation-ratio timing")
    parser.add_argument("--rotations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="library runs; the best is reported")
    parser.add_argument("--skip-table", action="store_true", help="skip timing the quick profile's metric table")
    args = parser.parse_args()

    model = perturbed_model(args.width)
    x, source = load_images(args.images)
    rows, cols = sample_indices(args.width, args.k, args.samples, n_cols=784, seed=42)
    print(f"width {args.width}, {args.images} {source}, {args.samples} samples, k={args.k}, "
          f"{torch.get_num_threads()} CPU threads")

    library(model, x[:8], rows, cols)  # warm-up (allocator, kernels)
    runs = [timed(lambda: library(model, x, rows, cols)) for _ in range(args.repeats)]
    pr_lib, t_lib = runs[0][0], min(t for _, t in runs)
    print(f"library: {t_lib:.3f} s for {args.images} images x {args.samples} samples, best of {args.repeats} "
          f"({args.images * args.samples / t_lib / 1e6:.1f} M minors/s; all runs: "
          f"{', '.join(f'{t:.2f}' for _, t in runs)} s)")

    ni, ns = min(args.conv_images, args.images), min(args.conv_samples, args.samples)
    conventional(model, x[:1], rows[:10], cols[:10])  # warm-up (vmap tracing of the jacobian)
    pr_conv, t_jac, t_det = conventional(model, x[:ni], rows[:ns], cols[:ns])
    t_conv = t_jac / ni * args.images + t_det / (ni * ns) * args.images * args.samples
    print(f"conventional: measured on {ni} images x {ns} samples ({t_jac + t_det:.2f} s), extrapolated "
          f"to {t_conv:.1f} s ({t_jac / ni * 1e3:.1f} ms per Jacobian, {t_det / (ni * ns) * 1e6:.1f} us per minor)")

    pr_lib_subset = library(model, x[:ni], rows[:ns], cols[:ns])
    torch.testing.assert_close(pr_lib_subset, pr_conv, rtol=1e-4, atol=0)
    print(f"check: PR on the common subset agrees (max relative difference "
          f"{float(((pr_lib_subset - pr_conv) / pr_conv).abs().max()):.1e}); full-run mean PR {float(pr_lib.mean()):.5f}")

    nr = min(args.rr_images, args.images)
    J1, _ = hidden_jacobians(model, x[:nr])
    _, t_rr = timed(lambda: rotation_ratio(J1, rows, cols, n_rotations=args.rotations, seed=0))
    per_pair = t_rr / (nr * args.rotations)
    print(f"rotation ratio: {t_rr:.2f} s for {nr} images x {args.rotations} rotations "
          f"({per_pair * 1e3:.2f} ms per (image, rotation); {args.images} images would take "
          f"{per_pair * args.images * args.rotations:.0f} s)")
    if not args.skip_table:
        quick_table_timing()
    print(f"ratio {t_conv / t_lib:.1f}")


if __name__ == "__main__":
    main()
