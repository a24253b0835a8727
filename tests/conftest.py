"""Unit tests never touch the user's model cache: the store lives in a temporary KAG_HOME,
while MNIST is read from (or fetched once into) the usual data directory."""

from __future__ import annotations

import os

import pytest

from kag.experiments.paths import data_dir


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, each worker takes its share of the cores for torch, and so do the processes its tests
    start (``OMP_NUM_THREADS``, unless set): with torch's default of every core per process, ``-n 2`` on 2
    cores runs 4 busy threads, and OpenMP's waiting threads spin against each other (measured: the tests
    of the analysis, the library and the README example took 2 min 26 s on 2 workers, 60 s shared)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:
        import torch

        share = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(share)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))


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


@pytest.fixture
def without_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports rendered without drawing a figure (each draws nothing), for tests that read only the text:
    drawing a report's 30 figures costs about 10 s on 2 cores. test_report.py, test_report_assembly.py and
    the claims-suite tests draw every figure."""
    import importlib

    render_module = importlib.import_module("kag.repro.report.render")  # the package re-exports a function of its name
    monkeypatch.setattr(render_module, "_drawn", lambda stem, digest, draw: None)
