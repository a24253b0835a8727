"""Pixel geometry of the 28×28 MNIST grid: coordinates, balls, patches (SPEC §6).

A pixel index ``p`` in ``0..783`` sits at ``(row, col) = divmod(p, 28)``. Every pool returned
here is a sorted ``LongTensor`` of pixel indices on the CPU, ready to hand to
:func:`kag.minors.sample_indices` as its ``pool``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

SIDE = 28
N_PIXELS = SIDE * SIDE
PATCH = 14  # side of the rectangular patches
CENTRE_START = 7  # the centre patch covers rows and columns 7..20 inclusive


def pixel_coords() -> torch.Tensor:
    """``(row, col)`` of every pixel: ``[784, 2]`` int64, row-major like the flattened image."""
    p = torch.arange(N_PIXELS)
    return torch.stack((p // SIDE, p % SIDE), dim=1)


def pairwise_distances(pixels: torch.Tensor) -> torch.Tensor:
    """Euclidean grid distances between pixel indices: ``[..., k] -> [..., k, k]`` float64."""
    xy = pixel_coords().to(pixels.device, torch.float64)[pixels]
    return (xy[..., :, None, :] - xy[..., None, :, :]).norm(dim=-1)


def _centre_coords(centre: int | Sequence[float] | torch.Tensor) -> tuple[float, float]:
    """Validate ``centre`` (a pixel index or a ``(row, col)`` pair) and return its coordinates."""
    if isinstance(centre, torch.Tensor):
        centre = centre.tolist()
    if isinstance(centre, numbers.Integral) and not isinstance(centre, bool):
        if not 0 <= centre < N_PIXELS:
            raise ValueError(f"centre={centre} is not a pixel index: allowed 0..{N_PIXELS - 1}")
        return float(centre // SIDE), float(centre % SIDE)
    if isinstance(centre, Sequence) and len(centre) == 2 and all(isinstance(c, numbers.Real) for c in centre):
        row, col = float(centre[0]), float(centre[1])
        if not (0 <= row <= SIDE - 1 and 0 <= col <= SIDE - 1):
            raise ValueError(f"centre={tuple(centre)} lies outside the image: row and col must be in 0..{SIDE - 1}")
        return row, col
    raise ValueError(f"centre={centre!r} is not allowed: give a pixel index 0..{N_PIXELS - 1} or a (row, col) pair")


def _check_radius(radius: float) -> float:
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not math.isfinite(radius) or radius < 0:
        raise ValueError(f"radius={radius!r} is not allowed: the radius must be a finite number >= 0")
    return float(radius)


def ball_pool(radius: float, centre: int | Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Pixels within Euclidean distance ``<= radius`` of ``centre``, clipped to the image.

    ``centre`` is a pixel index ``0..783`` or a ``(row, col)`` pair. Returns sorted int64 indices.
    """
    radius = _check_radius(radius)
    row, col = _centre_coords(centre)
    xy = pixel_coords().to(torch.float64)
    inside = ((xy - torch.tensor([row, col], dtype=torch.float64)) ** 2).sum(dim=1) <= radius**2  # exact on the grid
    pool = inside.nonzero().flatten()
    if pool.numel() == 0:
        raise ValueError(f"radius={radius} around centre ({row}, {col}) selects no pixel: use a larger radius")
    return pool


def mean_ball_size(radius: float, centres: torch.Tensor | Sequence[int]) -> float:
    """Mean number of pixels of the (clipped) balls of ``radius`` around pixel indices ``centres``."""
    radius = _check_radius(radius)
    centres = torch.as_tensor(centres, dtype=torch.int64).flatten()
    if centres.numel() == 0:
        raise ValueError("centres is empty: give at least one centre pixel")
    bad = centres[(centres < 0) | (centres >= N_PIXELS)]
    if bad.numel():
        raise ValueError(f"centres contains {int(bad[0])}: pixel indices must be in 0..{N_PIXELS - 1}")
    xy = pixel_coords().to(torch.float64)
    sizes = (((xy[centres, None, :] - xy[None, :, :]) ** 2).sum(dim=2) <= radius**2).sum(dim=1)  # [C]
    return float(sizes.double().mean())


def patch_pools() -> dict[str, torch.Tensor]:
    """The five 14×14 patches: the four quadrants and the centre square (rows/cols 7..20)."""
    rows, cols = pixel_coords().unbind(dim=1)
    starts = {
        "top-left": (0, 0),
        "top-right": (0, PATCH),
        "bottom-left": (PATCH, 0),
        "bottom-right": (PATCH, PATCH),
        "centre": (CENTRE_START, CENTRE_START),
    }
    pools = {}
    for name, (r0, c0) in starts.items():
        inside = (rows >= r0) & (rows < r0 + PATCH) & (cols >= c0) & (cols < c0 + PATCH)
        pools[name] = inside.nonzero().flatten()
    return pools


def random_centres(n: int, seed: int) -> torch.Tensor:
    """``n`` uniformly random pixel indices ``[n]`` int64, from a local generator seeded by ``seed``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} is not allowed: the number of centres must be a positive integer")
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, N_PIXELS, (n,), generator=generator)
