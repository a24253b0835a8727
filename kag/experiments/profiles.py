"""Run sizes: one code path, three sizes of work (``paper``, ``quick``, ``smoke``).

A :class:`Profile` holds every parameter of SPEC.md as data: the widths, seeds and spatial widths
of the grid, a :class:`~kag.experiments.config.TrainConfig` (hashed into model cache keys) and a
:class:`~kag.experiments.config.MetricConfig` (hashed into metric cache keys). ``auto`` is ``paper`` on CUDA
and ``quick`` on CPU. A core module: the ``kag`` command's ``train`` and ``metrics`` take these sizes
without the reproduction; :mod:`kag.repro.profiles` adds the study a profile is judged in.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from kag.experiments.config import MetricConfig, TrainConfig
from kag.devices import resolve_device

WIDTHS_PAPER = (64, 128, 256, 512)
MIN_SEEDS = 2  # a verdict's error bars are mean ± 2 SD over seeds: one seed has no SD (docs/SPEC.md §7)


def check_verdict_seeds(seeds, where: str) -> None:
    """One-line ValueError (exit 2 in the CLI) when ``seeds`` are too few to judge a claim."""
    n = len(tuple(seeds))
    if n < MIN_SEEDS:
        raise ValueError(f"{where} = {list(seeds)} holds {n} seed{'s' if n != 1 else ''}: a verdict needs at least "
                         f"{MIN_SEEDS} (its error bars are mean ± 2 SD over seeds); give {MIN_SEEDS} or more seeds")


@dataclass(frozen=True)
class Profile:
    name: str
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    train: TrainConfig
    metrics: MetricConfig
    spatial_widths: tuple[int, ...] = (512,)  # [assumed] spatial analyses at the largest width (as C8)
    description: str = ""
    reductions: tuple[str, ...] = field(default=())  # what this profile scales down from SPEC, in words
    study: str = "mnist-mlp"  # the setting judged (kag.repro.studies): its dataset and model family

    def __post_init__(self) -> None:
        check_verdict_seeds(self.seeds, f"profile {self.name!r}: seeds")

    def with_metrics(self, **changes) -> "Profile":
        return dataclasses.replace(self, metrics=dataclasses.replace(self.metrics, **changes))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PAPER = Profile(
    name="paper",
    widths=WIDTHS_PAPER,
    seeds=(0, 1, 2, 3, 4),
    train=TrainConfig(),
    metrics=MetricConfig(),
    description="SPEC as written: 4 widths x 5 seeds x 2 regimes x 200 epochs, evaluated at SPEC sizes; for a GPU "
                "or a long CPU run.",
)

QUICK = Profile(
    name="quick",
    widths=WIDTHS_PAPER,
    seeds=(0, 1, 2),
    train=TrainConfig(epochs=8, checkpoint_every=1),
    metrics=MetricConfig(
        n_images=128,
        n_spatial_images=16,
        n_samples=2_000,
        n_spatial_samples=1_000,
        n_rotations=10,
        n_rotation_images=16,
        rr_index_samples=8,
        pr_sample_sizes=(250, 500, 1_000, 2_000, 4_000),
        n_bootstrap=100,
        n_centres=2,
        rr_variant_images=32,
        rr_variant_rotations=(20,),
    ),
    description="Every claim exercised on real trained models in minutes on a CPU.",
    reductions=(
        "3 seeds instead of 5",
        "8 epochs instead of 200 (timeline checkpoints every epoch)",
        "128 images / 2,000 minor samples for global metrics instead of 512 / 10,000",
        "16 images / 1,000 samples / 2 centres per image for spatial analyses instead of 50 / 10,000 / 4",
        "rotation ratio over 8 index samples x 16 images x 10 rotations instead of 16 x 32 x 10",
        "PR ratio against S up to 4,000 instead of 20,000; 100 bootstrap replicates instead of 200",
    ),
)

SMOKE = Profile(
    name="smoke",
    widths=(8, 16),
    seeds=(0, 1, 2),
    spatial_widths=(16,),
    train=TrainConfig(epochs=2, train_subset=2_048, checkpoint_every=1),
    metrics=MetricConfig(
        n_images=8,
        n_spatial_images=4,
        n_samples=100,
        n_spatial_samples=50,
        n_rotations=4,
        n_rotation_images=4,
        rr_index_samples=2,
        pr_sample_sizes=(50, 100),
        n_bootstrap=20,
        n_centres=1,
        radii=(7, 28),
        separations=(0, 14),
        rr_variant_images=8,
        rr_variant_rotations=(8,),
    ),
    description="Seconds; exercises the machinery for tests. Its verdicts mean nothing.",
    reductions=("tiny widths, 2 epochs on 2,048 images, tiny samples",),
)

PROFILES = {p.name: p for p in (PAPER, QUICK, SMOKE)}
PROFILE_CHOICES = ("auto", *PROFILES)


def resolve_profile(name: str | None = None, device: str | None = None) -> Profile:
    """A profile by name (``None`` reads ``KAG_PROFILE``, default ``auto``: ``paper`` when the device,
    default the one picked automatically, is CUDA, else ``quick``); one-line ValueError if unknown."""
    name = name or os.environ.get("KAG_PROFILE") or "auto"
    if name == "auto":
        return PAPER if resolve_device(device).type == "cuda" else QUICK
    if name not in PROFILES:
        raise ValueError(f"profile={name!r} is unknown: choose one of {', '.join(PROFILE_CHOICES)}")
    return PROFILES[name]
