"""Run sizes: one code path, three sizes of work (``paper``, ``quick``, ``smoke``).

A :class:`Profile` holds every parameter of SPEC.md as data. Its :class:`TrainConfig` part
determines the trained models (and is hashed into model cache keys); its :class:`MetricConfig`
part determines the measurements (hashed into metric cache keys). ``auto`` is ``paper`` on CUDA
and ``quick`` on CPU.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch

WIDTHS_PAPER = (64, 128, 256, 512)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model, except its width, seed and regime."""

    epochs: int = 200
    lr: float = 1e-3  # [assumed] SPEC §2
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 1e-4  # [assumed] SPEC §2
    batch_size: int = 256
    train_subset: int | None = None  # first N training images; None = all 60,000
    translate_px: int = 4  # augmented regime: RandomAffine(translate=(4/28, 4/28))
    checkpoint_every: int = 10  # fc1 snapshots for the training timeline (C11)
    timeline_regimes: tuple[str, ...] = ("standard",)  # [assumed] which regimes keep a timeline

    def checkpoint_epochs(self) -> tuple[int, ...]:
        """Epochs whose fc1 is kept (0 = the untrained network, always included)."""
        if self.checkpoint_every <= 0:
            return (0, self.epochs)
        return tuple(sorted(set(range(0, self.epochs + 1, self.checkpoint_every)) | {self.epochs}))


@dataclass(frozen=True)
class MetricConfig:
    """Everything that determines the metric table of one trained model (SPEC §3-6)."""

    n_images: int = 512  # test images for whole-image metrics
    n_spatial_images: int = 50  # test images for spatial analyses
    n_samples: int = 10_000  # sampled (rows, cols) pairs per analysis
    n_spatial_samples: int = 10_000
    ks: tuple[int, ...] = (1, 2, 3)
    spatial_ks: tuple[int, ...] = (2, 3)
    n_rotations: int = 100  # appendix says 400; configurable
    n_rotation_images: int = 512  # images over which RR is averaged
    kl_bins: int = 100  # [assumed]
    kl_smoothing: float = 1e-10  # [assumed]
    radii: tuple[int, ...] = (7, 14, 21, 28)
    n_centres: int = 4  # [assumed] random ball centres, each applied to every spatial image
    separations: tuple[int, ...] = (0, 2, 4, 7, 10, 14)  # [assumed grid]
    index_seed: int = 42
    null_init_offset: int = 10_000  # independent init of seed s uses seed s + offset [assumed]
    eval_images: str = "clean"  # [assumed] augmented regime measured on "clean" or "augmented" test images
    eval_shift_seed: int = 42  # one fixed shift per test image when eval_images == "augmented"
    timeline_k: int = 3
    zero_row_percentile: float = 1.0


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
    description="SPEC as written: 4 widths x 5 seeds x 2 regimes x 200 epochs; for a GPU or a long CPU run.",
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
        n_rotations=20,
        n_rotation_images=16,
        n_centres=2,
    ),
    description="Every claim exercised on real trained models in minutes on a CPU.",
    reductions=(
        "3 seeds instead of 5",
        "8 epochs instead of 200 (timeline checkpoints every epoch)",
        "128 images / 2,000 minor samples for global metrics instead of 512 / 10,000",
        "16 images / 1,000 samples / 2 centres for spatial analyses instead of 50 / 10,000 / 4",
        "rotation ratio over 16 images and 20 rotations instead of 512 and 100",
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
        n_centres=1,
        radii=(7, 28),
        separations=(0, 14),
    ),
    description="Seconds; exercises the machinery for tests. Its verdicts mean nothing.",
    reductions=("tiny widths, 2 epochs on 2,048 images, tiny samples",),
)

PAPER_CPU = Profile(
    name="paper-cpu",
    widths=PAPER.widths,
    seeds=PAPER.seeds,
    train=PAPER.train,  # identical training: the same models (and cache keys) as `paper`
    metrics=QUICK.metrics,  # evaluation sampling of quick: the metric tables fit a CPU run
    description="The paper's training exactly (200 epochs, 5 seeds, 4 widths, 2 regimes) with the evaluation "
                "sampling scaled down so that the metrics fit a CPU run.",
    reductions=QUICK.reductions[2:],  # quick's evaluation reductions (its first two are about training)
)

PROFILES = {p.name: p for p in (PAPER, PAPER_CPU, QUICK, SMOKE)}
PROFILE_CHOICES = ("auto", *PROFILES)


def get_profile(name: str | None = None, device: str | torch.device | None = None) -> Profile:
    """Resolve a profile name (``None`` reads ``KAG_PROFILE``, default ``auto``).

    ``auto`` is ``paper`` when the device (default: the one picked automatically) is CUDA, else ``quick``.
    """
    name = name or os.environ.get("KAG_PROFILE") or "auto"
    if name == "auto":
        dev = resolve_device(device)
        return PAPER if dev.type == "cuda" else QUICK
    if name not in PROFILES:
        raise ValueError(f"profile={name!r} is unknown: choose one of {', '.join(PROFILE_CHOICES)}")
    return PROFILES[name]


def default_device() -> torch.device:
    """CUDA when available, else CPU; ``KAG_DEVICE`` overrides."""
    env = os.environ.get("KAG_DEVICE")
    if env:
        return resolve_device(env)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn ``None``/"auto"/"cpu"/"cuda[:i]" into a device, with a one-line error for bad values."""
    if device is None or device == "auto":
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a device: use auto, cpu or cuda[:index]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} is not available: this machine has no CUDA GPU (use cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not supported: use auto, cpu or cuda[:index]")
    return dev
