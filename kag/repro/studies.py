"""Studies: the settings in which the reproduction judges the claims (issue 19).

A :class:`Study` names a dataset (:mod:`kag.datasets`), a model family and what it is for; the
claims registry, the profiles (sizes of work) and the training recipe are shared. ``mnist-mlp`` is
the paper's setting, and its reports stay where they always were (``reports/<profile>``); every other
study reports under ``reports/studies/<study>/<profile>``. Pick one with ``pytest claims
--kag-study NAME`` (or ``KAG_STUDY``); a new study on a new dataset is one entry here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Study:
    """One setting: its name, dataset (a :data:`kag.datasets.DATASETS` name), model family and purpose."""

    name: str
    dataset: str
    model: str
    summary: str
    not_applicable: dict[str, str] = field(default_factory=dict)  # claim id -> why it is not judged here

    def report_dir(self, profile: str, base: Path | None = None) -> Path:
        """Where this study's report of ``profile`` goes, under ``base`` (default: ``./reports``)."""
        base = base if base is not None else Path.cwd() / "reports"
        return base / profile if self.name == DEFAULT_STUDY else base / "studies" / self.name / profile


MLP_2_GELU = "the paper's 2-layer GELU MLP, 784 -> n -> n -> 10"

STUDIES = {s.name: s for s in (
    Study(name="mnist-mlp", dataset="mnist", model=MLP_2_GELU,
          summary="The paper's setting: MNIST, 2-layer GELU MLPs of widths 64-512."),
    Study(name="fashion-mlp", dataset="fashion-mnist", model=MLP_2_GELU,
          summary="The paper's grid on Fashion-MNIST: the same networks, recipe and claims on harder images of "
                  "the same size (28 x 28, 10 classes).",
          not_applicable={"C9": "its accuracy thresholds (97.5% standard, 95% augmented) are MNIST's; these MLPs "
                                "reach 87.6-89.0% on Fashion-MNIST (quick profile), so the claim as registered "
                                "cannot hold there"}),
)}
DEFAULT_STUDY = "mnist-mlp"
STUDY_CHOICES = tuple(STUDIES)


def get_study(name: str | None = None) -> Study:
    """The study ``name`` (None reads ``KAG_STUDY``, default ``mnist-mlp``); one-line ValueError if unknown."""
    name = name or os.environ.get("KAG_STUDY") or DEFAULT_STUDY
    if name not in STUDIES:
        raise ValueError(f"study={name!r} is unknown: choose one of {', '.join(STUDY_CHOICES)}")
    return STUDIES[name]


def why_not_judged(claim, profile) -> str | None:
    """Why ``claim`` is not judged under ``profile`` (a claim that does not apply to the profile's study,
    or one judged under other profiles only), or None when it is judged: the one rule of the pytest
    suite and of ``kag report``."""
    study = get_study(profile.study)
    if claim.id in study.not_applicable:
        return f"{claim.id} does not apply to the {study.name} study: {study.not_applicable[claim.id]}"
    if not claim.judged_under(profile):
        return f"{claim.id} is judged under the {', '.join(claim.profiles)} profile only"
    return None
