"""The reproduction's profiles: the run sizes of :mod:`kag.experiments.profiles`, each judged in a study
(:mod:`kag.repro.studies`), whose dataset, model family and measurement changes it carries."""

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
    return profile.with_metrics(**study.metric_changes) if study.metric_changes else profile
