"""Studies: the settings in which the reproduction judges the claims (issue 19).

A :class:`Study` names a dataset (:mod:`kag.experiments.datasets`), a model family and what it is for; the
claims registry, the profiles (sizes of work) and the training recipe are shared. ``mnist-mlp`` is
the paper's setting, and its reports stay where they always were (``reports/<profile>``); every other
study reports under ``reports/studies/<study>/<profile>``. Pick one with ``pytest claims
--kag-study NAME`` (or ``KAG_STUDY``); a new study on a new dataset is one entry here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from kag.experiments.datasets import dataset_entry
from kag.experiments.families import DEFAULT_FAMILY, get_family
from kag.experiments.train import REGIMES


@dataclass(frozen=True, kw_only=True)
class Study:
    """One setting: its name, dataset (a :data:`kag.experiments.datasets.DATASETS` name), model family (a
    :func:`kag.experiments.families.families` name) and purpose; the claims that do not apply, each with why."""

    name: str
    dataset: str
    family: str = DEFAULT_FAMILY
    summary: str
    not_applicable: dict[str, str] = field(default_factory=dict)  # claim id -> why it is not judged here
    # how its measurement differs from the profile's (MetricConfig fields), e.g. sampling from receptive fields
    metric_changes: dict[str, object] = field(default_factory=dict)
    # how its training differs from the profile's, per profile name (TrainConfig fields), e.g. more epochs
    train_changes: dict[str, dict[str, object]] = field(default_factory=dict)
    widths: tuple[int, ...] | None = None  # its widths under the paper and quick profiles (None: the profile's)

    @property
    def regimes(self) -> tuple[str, ...]:
        """The training regimes that exist for its data (no augmented regime for data that is not augmentable)."""
        return REGIMES if dataset_entry(self.dataset).augmentable else ("standard",)

    @property
    def spatial(self) -> bool:
        """Whether its inputs are pixels on a grid (the spatial analyses, C5-C8), as its dataset says."""
        return dataset_entry(self.dataset).spatial

    @property
    def model(self) -> str:
        """The model family, in words."""
        return get_family(self.family).description

    @property
    def layers(self) -> tuple[str, ...]:
        """The hidden layers its networks are measured at, input side first."""
        return get_family(self.family).layers

    def report_dir(self, profile: str, base: Path | None = None) -> Path:
        """Where this study's report of ``profile`` goes, under ``base`` (default: ``./reports``)."""
        base = base if base is not None else Path.cwd() / "reports"
        return base / profile if self.name == DEFAULT_STUDY else base / "studies" / self.name / profile


STUDIES = {s.name: s for s in (
    Study(name="mnist-mlp", dataset="mnist", family="mlp2",
          summary="The paper's setting: MNIST, 2-layer GELU MLPs of widths 64-512."),
    Study(name="fashion-mlp", dataset="fashion-mnist", family="mlp2",
          summary="The paper's grid on Fashion-MNIST: the same networks, recipe and claims on harder images of "
                  "the same size (28 x 28, 10 classes).",
          not_applicable={"C9": "its accuracy thresholds (97.5% standard, 95% augmented) are MNIST's; these MLPs "
                                "reach 87.6-89.0% on Fashion-MNIST (quick profile), so the claim as registered "
                                "cannot hold there"}),
    Study(name="mnist-deep", dataset="mnist", family="mlp4",
          summary="A deeper network on MNIST: 4 hidden GELU layers of width n (64-512), the paper's recipe. The "
                  "per-layer claims are judged at all four layers; C2 compares L1 with L2 as registered, and C2-depth "
                  "asks whether the PR ratio falls with depth over all four."),
    Study(name="mnist-cnn", dataset="mnist", family="cnn",
          summary="A small CNN on MNIST: two strided GELU convolutions (L1: 4 x 14 x 14 units, L2: 8 x 7 x 7) and a "
                  "GELU fc layer of width n (L3), the paper's recipe; the spatial claims are measured on the conv and "
                  "fc representations alike (columns are always the input pixels).",
          not_applicable={"C4": "its width n is the fc layer's (L3); L1, where C4 is registered, is the first "
                                "convolution, with the same 4 channels at every n, so 'larger networks' is not what "
                                "n varies there"},
          # a conv unit sees 5x5 (L1) or 13x13 (L2) pixels: uniformly drawn minors are then almost all exactly 0
          # (L1, k = 3: about 1 in 5,000), so each row's column is drawn from its receptive field (SPEC §8a)
          metric_changes={"sampling": "support"}),
    Study(name="xor3d", dataset="xor3d", family="mlp1-3d",
          summary="The Freedman-Mulligan setting where KA geometry was first reported: one hidden GELU layer "
                  "(3 -> n -> 1, widths 4-64) fitting prod sin(pi x_i) on [-1, 1]^3 by mean squared error; standard "
                  "regime only. The spatial claims and C9 do not apply; FM1 compares the minors' magnitudes with the "
                  "published replication.",
          widths=(4, 8, 16, 32, 64),
          train_changes={"paper": {"epochs": 1000, "checkpoint_every": 50},
                         "quick": {"epochs": 200, "checkpoint_every": 10}},
          metric_changes={"minor_magnitudes": True},
          not_applicable={**{c: "its inputs are 3 numbers, not pixels on a grid: there are no balls, patches or "
                                "distances between pixels, and no augmented regime" for c in ("C5", "C6", "C7", "C8")},
                          "C9": "it is a regression (R² on the test points, no accuracy): the accuracy thresholds "
                                "of a classifier do not apply"}),
)}
DEFAULT_STUDY = "mnist-mlp"
STUDY_CHOICES = tuple(STUDIES)


def layers_of(profile) -> tuple[str, ...]:
    """The hidden layers of the networks of ``profile``'s study (("L1", "L2") for the paper's MLP)."""
    return get_study(profile.study).layers


def regimes_of(profile) -> tuple[str, ...]:
    """The training regimes of ``profile``'s study (("standard", "augmented") for the image studies)."""
    return get_study(profile.study).regimes


def get_study(name: str | None = None) -> Study:
    """The study ``name`` (None reads ``KAG_STUDY``, default ``mnist-mlp``); one-line ValueError if unknown."""
    name = name or os.environ.get("KAG_STUDY") or DEFAULT_STUDY
    if name not in STUDIES:
        raise ValueError(f"study={name!r} is unknown: choose one of {', '.join(STUDY_CHOICES)}")
    return STUDIES[name]


def does_not_apply(claim, study: Study) -> str | None:
    """Why ``claim`` does not apply to ``study`` at all (whatever the profile), or None."""
    if claim.studies and study.name not in claim.studies:
        return f"{claim.id} does not apply to the {study.name} study: it is registered for {', '.join(claim.studies)} only"
    if claim.id in study.not_applicable:
        return f"{claim.id} does not apply to the {study.name} study: {study.not_applicable[claim.id]}"
    if len(study.layers) < claim.min_layers:
        return (f"{claim.id} does not apply to the {study.name} study: it needs networks of at least "
                f"{claim.min_layers} hidden layers, and {study.model} has {len(study.layers)}")
    return None


def why_not_judged(claim, profile) -> str | None:
    """Why ``claim`` is not judged under ``profile`` (a claim that does not apply to the profile's study,
    or one judged under other profiles only), or None when it is judged: the one rule of the pytest
    suite and of ``kag report``."""
    reason = does_not_apply(claim, get_study(profile.study))
    if reason:
        return reason
    if not claim.judged_under(profile):
        return f"{claim.id} is judged under the {', '.join(claim.profiles)} profile only"
    return None
