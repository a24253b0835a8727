"""Unit tests never touch the user's model cache: the store lives in a temporary KAG_HOME,
while MNIST is read from (or fetched once into) the usual data directory."""

from __future__ import annotations

import os

import pytest

from kag.experiments.paths import data_dir


@pytest.fixture(autouse=True, scope="session")
def _isolated_kag_home(tmp_path_factory: pytest.TempPathFactory):
    saved = {k: os.environ.get(k) for k in ("KAG_HOME", "KAG_DATA", "KAG_QUIET")}
    os.environ["KAG_DATA"] = str(data_dir())
    os.environ["KAG_HOME"] = str(tmp_path_factory.mktemp("kag_home"))
    os.environ["KAG_QUIET"] = "1"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def mnist():
    from kag.experiments.data import load_mnist

    return load_mnist()
