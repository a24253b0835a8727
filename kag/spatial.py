"""Pixel geometry of an image grid: coordinates, balls, patches (SPEC §6).

A network that reads images ``[C, H, W]`` sees them flattened in PyTorch's layout, so input
column ``c*H*W + row*W + col`` holds channel ``c`` of pixel ``p = row*W + col``. A pixel owns its
channels' columns: every pool returned here is a sorted ``LongTensor`` of *column* indices (all
channels of the selected pixels) on the CPU, ready to hand to :func:`kag.determinants.sample_indices`
as its ``pool``. Pixel indices ``p`` (``0..H*W-1``, row-major) and ``(row, col)`` pairs name
pixels. For MNIST, ``ImageGrid(28, 28)``: columns and pixels coincide.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Version of the pixel geometry (balls, patches, random centres, the column layout): part of every
# metric cache key; bump it when a pool changes.
SPATIAL_VERSION = 1

Centre = int | Sequence[float] | torch.Tensor


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: expected a positive integer")
    return int(value)


def _check_radius(radius: float) -> float:
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not math.isfinite(radius) or radius < 0:
        raise ValueError(f"radius={radius!r} is not allowed: the radius must be a finite number >= 0")
    return float(radius)


def _check_index_tensor(name: str, idx: Sequence[int] | torch.Tensor, size: int, what: str) -> torch.Tensor:
    """Integer indices in ``0..size-1`` as an int64 CPU tensor (any shape), else a one-line ValueError."""
    idx = torch.as_tensor(idx).detach().cpu()
    if idx.numel() and (idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.is_complex()):
        raise ValueError(f"{name} has dtype {idx.dtype}: expected integer {what} indices 0..{size - 1}")
    idx = idx.to(torch.int64)
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.numel():
        raise ValueError(f"{name} contains {int(bad[0])}: {what} indices must be in 0..{size - 1}")
    return idx


@dataclass(frozen=True)
class ImageGrid:
    """The pixel grid of ``[channels, height, width]`` images, flattened as PyTorch does."""

    height: int
    width: int
    channels: int = 1

    def __post_init__(self) -> None:
        for name in ("height", "width", "channels"):
            object.__setattr__(self, name, _check_positive(name, getattr(self, name)))

    @property
    def n_pixels(self) -> int:
        """``height * width``."""
        return self.height * self.width

    @property
    def n_columns(self) -> int:
        """``channels * height * width``: the input dimension d of a network on these images."""
        return self.channels * self.n_pixels

    # -- coordinates --------------------------------------------------------------------------

    def pixel_coords(self) -> torch.Tensor:
        """``(row, col)`` of every pixel: ``[n_pixels, 2]`` int64, row-major."""
        p = torch.arange(self.n_pixels)
        return torch.stack((p // self.width, p % self.width), dim=1)

    def column_pixels(self) -> torch.Tensor:
        """The pixel of every input column: ``[n_columns]`` int64 (column ``c*H*W + p`` -> ``p``)."""
        return torch.arange(self.n_columns) % self.n_pixels

    def column_coords(self) -> torch.Tensor:
        """``(row, col)`` of every input column's pixel: ``[n_columns, 2]`` int64."""
        return self.pixel_coords()[self.column_pixels()]

    def columns(self, pixels: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Every channel's column of the given pixel indices: sorted, distinct int64 ``[channels * P]``."""
        pixels = _check_index_tensor("pixels", pixels, self.n_pixels, "pixel").flatten()
        offsets = torch.arange(self.channels)[:, None] * self.n_pixels
        return torch.unique(offsets + pixels[None, :])  # sorted

    def pairwise_distances(self, columns: torch.Tensor) -> torch.Tensor:
        """Euclidean distances between the pixels of columns: ``[..., k] -> [..., k, k]`` float64.

        Two columns of one pixel (different channels) are at distance 0.
        """
        columns = torch.as_tensor(columns)
        _check_index_tensor("columns", columns, self.n_columns, "column")
        xy = self.column_coords().to(columns.device, torch.float64)[columns]
        return (xy[..., :, None, :] - xy[..., None, :, :]).norm(dim=-1)

    # -- pools --------------------------------------------------------------------------------

    def ball(self, radius: float, centre: Centre) -> torch.Tensor:
        """Columns of the pixels within Euclidean distance ``<= radius`` of ``centre``, clipped to the image.

        ``centre`` is a pixel index or a ``(row, col)`` pair (may be fractional). Returns sorted int64
        column indices.
        """
        radius = _check_radius(radius)
        row, col = self._centre_coords(centre)
        xy = self.pixel_coords().to(torch.float64)
        inside = ((xy - torch.tensor([row, col], dtype=torch.float64)) ** 2).sum(dim=1) <= radius**2  # exact on the grid
        pixels = inside.nonzero().flatten()
        if pixels.numel() == 0:
            raise ValueError(f"radius={radius} around centre ({row}, {col}) selects no pixel: use a larger radius")
        return self.columns(pixels)

    def mean_ball_size(self, radius: float, centres: Sequence[int] | torch.Tensor) -> float:
        """Mean number of *pixels* of the (clipped) balls of ``radius`` around pixel indices ``centres``."""
        radius = _check_radius(radius)
        centres = torch.as_tensor(centres, dtype=torch.int64).flatten()
        if centres.numel() == 0:
            raise ValueError("centres is empty: give at least one centre pixel")
        centres = _check_index_tensor("centres", centres, self.n_pixels, "pixel")
        xy = self.pixel_coords().to(torch.float64)
        sizes = (((xy[centres, None, :] - xy[None, :, :]) ** 2).sum(dim=2) <= radius**2).sum(dim=1)  # [C]
        return float(sizes.double().mean())

    def patch(self, top: int, left: int, height: int, width: int) -> torch.Tensor:
        """Columns of the rectangle of pixels rows ``top..top+height-1``, cols ``left..left+width-1``."""
        for name, value, minimum in (("top", top, 0), ("left", left, 0), ("height", height, 1), ("width", width, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name}={value!r} is not allowed: expected an integer >= {minimum}")
        if top + height > self.height or left + width > self.width:
            raise ValueError(
                f"patch rows {top}..{top + height - 1}, cols {left}..{left + width - 1} leave the "
                f"{self.height}x{self.width} image"
            )
        rows, cols = self.pixel_coords().unbind(dim=1)
        inside = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
        return self.columns(inside.nonzero().flatten())

    def patches(self) -> dict[str, torch.Tensor]:
        """The four quadrants and the centre square, as column pools.

        Quadrants split the rows at ``height // 2`` and the columns at ``width // 2`` (so they
        partition the image); the centre patch is ``(height // 2) x (width // 2)``, centred. For
        28×28: four 14×14 quadrants and the centre rows/cols 7..20.
        """
        if self.height < 2 or self.width < 2:
            raise ValueError(f"patches need an image of at least 2x2 pixels, not {self.height}x{self.width}")
        h, w = self.height // 2, self.width // 2
        return {
            "top-left": self.patch(0, 0, h, w),
            "top-right": self.patch(0, w, h, self.width - w),
            "bottom-left": self.patch(h, 0, self.height - h, w),
            "bottom-right": self.patch(h, w, self.height - h, self.width - w),
            "centre": self.patch((self.height - h) // 2, (self.width - w) // 2, h, w),
        }

    def random_centres(self, n: int, seed: int) -> torch.Tensor:
        """``n`` uniformly random pixel indices ``[n]`` int64, from a local generator seeded by ``seed``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r} is not allowed: the number of centres must be a positive integer")
        generator = torch.Generator().manual_seed(seed)
        return torch.randint(0, self.n_pixels, (n,), generator=generator)

    # -- validation ---------------------------------------------------------------------------

    def _centre_coords(self, centre: Centre) -> tuple[float, float]:
        """Validate ``centre`` (a pixel index or a ``(row, col)`` pair) and return its coordinates."""
        if isinstance(centre, torch.Tensor):
            centre = centre.tolist()
        last = self.n_pixels - 1
        if isinstance(centre, numbers.Integral) and not isinstance(centre, bool):
            if not 0 <= centre <= last:
                raise ValueError(f"centre={centre} is not a pixel index: allowed 0..{last}")
            return float(centre // self.width), float(centre % self.width)
        if isinstance(centre, Sequence) and len(centre) == 2 and all(
            isinstance(c, numbers.Real) and not isinstance(c, bool) for c in centre
        ):
            row, col = float(centre[0]), float(centre[1])
            if not (0 <= row <= self.height - 1 and 0 <= col <= self.width - 1):
                raise ValueError(
                    f"centre={tuple(centre)} lies outside the image: row must be in 0..{self.height - 1} "
                    f"and col in 0..{self.width - 1}"
                )
            return row, col
        raise ValueError(f"centre={centre!r} is not allowed: give a pixel index 0..{last} or a (row, col) pair")
