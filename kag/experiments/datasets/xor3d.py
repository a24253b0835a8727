"""xor3d: the Freedman-Mulligan target ``f(x) = sin(pi x1) sin(pi x2) sin(pi x3)`` on ``[-1, 1]^3``
(arXiv 2509.12326, Eq. III.1, "the xor function"), where KA geometry was first seen in shallow GELU MLPs.

A regression dataset generated here, never downloaded: 8,192 training and 10,000 test points drawn
uniformly from the cube by NumPy's PCG64 from a fixed seed, stored as float32, with the target computed
in float64 from the stored float32 points and rounded to float32. The arrays' digests are pinned below
and checked on every load, so a platform whose generator or ``sin`` differed would be refused by name
instead of training on other numbers. The points are the network's input as they are (no normalisation:
the cube is already centred and of unit scale). No augmentation exists for points, and there is no
pixel grid: the spatial analyses do not apply (docs/SPEC.md §8a).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from kag.errors import CorruptDataError
from kag.experiments.datasets import DatasetEntry

NAME = "xor3d"
SEED = 2509_12326  # the paper's arXiv number: a seed chosen before any model was trained
N_TRAIN, N_TEST, DIM = 8_192, 10_000, 3

# sha256 of each array's little-endian float32 bytes, C order (see _digest)
SHA256 = {
    "train_images": "13f3327cab00d349fc94d9273762a23278ef49b48dca845b45ac3ec7f8539600",
    "train_labels": "ae6191ab437bc0dd4d0b1dfcab028c8b95803f3f3d37756251518a80bf98aa2c",
    "test_images": "db031e74063b71d067bbf6c91fb694be62f7b9d5d157ee93418b9eccd952af4f",
    "test_labels": "a3c9640ea26269e76ebab748df2a2e35a7131ed05c65278128d5a4021e3a595b",
}


@dataclass(frozen=True, eq=False)
class PointDataset:
    """A regression dataset of points, with the field names the pipeline reads (those of
    :class:`kag.experiments.data.ImageDataset`): the *images* are the input points ``[N, 3]`` float32,
    the *labels* the targets ``[N]`` float32."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    root: Path | None
    sha256: str
    name: str = NAME
    mean: float = 0.0  # the points are used as they are
    std: float = 1.0

    task: ClassVar[str] = "regression"  # mean-squared-error loss; scored by R² on the test points
    augmentable: ClassVar[bool] = False  # no augmented regime
    grid: ClassVar[tuple[int, int] | None] = None  # no pixels: the spatial analyses do not apply

    def normalize(self, points: torch.Tensor) -> torch.Tensor:
        """Points ``[..., 3]`` -> float32 network input ``[..., 3]`` (unchanged values)."""
        return points.to(torch.float32)


def target(points: np.ndarray) -> np.ndarray:
    """``prod_i sin(pi x_i)`` of points ``[N, 3]``, in float64."""
    return np.prod(np.sin(np.pi * points.astype(np.float64)), axis=-1)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f4").tobytes()).hexdigest()


def generate() -> dict[str, np.ndarray]:
    """The four arrays, from :data:`SEED` (train points first, then test points, one stream)."""
    rng = np.random.Generator(np.random.PCG64(SEED))
    train = rng.uniform(-1.0, 1.0, size=(N_TRAIN, DIM)).astype(np.float32)
    test = rng.uniform(-1.0, 1.0, size=(N_TEST, DIM)).astype(np.float32)
    return {"train_images": train, "train_labels": target(train).astype(np.float32),
            "test_images": test, "test_labels": target(test).astype(np.float32)}


@functools.lru_cache(maxsize=None)
def _load() -> PointDataset:
    from kag.experiments.data import combined_digest

    arrays = generate()
    for name, array in arrays.items():
        found = _digest(array)
        if found != SHA256[name]:
            raise CorruptDataError(f"xor3d {name} generated here has sha256 {found[:12]}..., not the pinned "
                                   f"{SHA256[name][:12]}...: this platform's NumPy generates other points; "
                                   "its models would not be the committed ones")
    return PointDataset(**{k: torch.from_numpy(v) for k, v in arrays.items()}, source=f"generated (PCG64 seed {SEED})",
                        root=None, sha256=combined_digest(SHA256))


def load_xor3d(root: str | Path | None = None) -> PointDataset:
    """The xor3d points (``root`` is ignored: nothing is read or written). Cached per process."""
    return _load()


DATASETS_HERE = (DatasetEntry(name=NAME, load=load_xor3d, sha256=SHA256,
                              description="xor3d: prod sin(pi x_i) on [-1, 1]^3, 8,192 train / 10,000 test points "
                                          "(Freedman & Mulligan, arXiv 2509.12326)",
                              data_type=PointDataset),)
