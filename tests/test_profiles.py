from __future__ import annotations

import dataclasses

import pytest
import torch

from kag.repro.profiles import PAPER, PROFILES, QUICK, SMOKE, get_profile


def test_auto_is_paper_on_cuda_and_quick_on_cpu(monkeypatch):
    monkeypatch.delenv("KAG_PROFILE", raising=False)
    assert get_profile("auto", device="cpu") is QUICK
    if torch.cuda.is_available():
        assert get_profile("auto", device="cuda") is PAPER
    monkeypatch.setenv("KAG_PROFILE", "smoke")
    assert get_profile() is SMOKE


def test_unknown_profile_is_a_one_line_error():
    with pytest.raises(ValueError, match="profile='huge' is unknown: choose one of auto, paper"):
        get_profile("huge")


def test_paper_profile_is_the_spec_as_written():
    assert PAPER.widths == (64, 128, 256, 512) and PAPER.seeds == (0, 1, 2, 3, 4)
    t, m = PAPER.train, PAPER.metrics
    assert (t.epochs, t.lr, t.betas, t.weight_decay, t.batch_size, t.translate_px) == (200, 1e-3, (0.9, 0.98), 1e-4, 256, 4)
    assert t.train_subset is None and t.checkpoint_every == 10
    assert (m.n_images, m.n_spatial_images, m.n_samples, m.n_spatial_samples, m.ks, m.index_seed) == (
        512, 50, 10_000, 10_000, (1, 2, 3), 42)
    assert m.jacobian_dtype == "float64" and m.n_centres == 4 and m.kl_central == 0.998
    assert m.pr_sample_sizes == (1_000, 2_000, 5_000, 10_000, 20_000) and m.surrogate_rounds == 20
    assert m.radii == (7, 14, 21, 28) and m.separations == (0, 2, 4, 7, 10, 14) and m.kl_bins == 100
    assert PAPER.reductions == ()


def test_quick_exercises_the_whole_grid():
    assert QUICK.widths == PAPER.widths and len(QUICK.seeds) >= 3
    assert QUICK.metrics.ks == PAPER.metrics.ks and QUICK.metrics.radii == PAPER.metrics.radii
    assert QUICK.reductions  # the report must say what quick scales down


def test_profiles_are_frozen_data():
    for profile in PROFILES.values():
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.train.epochs = 1  # type: ignore[misc]
        assert max(profile.spatial_widths) in profile.widths
