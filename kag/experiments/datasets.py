"""The datasets a study can name: each a loader returning a :class:`kag.experiments.data.ImageDataset`.

A new 28×28, 10-class dataset is one module with a loader (as :mod:`kag.experiments.fashion_mnist`) and one
line here. Loaders are imported when asked for, so naming one dataset never fetches another.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from kag.experiments.data import ImageDataset

DATASETS = {  # name -> "module:loader"
    "mnist": "kag.experiments.data:load_mnist",
    "fashion-mnist": "kag.experiments.fashion_mnist:load_fashion_mnist",
}


def pinned_digest(name: str) -> str:
    """The digest every load of dataset ``name`` verifies (the one in its models' cache keys), without loading it."""
    from kag.experiments.data import combined_digest

    module = importlib.import_module(_entry(name)[0])
    return combined_digest(module.SHA256)


def _entry(name: str) -> tuple[str, str]:
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is unknown: use one of {', '.join(map(repr, DATASETS))}")
    module, loader = DATASETS[name].split(":")
    return module, loader


def load_dataset(name: str, root: str | Path | None = None) -> ImageDataset:
    """The dataset ``name`` (one of :data:`DATASETS`) from ``root`` (default: ``kag.experiments.paths.data_dir()``)."""
    module, loader = _entry(name)
    return getattr(importlib.import_module(module), loader)(root)
