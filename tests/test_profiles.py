from __future__ import annotations

import dataclasses

import pytest
import torch

from kag.repro.profiles import PAPER, PAPER_CPU, PROFILES, QUICK, SMOKE, get_profile


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
    assert (m.n_images, m.n_spatial_images, m.n_samples, m.ks, m.n_rotations, m.index_seed) == (512, 50, 10_000, (1, 2, 3), 100, 42)
    assert m.radii == (7, 14, 21, 28) and m.separations == (0, 2, 4, 7, 10, 14) and m.kl_bins == 100
    assert PAPER.reductions == ()


def test_paper_cpu_trains_exactly_like_paper_and_says_what_it_scales_down():
    assert PAPER_CPU.train == PAPER.train and PAPER_CPU.widths == PAPER.widths and PAPER_CPU.seeds == PAPER.seeds
    assert PAPER_CPU.metrics != PAPER.metrics and len(PAPER_CPU.reductions) >= 3


def test_quick_exercises_the_whole_grid():
    assert QUICK.widths == PAPER.widths and len(QUICK.seeds) >= 3
    assert QUICK.metrics.ks == PAPER.metrics.ks and QUICK.metrics.radii == PAPER.metrics.radii
    assert QUICK.reductions  # the report must say what quick scales down


def test_profiles_are_frozen_data():
    for profile in PROFILES.values():
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.train.epochs = 1  # type: ignore[misc]
        assert max(profile.spatial_widths) in profile.widths
