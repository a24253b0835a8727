"""The reproduction's profiles: the run sizes of :mod:`kag.experiments.profiles`, each judged in a study
(:mod:`kag.repro.studies`), whose changes it carries: its widths (``paper`` and ``quick``), training changes
per profile, measurement changes, and no spatial widths for a study without pixels; its reductions say so."""

from __future__ import annotations

import dataclasses

from kag.experiments.profiles import (MIN_SEEDS, PAPER, PROFILE_CHOICES, PROFILES, QUICK, SMOKE, WIDTHS_PAPER, Profile,
                                      check_verdict_seeds, resolve_profile)

__all__ = ["MIN_SEEDS", "PAPER", "PROFILE_CHOICES", "PROFILES", "QUICK", "SMOKE", "WIDTHS_PAPER", "Profile",
           "check_verdict_seeds", "get_profile"]


def get_profile(name: str | None = None, device: str | None = None, study: str | None = None) -> Profile:
    """Resolve a profile name (``None`` reads ``KAG_PROFILE``, default ``auto``) for a study (``None``
    reads ``KAG_STUDY``, default ``mnist-mlp``; see :mod:`kag.repro.studies`).

    ``auto`` is ``paper`` when the device (default: the one picked automatically) is CUDA, else ``quick``.
    """
    from kag.repro.studies import get_study

    chosen = get_study(study).name
    profile = resolve_profile(name, device)
    if chosen == profile.study:
        return profile
    study = get_study(chosen)
    profile = dataclasses.replace(profile, study=chosen)
    if study.widths is not None and profile.name in ("paper", "quick"):
        profile = dataclasses.replace(profile, widths=study.widths, spatial_widths=(max(study.widths),))
    if not study.spatial:
        profile = dataclasses.replace(profile, spatial_widths=())
    if study.train_changes.get(profile.name):
        train = dataclasses.replace(profile.train, **study.train_changes[profile.name])
        profile = dataclasses.replace(profile, train=train)
    profile = dataclasses.replace(profile, reductions=_reductions_in(study, profile))
    return profile.with_metrics(**study.metric_changes) if study.metric_changes else profile


def _reductions_in(study, profile: Profile) -> tuple[str, ...]:
    """What ``profile`` scales down, in words, as it acts on ``study``: a study that sets its own epochs says
    so against its own paper-profile epochs, and one without pixels drops the spatial analyses' line."""
    lines = list(profile.reductions)
    if not study.spatial:
        lines = [line for line in lines if "spatial analyses" not in line]
    if study.train_changes.get(profile.name) and profile.name != "paper":
        full = dataclasses.replace(PAPER.train, **study.train_changes.get("paper", {}))
        every = profile.train.checkpoint_every
        epochs = (f"{profile.train.epochs:,} epochs instead of the study's {full.epochs:,} (timeline checkpoints "
                  f"every {every} epoch{'s' if every != 1 else ''})")
        lines = [epochs if " epochs instead of " in line else line for line in lines]
    return tuple(lines)
