"""Arguments are validated before any work starts: every bad value of the library entry points
(``ensure_models``, ``ensure_metrics``) and of kag's directories is one ``ValueError`` (or, for a
directory, ``NotADirectoryError``) naming the value and what is allowed, raised before MNIST is
loaded or anything trains. The command-line side is in ``test_cli.py``."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import kag.experiments.analysis
import kag.experiments.pipeline
from kag.experiments.analysis import check_metric_request, ensure_metrics
from kag.experiments.config import TrainConfig
from kag.experiments.model import MAX_WIDTH, check_width, check_widths
from kag.experiments.paths import data_dir, kag_home, store_dir
from kag.experiments.pipeline import ensure_models
from kag.repro.profiles import PROFILES, SMOKE
from kag.experiments.train import check_seeds, check_train_config

TINY = TrainConfig(epochs=1, train_subset=512, checkpoint_every=1)


@pytest.fixture
def no_work(monkeypatch):
    """Loading MNIST, training or measuring fails the test: the check must come first."""

    def forbidden(*args, **kwargs):
        pytest.fail("work started before the arguments were checked")

    for module, name in ((kag.experiments.pipeline, "load_mnist"), (kag.experiments.pipeline, "train_seeds"), (kag.experiments.analysis, "load_mnist"),
                         (kag.experiments.analysis, "ensure_models"), (kag.experiments.analysis, "compute_table")):
        monkeypatch.setattr(module, name, forbidden)


def _raises(fragment: str):
    return pytest.raises(ValueError, match=re.escape(fragment))


# -- widths, seeds, epochs --------------------------------------------------------------------
@pytest.mark.parametrize("width", [0, -3, MAX_WIDTH + 1, 10**9, True, 8.0, "8"], ids=repr)
def test_a_width_outside_1_to_65536_is_rejected(width):
    with _raises(f"width={width!r} is not allowed"):
        check_width(width)
    assert "1..65536" in str(pytest.raises(ValueError, check_width, width).value)


def test_widths_at_the_bounds_are_accepted_and_repeats_are_not():
    assert check_width(1) == 1 and check_width(MAX_WIDTH) == MAX_WIDTH == 65536
    assert check_widths([8, 16]) == (8, 16)
    with _raises("repeat width 8"):
        check_widths([8, 16, 8])


@pytest.mark.parametrize("seeds, fragment", [
    ((-1,), "seed=-1 is not allowed"),
    ((2**32,), f"seed={2**32} is not allowed: seeds are integers in 0..{2**32 - 1}"),
    ((0, 1.5), "seed=1.5 is not allowed"),
    ((0, 0), "seeds=[0, 0] repeat seed 0"),
    ((3, 1, 3, 1), "repeat seed 1"),
    ((), "seeds=() is not allowed"),
    (7, "seeds=7 is not allowed"),
], ids=["negative", "2^32", "float", "repeated", "two-repeated", "empty", "not-a-sequence"])
def test_bad_seeds_are_rejected(seeds, fragment):
    with _raises(fragment):
        check_seeds(seeds)


def test_seeds_at_the_bounds_are_accepted():
    assert check_seeds([0, 2**32 - 1, np.int64(5)]) == (0, 2**32 - 1, 5)


@pytest.mark.parametrize("change, fragment", [
    (dict(epochs=0), "epochs=0 is not allowed: expected an integer >= 1"),
    (dict(epochs=-2), "epochs=-2"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(train_subset=0), "train_subset=0"),
    (dict(lr=0.0), "lr=0.0"),
    (dict(betas=(0.9, 1.0)), "betas=(0.9, 1.0)"),
    (dict(timeline_regimes=("rotated",)), "regime='rotated'"),
], ids=lambda v: "-".join(f"{k}={v}" for k, v in v.items()) if isinstance(v, dict) else None)
def test_a_training_config_out_of_its_domain_is_rejected(change, fragment):
    with _raises(fragment):
        check_train_config(dataclasses.replace(TINY, **change))


# -- ensure_models ----------------------------------------------------------------------------
@pytest.mark.parametrize("change, fragment", [
    (dict(width=10**9), "width=1000000000"),
    (dict(width=0), "width=0"),
    (dict(seeds=(0, 0)), "repeat seed 0"),
    (dict(seeds=(2**32,)), f"seed={2**32}"),
    (dict(regime="rotated"), "regime='rotated'"),
    (dict(config=dataclasses.replace(TINY, epochs=0)), "epochs=0"),
    (dict(eval_shift_seed=-1), "eval_shift_seed=-1"),
    (dict(device="tpu"), "device='tpu'"),
], ids=lambda v: "-".join(f"{k}={v!r}"[:30] for k, v in v.items()) if isinstance(v, dict) else None)
def test_ensure_models_checks_every_argument_before_loading_data_or_training(no_work, tmp_path, change, fragment):
    args = dict(width=8, seeds=(0,), regime="standard", config=TINY, device="cpu", store=None, eval_shift_seed=42)
    args.update(change)
    with _raises(fragment):
        ensure_models(args.pop("width"), args.pop("seeds"), args.pop("regime"), args.pop("config"), **args)


# -- ensure_metrics: impossible requests fail before training ---------------------------------
M = SMOKE.metrics


@pytest.mark.parametrize("width, seeds, config, spatial, fragment", [
    (1, (0,), M, False, "ks asks for k=2, more than width=1"),
    (2, (0,), M, False, "ks asks for k=3, more than width=2"),
    (2, (0,), dataclasses.replace(M, ks=(1, 2)), False, "timeline_k asks for k=3, more than width=2"),
    (3, (0,), dataclasses.replace(M, ks=(1,), timeline_k=1, spatial_ks=(4,)), True, "spatial_ks asks for k=4"),
    (8, (0,), dataclasses.replace(M, ks=(0, 1)), False, "ks=0 is not allowed"),
    (8, (0,), dataclasses.replace(M, ks=()), False, "ks=() is not allowed"),
    (8, (0, 1250), M, False, "seed=1250 with n_images=8 needs test images 10000..10007, but MNIST has 10000"),
    (8, (0,), dataclasses.replace(M, n_images=10_001), False, "n_images=10001 is more than the 10000"),
    (8, (0,), dataclasses.replace(M, n_images=0), False, "n_images=0"),
    (16, (0, 2500), dataclasses.replace(M, n_images=1), True, "seed=2500 with n_spatial_images=4"),
    (16, (0,), dataclasses.replace(M, radii=(0, 7)), True, "radius=0, whose ball around a corner pixel holds 1"),
    (16, (0,), dataclasses.replace(M, radii=(-1,)), True, "radius=-1"),
    (16, (0,), dataclasses.replace(M, separations=(40,)), True, "separation 40 cannot hold spatial k=2"),
    (16, (0,), dataclasses.replace(M, n_centres=0), True, "n_centres=0"),
    (16, (0,), dataclasses.replace(M, eval_images="rotated"), False, "eval_images='rotated'"),
    (16, (0,), dataclasses.replace(M, jacobian_dtype="int8"), False, "jacobian_dtype='int8'"),
    (16, (3, 3), M, False, "repeat seed 3"),
    (70_000, (0,), M, False, "width=70000"),
], ids=["width-1", "width-2", "timeline_k", "spatial_ks", "k=0", "no-ks", "seed-beyond-images", "n_images>10000",
        "n_images=0", "spatial-images", "radius-0", "radius-negative", "separation", "n_centres", "eval_images",
        "dtype", "repeated-seed", "width-too-large"])
def test_an_impossible_metric_request_fails_before_training(no_work, width, seeds, config, spatial, fragment):
    with _raises(fragment):
        check_metric_request(width, seeds, config, spatial)
    with _raises(fragment):
        ensure_metrics(width, "standard", seeds, SMOKE.train, config, spatial=spatial, device="cpu")


def test_ensure_metrics_checks_its_training_arguments_first(no_work):
    with _raises("epochs=0"):
        ensure_metrics(8, "standard", (0,), dataclasses.replace(SMOKE.train, epochs=0), M, device="cpu")
    with _raises("regime='rotated'"):
        ensure_metrics(8, "rotated", (0,), SMOKE.train, M, device="cpu")


def test_spatial_limits_apply_only_to_spatial_requests():
    check_metric_request(3, (0,), dataclasses.replace(M, radii=(0,), spatial_ks=(5,)), spatial=False)


def test_the_last_seed_that_fits_the_test_set_is_accepted():
    check_metric_request(8, (0, 1249), M, spatial=False)  # images 9992..9999
    check_metric_request(8, (0, 5000), dataclasses.replace(M, per_seed_sampling=False), spatial=False)
    check_metric_request(3, (0,), dataclasses.replace(M, radii=(1,), spatial_ks=(3,)), spatial=True)  # corner: 3 px


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_request_passes_the_check(name):
    profile = PROFILES[name]
    for width in profile.widths:
        check_metric_request(width, profile.seeds, profile.metrics, width in profile.spatial_widths)


# -- directories ------------------------------------------------------------------------------
def test_kag_home_or_data_pointing_at_a_file_names_the_variable(monkeypatch, tmp_path):
    file = tmp_path / "f"
    file.write_text("not a directory")
    monkeypatch.setenv("KAG_HOME", str(file))
    with pytest.raises(NotADirectoryError, match=re.escape(f"KAG_HOME={file} is a file: it must be a directory")):
        kag_home()
    with pytest.raises(NotADirectoryError, match=re.escape(f"KAG_HOME={file}")):
        store_dir()
    monkeypatch.setenv("KAG_HOME", str(file / "below"))
    with pytest.raises(NotADirectoryError, match=re.escape(f"KAG_HOME={file / 'below'} cannot be a directory: {file}")):
        kag_home()
    monkeypatch.setenv("KAG_HOME", str(tmp_path / "new" / "home"))  # need not exist yet
    monkeypatch.setenv("KAG_DATA", str(file))
    assert store_dir() == tmp_path / "new" / "home" / "store"
    with pytest.raises(NotADirectoryError, match=re.escape(f"KAG_DATA={file} is a file")):
        data_dir()
    monkeypatch.delenv("KAG_DATA")
    (tmp_path / "new" / "home").mkdir(parents=True)
    (tmp_path / "new" / "home" / "data").write_text("")
    with pytest.raises(NotADirectoryError, match="data directory .* is a file"):
        data_dir()
