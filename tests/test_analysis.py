"""The metric table of one model: identities that must hold, caching, and the CLI view of it."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from kag.experiments.analysis import compute_table, ensure_metrics, evaluation_inputs, metric_key
from kag.cli import main
from kag.experiments.pipeline import ModelRecord
from kag.repro.profiles import SMOKE
from kag.experiments.store import Store
from kag.experiments.table import ROLES, ResultTable
from kag.experiments.train import initial_state


def _record(width: int, trained: dict, init: dict, regime: str = "standard") -> ModelRecord:
    ckpts = {0: {k: init[k] for k in ("fc1.weight", "fc1.bias")}, 1: {k: trained[k] for k in ("fc1.weight", "fc1.bias")}}
    return ModelRecord("0" * 64, width, 0, regime, init, trained, ckpts, {"test_accuracy": 0.5}, True)


def _table(record: ModelRecord, mnist, spatial: bool):
    return compute_table(record, SMOKE.train, SMOKE.metrics, mnist, torch.device("cpu"), spatial=spatial)


def test_an_untrained_model_compared_with_itself_shows_no_change(mnist):
    init = initial_state(16, 0)
    table, meta = _table(_record(16, init, init), mnist, spatial=True)
    for layer in ("L1", "L2"):
        at = table.select(analysis="global", layer=layer)
        for k in SMOKE.metrics.ks:
            assert at.value(k=k, observable="pr_ratio", role="trained") == pytest.approx(1.0)
            assert at.value(k=k, observable="rr_ratio", role="trained") == pytest.approx(1.0)
            assert at.value(k=k, observable="kl", role="trained") == pytest.approx(0.0, abs=1e-9)
            assert at.value(k=k, observable="kl", role="null") > 0  # an independent init is a different network
            # every bootstrap replicate compares a network with itself: no measurement error at all
            assert at.value(k=k, observable="pr_ratio_se", role="trained") == pytest.approx(0.0, abs=1e-12)
            assert at.value(k=k, observable="kl_se", role="trained") == pytest.approx(0.0, abs=1e-12)
            assert at.value(k=k, observable="kl_se", role="null") > 0
            assert at.value(k=k, observable="pr_ratio_se", role="null") > 0
        zero = table.select(analysis="zero_rows", layer=layer, observable="zero_row_fraction")
        assert zero.value(role="trained") == zero.value(role="init")
        zero_se = table.select(analysis="zero_rows", layer=layer, observable="zero_row_fraction_se")
        assert zero_se.value(role="trained") == zero_se.value(role="init")
    timeline = table.select(analysis="timeline")
    assert [r.value for r in timeline.select(observable="pr_ratio")] == pytest.approx([1.0, 1.0])
    assert [r.value for r in timeline.select(observable="pr_ratio_se")] == pytest.approx([0.0, 0.0], abs=1e-12)
    accuracy = table.select(analysis="accuracy", condition="clean")
    assert accuracy.value(observable="test_accuracy_se") == pytest.approx(math.sqrt(0.5 * 0.5 / 10_000))
    for analysis in ("balls", "patches", "separation"):
        ratios = table.select(analysis=analysis, layer="L1", k=2, observable="pr_ratio")
        assert len(ratios) and all(r.value == pytest.approx(1.0) for r in ratios)
    assert meta["centres"] and meta["timings"]["total"] > 0


def test_every_row_is_identified_by_the_documented_columns(mnist):
    init = initial_state(8, 0)
    table, _ = _table(_record(8, init, init), mnist, spatial=True)
    assert set(table.unique("analysis")) == {"accuracy", "global", "zero_rows", "timeline", "sampling", "rr_variance",
                                              "balls", "patches", "separation"}
    assert set(table.unique("role")) == set(ROLES)
    assert {(r.width, r.seed, r.regime, r.eval_images) for r in table} == {(8, 0, "standard", "clean")}
    keys = [r[:-1] for r in table]
    assert len(keys) == len(set(keys)), "two rows share every identifying column"


def test_concentrating_the_first_layer_raises_its_pr_ratio(mnist):
    """A KA-like fc1 (each pixel feeds one unit) concentrates L1 minors relative to the init."""
    init = initial_state(16, 0)
    ka = dict(init)
    w = torch.zeros_like(init["fc1.weight"])
    w[torch.arange(784) % 16, torch.arange(784)] = 3.0 * torch.rand(784, generator=torch.Generator().manual_seed(0))
    ka["fc1.weight"] = w
    table, _ = _table(_record(16, ka, init), mnist, spatial=False)
    assert table.value(analysis="global", layer="L1", k=2, observable="pr_ratio", role="trained") > 1.5
    assert not table.select(analysis={"balls", "patches", "separation"}).rows


def test_pool_sizes_and_separations_are_recorded(mnist):
    init = initial_state(16, 0)
    table, _ = _table(_record(16, init, init), mnist, spatial=True)
    balls = table.select(analysis="balls", layer="L1", k=2, observable="pool_size")
    assert [float(r) for r in balls.unique("condition")] == list(SMOKE.metrics.radii)
    small, large = str(min(SMOKE.metrics.radii)), str(max(SMOKE.metrics.radii))
    assert balls.value(condition=large) >= balls.value(condition=small)
    patches = table.select(analysis="patches", layer="L2", k=3, observable="pr_ratio")
    assert set(patches.unique("condition")) == {"top-left", "top-right", "bottom-left", "bottom-right", "centre"}
    separation = table.select(analysis="separation", layer="L1", k=3, observable="pr_ratio")
    assert [float(d) for d in separation.unique("condition")] == list(SMOKE.metrics.separations)


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
    first = ensure_metrics(8, "standard", (0,), SMOKE.train, SMOKE.metrics, device="cpu", store=store, mnist=mnist)
    second = ensure_metrics(8, "standard", (0,), SMOKE.train, SMOKE.metrics, device="cpu", store=store, mnist=mnist)
    assert first == second and first[0].table == second[0].table
    assert [e["kind"] for e in store.events()] == ["train", "metrics"]


def test_metrics_cli_prints_strict_json(capsys):
    code = main(["metrics", "--width", "8", "--seeds", "0", "--profile", "smoke", "--device", "cpu", "--json"])
    out = capsys.readouterr().out
    entries = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert code == 0 and entries[0]["meta"]["width"] == 8
    table = ResultTable.from_json(entries[0]["table"])
    assert set(table.select(analysis="global").unique("layer")) == {"L1", "L2"}


def test_surrogates_and_the_second_null_are_measured_where_the_claims_need_them(mnist):
    init = initial_state(8, 0)
    trained = {k: v * 1.3 if k == "fc1.weight" else v for k, v in init.items()}
    standard, meta = _table(_record(8, trained, init), mnist, spatial=True)
    at = standard.select(analysis="global", layer="L1", k=2)
    # rescaling every row of W1 by 1.3 changes norms only: the surrogate explains all of PR
    assert at.value(observable="pr_trained_over", role="surrogate") == pytest.approx(1.0, rel=1e-6)
    assert at.value(observable="kl", role="null2") > 0 and at.value(observable="js", role="null") > 0
    assert at.value(observable="pr_ratio_se", role="trained") >= 0
    # the RR ratios that claims judge carry their SE: the trained one (C1-RR) and the null's (N1)
    assert all(at.value(observable="rr_ratio_se", role=role) > 0 for role in ("trained", "null"))
    assert len(standard.select(analysis="balls", observable="pr_trained_over", role="surrogate"))
    augmented, _ = compute_table(_record(8, trained, init, regime="augmented"), SMOKE.train, SMOKE.metrics, mnist,
                                 torch.device("cpu"), spatial=False)
    assert not augmented.select(role={"surrogate", "surrogate_rows", "surrogate_cols"}).rows
    centres = meta["centres"]
    assert len(centres) == SMOKE.metrics.n_spatial_images and all(len(c) == SMOKE.metrics.n_centres for c in centres)


def test_pr_ratio_against_s_uses_every_configured_sample_size(mnist):
    init = initial_state(8, 0)
    table, _ = _table(_record(8, init, init), mnist, spatial=False)
    sizes = table.select(analysis="sampling", layer="L2").unique("condition")
    assert [int(x) for x in sizes] == list(SMOKE.metrics.pr_sample_sizes)
    assert all(r.value == pytest.approx(1.0) for r in table.select(analysis="sampling"))


def test_rr_variance_components_see_only_the_sources_that_vary():
    from kag.experiments.analysis import rr_variance_components

    g = torch.Generator().manual_seed(0)
    a_t = (1 + torch.rand(1, 6, generator=g, dtype=torch.float64)).expand(4, 6)  # index samples identical
    q_t = torch.ones(4, 6, 5, dtype=torch.float64)  # every rotation alike
    a_i = torch.ones(4, 6, dtype=torch.float64)
    q_i = torch.ones(4, 6, 5, dtype=torch.float64)
    se = rr_variance_components((a_t, q_t, a_i, q_i), n_boot=50, seed=0)
    assert se["index samples"] < 1e-12 and se["rotations"] < 1e-12 and se["images"] > 0.01
    q_varied = q_t * (1 + torch.rand(4, 6, 5, generator=g, dtype=torch.float64))
    assert rr_variance_components((a_t, q_varied, a_i, q_i), n_boot=50, seed=0)["rotations"] > 0


def test_rr_ratio_estimator_is_symmetric_for_exchangeable_networks():
    from kag.experiments.analysis import rr_ratio_estimate

    a, b = [1.0, 2.0, 4.0], [2.0, 1.0, 4.0]
    assert rr_ratio_estimate(a, b) == pytest.approx(1.0)  # the arithmetic mean of ratios would say 1.17
    assert rr_ratio_estimate(a, b) * rr_ratio_estimate(b, a) == pytest.approx(1.0)
    assert math.isnan(rr_ratio_estimate([float("nan")], [1.0]))
