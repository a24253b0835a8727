"""The metric table of one model: identities that must hold, caching, and the CLI view of it."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from kag.analysis import compute_table, ensure_metrics, evaluation_inputs, metric_key
from kag.cli import main
from kag.pipeline import ModelRecord
from kag.profiles import SMOKE
from kag.store import Store
from kag.train import initial_state


def _record(width: int, trained: dict, init: dict, regime: str = "standard") -> ModelRecord:
    ckpts = {0: {k: init[k] for k in ("fc1.weight", "fc1.bias")}, 1: {k: trained[k] for k in ("fc1.weight", "fc1.bias")}}
    return ModelRecord("0" * 64, width, 0, regime, init, trained, ckpts, {"test_accuracy": 0.5}, True)


def test_an_untrained_model_compared_with_itself_shows_no_change(mnist):
    init = initial_state(16, 0)
    table = compute_table(_record(16, init, init), SMOKE, mnist, torch.device("cpu"), spatial=True)
    for layer in ("L1", "L2"):
        for k, row in table["global"][layer].items():
            assert row["pr_ratio"] == pytest.approx(1.0) and row["rr_ratio"] == pytest.approx(1.0)
            assert row["kl"] == pytest.approx(0.0, abs=1e-9)
            assert row["kl_null"] > 0  # an independent init is a different network
        assert table["zero_rows"][layer]["trained"] == table["zero_rows"][layer]["init"]
    assert table["timeline"]["pr_ratio"] == pytest.approx([1.0, 1.0])
    for analysis in ("balls", "patches", "separation"):
        for cond in table["spatial"][analysis]["L1"]["2"].values():
            assert cond["pr_ratio"] == pytest.approx(1.0)


def test_concentrating_the_first_layer_raises_its_pr_ratio(mnist):
    """A KA-like fc1 (each pixel feeds one unit) concentrates L1 minors relative to the init."""
    init = initial_state(16, 0)
    ka = dict(init)
    w = torch.zeros_like(init["fc1.weight"])
    w[torch.arange(784) % 16, torch.arange(784)] = 3.0 * torch.rand(784, generator=torch.Generator().manual_seed(0))
    ka["fc1.weight"] = w
    table = compute_table(_record(16, ka, init), SMOKE, mnist, torch.device("cpu"), spatial=False)
    assert table["global"]["L1"]["2"]["pr_ratio"] > 1.5
    assert table["spatial"] is None


def test_pool_sizes_and_separations_are_recorded(mnist):
    init = initial_state(16, 0)
    table = compute_table(_record(16, init, init), SMOKE, mnist, torch.device("cpu"), spatial=True)
    balls = table["spatial"]["balls"]["L1"]["2"]
    assert [float(r) for r in balls] == list(SMOKE.metrics.radii)
    assert balls[str(max(SMOKE.metrics.radii))]["pool_size"] >= balls[str(min(SMOKE.metrics.radii))]["pool_size"]
    assert set(table["spatial"]["patches"]["L2"]["3"]) == {"top-left", "top-right", "bottom-left", "bottom-right", "centre"}
    assert [float(d) for d in table["spatial"]["separation"]["L1"]["3"]] == list(SMOKE.metrics.separations)


def test_augmented_models_can_be_measured_on_shifted_images(mnist):
    clean = evaluation_inputs(mnist, SMOKE.metrics, "augmented", 8, torch.device("cpu"))
    shifted_cfg = dataclasses.replace(SMOKE.metrics, eval_images="augmented")
    shifted = evaluation_inputs(mnist, shifted_cfg, "augmented", 8, torch.device("cpu"))
    assert not torch.equal(clean, shifted)
    # standard models are always measured on clean images, so their key ignores the option
    assert torch.equal(evaluation_inputs(mnist, shifted_cfg, "standard", 8, torch.device("cpu")), clean)
    assert metric_key("a" * 64, shifted_cfg, "standard", True) == metric_key("a" * 64, SMOKE.metrics, "standard", True)
    assert metric_key("a" * 64, shifted_cfg, "augmented", True) != metric_key("a" * 64, SMOKE.metrics, "augmented", True)


def test_tables_are_computed_once_then_served_from_the_store(tmp_path, mnist):
    store = Store(tmp_path)
    first = ensure_metrics(SMOKE, 8, "standard", (0,), device="cpu", store=store, mnist=mnist)
    second = ensure_metrics(SMOKE, 8, "standard", (0,), device="cpu", store=store, mnist=mnist)
    assert first == second
    assert [e["kind"] for e in store.events()] == ["train", "metrics"]


def test_metrics_cli_prints_strict_json(capsys):
    code = main(["metrics", "--width", "8", "--seeds", "0", "--profile", "smoke", "--device", "cpu", "--json"])
    out = capsys.readouterr().out
    tables = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert code == 0 and tables[0]["width"] == 8 and set(tables[0]["global"]) == {"L1", "L2"}
