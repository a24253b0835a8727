"""What determines a result, as data: the training and the measurement configuration (SPEC §2-6).

A :class:`TrainConfig` (with the width, seed and regime) determines a trained model; a
:class:`MetricConfig` determines the metric table measured on it. Both are frozen dataclasses and
are hashed, field by field, into the cache keys (with the algorithm versions, see
:func:`kag.experiments.keys.key_fields`). Every ``[assumed]`` field is a choice of ours where the paper is silent.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

from kag.measurement import DEFAULTS


def _as_float(value: Any) -> Any:
    """``value`` as a float if it is a real number (not a bool), else unchanged."""
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model, except its width, seed and regime.

    A new field gets an entry in ``NEUTRAL`` (see :func:`key_fields`)."""

    # added after models were cached: at these values the model is trained as before the field existed
    NEUTRAL: ClassVar[dict[str, Any]] = {"rotate_deg": 0.0, "scale_range": None}

    epochs: int = 200
    lr: float = 1e-3  # [assumed] SPEC §2
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 1e-4  # [assumed] SPEC §2
    batch_size: int = 256
    train_subset: int | None = None  # first N training images; None = all 60,000
    translate_px: int = 4  # augmented regime: RandomAffine(translate=(4/28, 4/28))
    checkpoint_every: int = 10  # fc1 snapshots for the training timeline (C11)
    timeline_regimes: tuple[str, ...] = ("standard",)  # [assumed] which regimes keep a timeline
    # augmented regime, the assumption sweep (SPEC §8): RandomAffine(degrees=(-rotate_deg, rotate_deg),
    # scale=scale_range) on top of the translation; at 0.0 and None the augmentation is translation only
    rotate_deg: float = 0.0
    scale_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        # Real-valued fields are stored as floats, so 0 and 0.0 (or [0.9, 0.98] and (0.9, 0.98))
        # give one cache key; anything else is left for kag.experiments.train.check_train_config to reject.
        for name in ("lr", "weight_decay", "rotate_deg"):
            object.__setattr__(self, name, _as_float(getattr(self, name)))
        for name in ("betas", "scale_range"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(_as_float(v) for v in value))

    def checkpoint_epochs(self) -> tuple[int, ...]:
        """Epochs whose fc1 is kept (0 = the untrained network, always included)."""
        if self.checkpoint_every <= 0:
            return (0, self.epochs)
        return tuple(sorted(set(range(0, self.epochs + 1, self.checkpoint_every)) | {self.epochs}))


AUGMENTATION_FIELDS = ("translate_px", "rotate_deg", "scale_range")  # the TrainConfig fields only augmented training reads


def regime_config(config: TrainConfig, regime: str) -> TrainConfig:
    """``config`` as it acts on ``regime``: a standard model is trained without augmentation, so its
    augmentation fields take their defaults. A standard model then has one cache key whatever
    augmentation a grid point names, and is trained once (the keys at the defaults are unchanged).
    Its recorded shifted test accuracy is on the default shifts (±4 px)."""
    if regime == "augmented":
        return config
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in AUGMENTATION_FIELDS}
    return dataclasses.replace(config, **defaults)


@dataclass(frozen=True)
class MetricConfig:
    """Everything that determines the metric table of one trained model (SPEC §3-6).

    A new field gets an entry in ``NEUTRAL`` (see :func:`key_fields`)."""

    NEUTRAL: ClassVar[dict[str, Any]] = {"sampling": "uniform", "minor_magnitudes": False}

    n_images: int = 512  # test images for whole-image metrics
    n_spatial_images: int = 50  # test images for spatial analyses
    n_samples: int = DEFAULTS["n_samples"]  # sampled (rows, cols) pairs per analysis
    n_spatial_samples: int = 10_000
    ks: tuple[int, ...] = DEFAULTS["ks"]
    spatial_ks: tuple[int, ...] = (2, 3)
    n_rotations: int = DEFAULTS["n_rotations"]  # Haar rotations per image for RR (the appendix says 400); sizes: docs/SPEC.md §9
    n_rotation_images: int = DEFAULTS["rotation_images"]  # images over which RR is averaged
    rr_index_samples: int = DEFAULTS["rr_index_samples"]  # RR estimator: geometric mean over index samples of seeds index_seed, index_seed + 1, ...
    kl_bins: int = DEFAULTS["kl_bins"]  # [assumed]
    kl_smoothing: float = DEFAULTS["kl_smoothing"]  # [assumed]
    kl_central: float = 0.998  # the KL bins span the pooled central 99.8% of log10 minors (SPEC §5)
    jacobian_dtype: str = "float64"  # Jacobians that feed minors and row norms (SPEC §3)
    pr_sample_sizes: tuple[int, ...] = (1_000, 2_000, 5_000, 10_000, 20_000)  # PR ratio against S (L1, L2, k=3)
    n_bootstrap: int = DEFAULTS["n_bootstrap"]  # replicates of the measurement SE (images and index samples resampled)
    surrogate_rounds: int = 20  # norm-matched surrogate: alternating column/row rescalings (SPEC §5)
    surrogate_regimes: tuple[str, ...] = ("standard",)  # regimes measured against the surrogate (N2)
    radii: tuple[int, ...] = (7, 14, 21, 28)
    n_centres: int = 4  # random ball centres per spatial image, drawn per image (SPEC §6)
    separations: tuple[int, ...] = (0, 2, 4, 7, 10, 14)  # [assumed grid]
    index_seed: int = DEFAULTS["seed"]
    # [ours] each seed is measured on its own test images and index samples (seed s: images from
    # s * n_images on, index seeds index_seed + 1000 s, ...), so that measurement error shows in the
    # seed SD and the claims' error bars, instead of shifting every seed together (docs/SPEC.md §9)
    per_seed_sampling: bool = True
    null_init_offset: int = 10_000  # independent inits of seed s: seeds s + offset and s + 2·offset [assumed]
    eval_images: str = "clean"  # [assumed] augmented regime measured on "clean" or "augmented" test images
    eval_shift_seed: int = 42  # one fixed shift per test image when eval_images == "augmented"
    timeline_k: int = 3
    zero_row_percentile: float = DEFAULTS["zero_row_percentile"]
    # The pre-registered multiverse (docs/SPEC.md §7): estimator variants measured beside the primary.
    variant_sample_fraction: float = 0.2  # "fewer minors": the first 20% of every index sample (PR and RR)
    variant_sample_multiple: int = 2  # "more minors": the primary sample plus (multiple - 1) x S more (PR)
    rr_variant_images: int = 64  # "more images" for RR (the primary: n_rotation_images)
    rr_variant_rotations: tuple[int, ...] = (20, 100)  # "more rotations" for RR (the primary: n_rotations)
    # "uniform": every minor's columns uniform (SPEC §4); "support": each row's column drawn from where that
    # unit can see the input at all (its receptive field; local layers only, see kag.experiments.families) - a study's choice
    sampling: str = "uniform"
    # the magnitudes of the minors themselves (log10 of their 1st percentile and median, per role and (layer, k)):
    # the xor3d study's comparison with the published replication (FM1, docs/SPEC.md §8a)
    minor_magnitudes: bool = False
