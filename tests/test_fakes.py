"""The fake results of the report and claims tests (tests/fakes.py) may not drift from the real
results schema: every kind of row they hold is one the pipeline writes."""

from __future__ import annotations

import dataclasses

import torch
from fakes import FakeResults, kag_like

from kag.experiments.analysis import compute_table
from kag.experiments.pipeline import ModelRecord
from kag.repro.profiles import SMOKE
from kag.experiments.train import initial_state


def _kinds(rows) -> set[tuple]:
    """A row's kind: what it measures, not where (analysis, observable, role, whether it has a layer,
    a k and a condition)."""
    return {(r.analysis, r.observable, r.role, r.layer is not None, r.k is not None, r.condition is not None)
            for r in rows}


def test_every_kind_of_fake_row_is_one_the_pipeline_writes(mnist):
    init = initial_state(8, 0)
    trained = {k: v * 1.2 if k == "fc1.weight" else v for k, v in init.items()}
    ckpts = {e: {k: s[k] for k in ("fc1.weight", "fc1.bias")} for e, s in ((0, init), (1, trained))}
    accuracy = {"test_accuracy": 0.5, "test_accuracy_shifted": 0.4}
    real = []
    for regime in ("standard", "augmented"):
        record = ModelRecord("0" * 64, 8, 0, regime, init, trained, ckpts, accuracy, True)
        metrics = dataclasses.replace(SMOKE.metrics, minor_magnitudes=True)  # every optional row written
        table, _ = compute_table(record, SMOKE.train, metrics, mnist, torch.device("cpu"), spatial=True)
        real += list(table)
    fake = FakeResults(SMOKE, kag_like)
    invented = _kinds(fake._table) - _kinds(real)
    assert not invented, f"tests/fakes.py holds rows the pipeline never writes: {sorted(invented)}"
