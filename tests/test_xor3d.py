"""The xor3d study (docs/SPEC.md §8a): the generated regression dataset, training on it (MSE, R²), its
metric tables (the minors' magnitudes for FM1), and how the study adapts the profiles."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from kag.errors import CorruptDataError
from kag.experiments import analysis
from kag.experiments.config import MetricConfig, TrainConfig
from kag.experiments.datasets import DATASETS, load_dataset, pinned_digest
from kag.experiments.datasets import xor3d as xor
from kag.experiments.families import get_family
from kag.experiments.keys import key_fields
from kag.experiments.pipeline import ensure_models
from kag.experiments.store import Store
from kag.experiments.train import evaluate_r2, train_seeds
from kag.repro.claims import get_claim
from kag.repro.profiles import QUICK, SMOKE, get_profile
from kag.repro.results import groups_needed
from kag.repro.studies import does_not_apply, get_study

FAMILY = "mlp1-3d"


@pytest.fixture(scope="module")
def points():
    return load_dataset("xor3d")


def test_the_points_are_the_pinned_ones_and_the_target_is_the_product_of_sines(points):
    assert "xor3d" in DATASETS and pinned_digest("xor3d") == points.sha256 != pinned_digest("mnist")
    assert points.train_images.shape == (8192, 3) and points.test_images.shape == (10000, 3)
    assert points.train_images.dtype == points.train_labels.dtype == torch.float32
    assert float(points.train_images.min()) >= -1 and float(points.train_images.max()) <= 1
    x = points.test_images[:5].double().numpy()
    by_hand = [math.sin(math.pi * a) * math.sin(math.pi * b) * math.sin(math.pi * c) for a, b, c in x]
    np.testing.assert_allclose(points.test_labels[:5].numpy(), by_hand, rtol=1e-6, atol=1e-7)
    assert torch.equal(points.normalize(points.test_images[:3]), points.test_images[:3])
    assert (points.task, points.augmentable, points.grid) == ("regression", False, None)


def test_points_that_are_not_the_pinned_ones_are_refused_in_one_line(monkeypatch):
    monkeypatch.setitem(xor.SHA256, "test_labels", "f" * 64)
    xor._load.cache_clear()
    try:
        with pytest.raises(CorruptDataError) as info:
            xor.load_xor3d()
    finally:
        xor._load.cache_clear()
    message = str(info.value)
    assert "\n" not in message and message.startswith("xor3d test_labels generated here has sha256")


def test_training_fits_by_mse_and_scores_by_r2(points):
    group = train_seeds(8, (0, 1), "standard", TrainConfig(epochs=3, checkpoint_every=1), points, family=FAMILY)
    assert len(group.test_r2) == 2 and all(math.isfinite(r) for r in group.test_r2)
    assert all(math.isnan(a) for a in group.test_accuracy)
    # R² recomputed by hand from each member's ordinary module
    fam = get_family(FAMILY)
    x, y = points.test_images.double().numpy(), points.test_labels.double().numpy()
    for state, r2 in zip(group.final_states, group.test_r2):
        net = fam.model_from_state(state).double()
        with torch.no_grad():
            pred = net(torch.from_numpy(x)).squeeze(-1).numpy()
        assert r2 == pytest.approx(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum(), rel=1e-5)
    assert set(group.checkpoints[0]) == {0, 1, 2, 3}


def test_evaluate_r2_is_one_for_a_perfect_fit_and_zero_for_the_mean():
    fam = get_family(FAMILY)
    params = fam.init_params(4, [torch.Generator().manual_seed(0)])
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = fam.stacked_forward(params, x[None])[0, :, 0]
    assert evaluate_r2(params, x, y, lambda v: v, FAMILY) == [pytest.approx(1.0)]
    flat = {k: torch.zeros_like(v) for k, v in params.items()}
    flat["fc2.bias"] = torch.full_like(params["fc2.bias"], float(y.double().mean()))
    assert evaluate_r2(flat, x, y, lambda v: v, FAMILY) == [pytest.approx(0.0, abs=1e-6)]


def test_a_regime_or_family_the_points_cannot_take_is_refused_in_one_line(points, mnist):
    with pytest.raises(ValueError, match="^regime='augmented' is not allowed for dataset 'xor3d': it has no "
                                         "augmentation; use 'standard'$"):
        train_seeds(8, (0,), "augmented", TrainConfig(epochs=1), points, family=FAMILY)
    with pytest.raises(ValueError, match="^family='mlp2' takes 784 inputs, but dataset 'xor3d' has 3"):
        train_seeds(8, (0,), "standard", TrainConfig(epochs=1), points, family="mlp2")
    with pytest.raises(ValueError, match="^family='mlp1-3d' takes 3 inputs, but dataset 'mnist' has 784"):
        train_seeds(8, (0,), "standard", TrainConfig(epochs=1), mnist, family=FAMILY)


def test_a_regression_manifest_records_r2_and_no_accuracy_and_its_table_the_minors_magnitudes(points, tmp_path):
    store = Store(tmp_path / "store")
    config = TrainConfig(epochs=2, checkpoint_every=1)
    (record,) = ensure_models(8, (0,), "standard", config, store=store, mnist=points, family=FAMILY)
    assert record.manifest["test_accuracy"] is None and math.isnan(record.test_accuracy)
    assert math.isfinite(record.manifest["test_r2"])
    metrics = dataclasses.replace(SMOKE.metrics, minor_magnitudes=True)
    table, _ = analysis.compute_table(record, config, metrics, points, torch.device("cpu"), spatial=False)
    fit = table.select(analysis="accuracy")
    assert {r.observable for r in fit} == {"test_r2"} and fit.rows[0].value == record.manifest["test_r2"]
    q01 = table.select(analysis="global", observable="log10_minor_q01", layer="L1", k=3)
    assert {r.role for r in q01} >= {"trained", "init"} and all(math.isfinite(r.value) for r in q01)
    with pytest.raises(ValueError, match="^spatial=True is not allowed for dataset 'xor3d'"):
        analysis.ensure_metrics(8, "standard", (0,), config, metrics, spatial=True, store=store, mnist=points,
                                family=FAMILY)


def test_log10_quantile_is_numpys_and_an_exact_zero_stays_finite():
    m = torch.rand(40, 25, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for q in (0.01, 0.5):
        assert analysis.log10_quantile(m, q) == pytest.approx(math.log10(np.quantile(m.numpy().ravel(), q)))
    assert analysis.log10_quantile(torch.zeros(10, dtype=torch.float64), 0.01) == pytest.approx(math.log10(5e-324))


def test_the_minors_magnitudes_leave_every_other_metric_key_as_it_was():
    assert "minor_magnitudes" not in key_fields(MetricConfig())
    assert key_fields(MetricConfig(minor_magnitudes=True))["minor_magnitudes"] is True


def test_the_study_adapts_the_profiles_and_judges_only_what_applies():
    quick = get_profile("quick", study="xor3d")
    assert quick.widths == (4, 8, 16, 32, 64) and quick.spatial_widths == ()
    assert (quick.train.epochs, quick.train.checkpoint_every) == (200, 10) and quick.metrics.minor_magnitudes
    assert get_profile("paper", study="xor3d").train.epochs == 1000
    assert "200 epochs instead of the study's 1,000 (timeline checkpoints every 10 epochs)" in quick.reductions
    assert not any("spatial" in line for line in quick.reductions) and len(quick.reductions) == len(QUICK.reductions) - 1
    smoke = get_profile("smoke", study="xor3d")
    assert smoke.widths == SMOKE.widths and smoke.train.epochs == SMOKE.train.epochs
    assert {g.regime for g in groups_needed(quick)} == {"standard"} and len(groups_needed(quick)) == 5
    assert get_claim("C5").cells(quick) == [] and get_claim("C8").cells(quick) == []
    assert [c.p["regime"] for c in get_claim("C4").cells(quick)] == ["standard"]
    study = get_study("xor3d")
    for cid in ("C2", "C2-depth", "C5", "C6", "C7", "C8", "C9"):
        assert does_not_apply(get_claim(cid), study), cid
    for cid in ("C1-PR", "C3", "C4", "C10", "C11", "N1", "N2", "FM1"):
        assert does_not_apply(get_claim(cid), study) is None, cid
    assert does_not_apply(get_claim("FM1"), get_study("mnist-mlp")) == \
        "FM1 does not apply to the mnist-mlp study: it is registered for xor3d only"
    assert get_profile("quick", study="mnist-mlp") == QUICK  # the paper's setting is untouched


def test_the_suites_progress_counts_only_the_work_that_runs():
    """The controller's count of models to train comes from the collected test ids; cells of claims that
    do not apply (C9's augmented cells in xor3d) are skipped and must not be counted."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "claims" / "conftest.py"
    spec = importlib.util.spec_from_file_location("kag_claims_conftest", path)
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    paper = get_profile("paper", study="xor3d")
    ids = [f"claims/test_claims.py::test_claim[{c.id}-{cell.id}]" for c in (get_claim("C9"), get_claim("C1-PR"))
           for cell in c.cells(paper)]
    pairs = suite._pairs_from_ids(ids, paper)
    assert {c.id for c, _ in pairs} == {"C1-PR"}
    assert {g.regime for g in suite._groups_for(pairs, paper)} == {"standard"}
