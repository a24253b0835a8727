"""The datasets a study can name, one module each in this package.

A dataset module defines its loader (returning a :class:`kag.experiments.data.ImageDataset`) and the
digests every load verifies, and lists a :class:`DatasetEntry` in ``DATASETS_HERE``; every module
here is imported when the registry is (a loader runs only when its dataset is asked for, so naming one
dataset never fetches another). Adding a dataset is adding one file here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from kag.discovery import first_repeat, listed_in_modules
from kag.experiments.data import ImageDataset, combined_digest


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset: its name (as studies and ``--dataset`` name it), its loader, the digests of its arrays
    (pinned in the repository, part of every model key through :func:`pinned_digest`), what it is, and the
    class its loader returns (whose class attributes say, without loading, whether the augmented regime
    exists and whether the spatial analyses apply)."""

    name: str
    load: Callable[[str | Path | None], ImageDataset]
    sha256: Mapping[str, str]
    description: str
    data_type: type = ImageDataset

    @property
    def augmentable(self) -> bool:
        """Whether the augmented regime (shifted, rotated, scaled inputs) exists for this dataset."""
        return self.data_type.augmentable

    @property
    def spatial(self) -> bool:
        """Whether its inputs are pixels on a grid, so the spatial analyses (C5-C8) apply."""
        return self.data_type.grid is not None


def _discover() -> Mapping[str, DatasetEntry]:
    entries = listed_in_modules(__name__, __path__, "DATASETS_HERE")
    repeated = first_repeat(entry.name for entry in entries)
    if repeated is not None:
        raise RuntimeError(f"two dataset modules register {repeated!r}: each dataset name is its own")
    return MappingProxyType({e.name: e for e in sorted(entries, key=lambda e: (e.name != "mnist", e.name))})


DATASETS: Mapping[str, DatasetEntry] = _discover()  # name -> entry; MNIST first


def _entry(name: str) -> DatasetEntry:
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is unknown: use one of {', '.join(map(repr, DATASETS))}")
    return DATASETS[name]


def dataset_entry(name: str) -> DatasetEntry:
    """The registry's entry of dataset ``name``; one-line ValueError if unknown."""
    return _entry(name)


def pinned_digest(name: str) -> str:
    """The digest every load of dataset ``name`` verifies (the one in its models' cache keys), without loading it."""
    return combined_digest(_entry(name).sha256)


def load_dataset(name: str, root: str | Path | None = None) -> ImageDataset:
    """The dataset ``name`` (one of :data:`DATASETS`) from ``root`` (default: ``kag.experiments.paths.data_dir()``)."""
    return _entry(name).load(root)
