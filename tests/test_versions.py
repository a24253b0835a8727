"""Cache keys come from explicit versions: golden values catch a behaviour change made without a
version bump, a bumped constant changes the key, and editing comments or local names does not."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from safetensors.torch import load_file

import golden
from kag.experiments.analysis import measurement_versions, metric_key
from kag.experiments.config import MetricConfig, TrainConfig
from kag.experiments.pipeline import model_key, training_versions

ROOT = Path(__file__).resolve().parents[1]
RECORDED = json.loads(golden.VALUES.read_text())


def _differences(expected: Any, actual: Any, rtol: float, path: str = "") -> list[str]:
    """Where ``actual`` departs from ``expected`` (floats within ``rtol``, everything else exactly)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            return [f"{path}: keys {sorted(expected)} != {sorted(actual)}"]
        return [d for k in expected if k not in golden.INFORMATIVE
                for d in _differences(expected[k], actual[k], rtol, f"{path}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: length {len(expected)} != {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in _differences(e, a, rtol, f"{path}[{i}]")]
    if isinstance(expected, float) or isinstance(actual, float):
        if math.isclose(expected, actual, rel_tol=rtol, abs_tol=rtol * 1e-3) or (expected == actual):
            return []
        return [f"{path}: {actual!r} != recorded {expected!r}"]
    return [] if expected == actual else [f"{path}: {actual!r} != recorded {expected!r}"]


@pytest.mark.parametrize("name", list(golden.GOLDEN))
def test_golden_values_hold_at_the_current_version(name):
    constant, fingerprint, rtol = golden.GOLDEN[name]
    recorded = RECORDED[name]
    current = golden.version_of(constant)
    assert recorded["version"] == current, (
        f"{constant} is {current} but the golden values were recorded at {recorded['version']}: "
        "re-record them with `python tests/golden.py --record` and commit them with the bump")
    diffs = _differences(recorded["values"], fingerprint(), rtol)
    assert not diffs, (f"{name} computes something else than at {constant} = {current}, so cached results would be "
                       f"stale: bump {constant} (then `python tests/golden.py --record`). Differences: "
                       + "; ".join(diffs[:5]))


def test_trained_weights_match_the_golden_model():
    expected = load_file(str(golden.TRAINER_WEIGHTS))
    actual = golden.trained_width8()
    assert set(expected) == set(actual)
    for k in expected:
        assert torch.allclose(actual[k], expected[k], rtol=1e-4, atol=1e-6), (
            f"{k} of the 2-epoch width-8 model moved: bump kag.experiments.train.TRAINER_VERSION (or the version of the "
            "algorithm you changed), then `python tests/golden.py --record`")


def test_the_table_layout_golden_is_recorded_at_the_current_table_version():
    from kag.experiments.table import TABLE_VERSION

    assert RECORDED["analysis"]["table_version"] == TABLE_VERSION, (
        "kag.experiments.table.TABLE_VERSION changed: re-record the golden values with `python tests/golden.py --record`")


# -- what keys are made of ----------------------------------------------------------------------
KEY_SCRIPT = """
from kag.experiments.analysis import metric_key
from kag.experiments.config import MetricConfig, TrainConfig
from kag.experiments.pipeline import model_key, TRAINING_SOURCES
from kag.experiments.store import source_digest
m = model_key(64, 0, "standard", TrainConfig(), "d" * 64)
print(m, metric_key(m, MetricConfig(), "standard", True), source_digest(*TRAINING_SOURCES))
"""


def _keys_of(package_root: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", KEY_SCRIPT], cwd=package_root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(package_root), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_comments_and_renamed_locals_change_no_key(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "kag", copy / "kag", ignore=shutil.ignore_patterns("__pycache__"))
    train = copy / "kag" / "experiments" / "train.py"
    text = train.read_text()
    edited = re.sub(r"\blast_loss\b", "final_epoch_loss", "# a comment that changes nothing\n" + text)
    assert edited.count("final_epoch_loss") >= 3
    train.write_text(edited)
    analysis = copy / "kag" / "experiments" / "analysis.py"
    analysis.write_text(analysis.read_text().replace("def _ratio(", "# why: a ratio of undefined numbers is NaN\ndef _ratio("))
    original, changed = _keys_of(ROOT), _keys_of(copy)
    assert changed[:2] == original[:2], "a comment or a renamed local variable changed a cache key"
    assert changed[2] != original[2], "the source digest (provenance) should see the edit"


@pytest.mark.parametrize("constant, moves", [
    ("kag.experiments.data.DATA_VERSION", {"model", "metrics"}),
    ("kag.experiments.model.MODEL_VERSION", {"model", "metrics"}),
    ("kag.experiments.augment.AUGMENT_VERSION", {"model", "metrics"}),
    ("kag.experiments.train.TRAINER_VERSION", {"model", "metrics"}),
    ("kag.jacobians.JACOBIAN_VERSION", {"metrics"}),
    ("kag.determinants.MINORS_VERSION", {"metrics"}),
    ("kag.metrics.OBSERVABLES_VERSION", {"metrics"}),
    ("kag.spatial.SPATIAL_VERSION", {"metrics"}),
    ("kag.surrogate.SURROGATE_VERSION", {"metrics"}),
    ("kag.experiments.analysis.ANALYSIS_VERSION", {"metrics"}),
    ("kag.experiments.table.TABLE_VERSION", {"metrics"}),
])
def test_bumping_a_version_changes_exactly_the_keys_it_should(monkeypatch, constant, moves):
    def keys() -> dict[str, str]:
        m = model_key(64, 0, "standard", TrainConfig(), "d" * 64)
        return {"model": m, "metrics": metric_key(m, MetricConfig(), "standard", True)}

    before = keys()
    module_name, name = constant.rsplit(".", 1)
    module = importlib.import_module(module_name)
    monkeypatch.setattr(module, name, getattr(module, name) + 1)  # the key functions read it at call time
    after = keys()
    assert {k for k in before if before[k] != after[k]} == moves


def test_keys_record_every_version_and_normalisation_is_in_the_model_key():
    assert set(training_versions()) == {"data", "model", "augment", "trainer"}
    assert set(measurement_versions()) == {"data", "jacobians", "minors", "observables", "spatial", "surrogate",
                                            "analysis", "table"}


def test_a_field_added_at_its_neutral_value_changes_no_key():
    @dataclasses.dataclass(frozen=True)
    class TrainConfigWithRotation(TrainConfig):
        NEUTRAL: ClassVar[dict] = {**TrainConfig.NEUTRAL, "rotate_degrees": 0.0}
        rotate_degrees: float = 0.0

    plain = model_key(64, 0, "augmented", TrainConfig(), "d" * 64)
    assert model_key(64, 0, "augmented", TrainConfigWithRotation(), "d" * 64) == plain
    assert model_key(64, 0, "augmented", TrainConfigWithRotation(rotate_degrees=15.0), "d" * 64) != plain
    assert model_key(64, 0, "augmented", TrainConfig(lr=3e-3), "d" * 64) != plain


TRAIN_FIELDS_BEFORE_THE_SWEEP = {"epochs", "lr", "betas", "weight_decay", "batch_size", "train_subset", "translate_px",
                                 "checkpoint_every", "timeline_regimes"}


@pytest.mark.parametrize("regime", ["standard", "augmented"])
def test_rotation_and_scale_fields_at_their_defaults_change_no_model_key(regime):
    from kag.experiments.keys import key_fields
    from kag.experiments.keys import make_key, model_key_of

    assert set(key_fields(TrainConfig())) == TRAIN_FIELDS_BEFORE_THE_SWEEP
    before = {k: v for k, v in dataclasses.asdict(TrainConfig()).items() if k in TRAIN_FIELDS_BEFORE_THE_SWEEP}
    key = model_key(64, 0, regime, TrainConfig(), "d" * 64)
    assert key == make_key("model", data="d" * 64, width=64, seed=0, regime=regime, train=before,
                           versions=training_versions())
    # a manifest written before the fields existed still names its model
    manifest = dict(data_sha256="d" * 64, width=64, seed=0, regime=regime, train_config=before,
                    versions=training_versions())
    assert model_key_of(manifest) == key
    # augmentation moves the key of an augmented model only (kag.experiments.config.regime_config)
    for changed in (TrainConfig(rotate_deg=15.0), TrainConfig(scale_range=(0.9, 1.1)), TrainConfig(translate_px=6)):
        assert (model_key(64, 0, regime, changed, "d" * 64) != key) == (regime == "augmented")
    assert model_key(64, 0, regime, TrainConfig(lr=3e-3, translate_px=6), "d" * 64) != key


def test_real_valued_fields_hash_alike_as_int_float_list_or_tuple():
    """0 and 0.0, [0.9, 0.98] and (0.9, 0.98) are the same training: one key."""
    from kag.experiments.config import TrainConfig
    from kag.experiments.keys import key_fields

    as_ints = TrainConfig(lr=1, weight_decay=0, rotate_deg=15, betas=[0.9, 0.98], scale_range=[1, 2])
    as_floats = TrainConfig(lr=1.0, weight_decay=0.0, rotate_deg=15.0, betas=(0.9, 0.98), scale_range=(1.0, 2.0))
    assert key_fields(as_ints) == key_fields(as_floats) and as_ints == as_floats
    assert "rotate_deg" not in key_fields(TrainConfig(rotate_deg=0))  # an int 0 is the neutral value too
