"""Generic Jacobians of any network: ``kag.jacobian`` (torch.func vmap over jacrev/jacfwd, chunked)
against the conventional way, one ``torch.autograd.functional.jacobian`` per sample, in the same
process, on a small CNN (conv -> pool -> linear) for 32x32x3 images: the Jacobian of its 64-unit
hidden representation (fc1) with respect to the 3,072 input columns.

    python benchmarks/jacobian_throughput.py [--images 64] [--dtype float64]

The last line is ``ratio <conventional / kag>``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import kag


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(4)
        self.fc1 = nn.Linear(8 * 8 * 8, 64)
        self.fc2 = nn.Linear(64, 10)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc1(self.pool(torch.relu(self.conv(x))).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.hidden(x))


def conventional(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One autograd Jacobian per sample, stacked: ``[B, m, d]``."""
    rows = [torch.autograd.functional.jacobian(lambda v: model.hidden(v[None])[0], xi).reshape(64, -1) for xi in x]
    return torch.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    model = SmallCNN().eval().to(dtype)
    x = torch.randn(args.images, 3, 32, 32, dtype=dtype)
    kag.jacobian(model.hidden, x[:2])  # warm-up
    t0 = time.perf_counter()
    J = kag.jacobian(model.hidden, x)
    t_kag = time.perf_counter() - t0
    t0 = time.perf_counter()
    J_ref = conventional(model, x)
    t_conv = time.perf_counter() - t0
    err = float((J - J_ref).abs().max() / J_ref.abs().max())
    print(f"{args.images} images, Jacobian {tuple(J.shape)} in {args.dtype}: kag.jacobian {t_kag:.3f} s, "
          f"per-sample autograd {t_conv:.3f} s; max relative difference {err:.1e}")
    print(f"ratio {t_conv / t_kag:.1f}")


if __name__ == "__main__":
    main()
