"""The metric table of one trained model: every number the paper's measurements need, as rows.

For a model (width, seed, regime) and a :class:`~kag.experiments.config.MetricConfig`, :func:`compute_table`
measures (SPEC §3-6) and returns a :class:`~kag.experiments.table.ResultTable` (see :mod:`kag.experiments.table` for the
columns):

* ``global``: for L1 and L2 and every k, PR of the trained, init and null (independent init)
  networks, the PR ratios, KL against the init, RR and the RR ratios, the exact-zero share;
* ``zero_rows``: zero-row fractions of trained, init and null, and the threshold;
* ``timeline``: the L1 PR ratio at every stored checkpoint (condition = epoch);
* ``balls``, ``patches``, ``separation`` (spatial, when asked): PR ratios with the columns
  restricted to pixel pools, for L1/L2 and the spatial k's;
* ``accuracy``: test accuracy on clean and on shifted test images (from the model's manifest).

Every ratio compares the trained network with its own initialisation on the same images and the
same index sample. PR ratio = (mean PR of the trained network over images) / (mean PR of the init).
:func:`ensure_metrics` serves tables from the store, computing (and training) what is missing.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from filelock import Timeout

from kag import determinants, jacobians, metrics, spatial

from kag.experiments import data
from kag import surrogate as surrogate_module
from kag.checks import check_int, check_jacobian
from kag.experiments import table as table_module
from kag.experiments.allocator import keep_freed_memory
from kag.experiments.config import MetricConfig, TrainConfig
from kag.experiments.keys import key_fields, make_key
from kag.experiments.data import IMAGE_HEIGHT, IMAGE_WIDTH, MNIST, load_mnist
from kag.devices import resolve_device
from kag.errors import Busy, CorruptEntryError, MissingResults
from kag.determinants import minors_per_item, minors_unchecked, sample_indices, sample_pooled_indices
from kag.metrics import (
    BootstrapKL,
    bootstrap_kl,
    bootstrap_pr_ratio,
    bootstrap_pr_ratio_replicates,
    divergences,
    matched_nonzero,
    mean_ignoring_undefined,
    paired_kl_se,
    participation_ratio,
    ratio_of,
    rotation_matrices,
    rotation_maxima_at,
    se_of_mean,
    zero_row_fraction,
)
from kag.experiments.families import DEFAULT_FAMILY, ModelFamily, get_family
from kag.measurement import SAMPLINGS
from kag.experiments.pipeline import ModelRecord, ensure_models, model_key
from kag.progress import Progress
from kag.rr import (combined_se, per_sample_rr, rr_arithmetic_estimate, rr_index_samples, rr_ratio_estimate,
                    rr_variance_components)
from kag.spatial import ImageGrid
from kag.surrogate import norm_matched_variants
from kag.experiments.store import Store, source_digest
from kag.experiments.table import ResultTable, Row
from kag.experiments.train import check_regime, check_seeds, check_train_config, initial_state, shifted_test_images

# Version of this file's recipe (which images, how index samples and rotations are shared, how
# per-image values are pooled): part of every metric cache key, with the versions it builds on.
ANALYSIS_VERSION = 7  # 2: float64 Jacobians, RR over several index samples, ball centres per image,
# null2, surrogates, bootstrap SEs, PR against S; 3: RR's variance components; 4: RR ratio = geometric
# mean over index samples (the arithmetic mean of ratios is biased upwards); 5: measurement SEs of KL,
# zero-row fractions, accuracies and the timeline's PR ratios; 6: the multiverse (variant rows), bootstrap
# replicates of PR ratios (paired differences), SEs of spatial PR ratios, N2's KL and RR cells, one set of
# rotations per table, RR only for the networks judged on it (trained, init, null, surrogate); 7: the null's
# RR-ratio SE, so N1's RR cells floor their error bars at the measurement SE like every other cell
LAYERS = ("L1", "L2")
SPATIAL_ANALYSES = ("balls", "patches", "separation")
MNIST_GRID = ImageGrid(IMAGE_HEIGHT, IMAGE_WIDTH)
# The code behind a metric table: its digest is provenance only (see kag.experiments.pipeline.TRAINING_SOURCES).
METRIC_SOURCES = ("kag.experiments.data", "kag.experiments.families", "kag.experiments.families.mlp", "kag.experiments.families.cnn", "kag.jacobians", "kag.determinants", "kag.metrics", "kag.rotations", "kag.rr",
                  "kag.spatial", "kag.surrogate", "kag.experiments.analysis", "kag.experiments.table")
METRIC_DIGEST = source_digest(*METRIC_SOURCES)  # read at import: the code that runs (see kag.experiments.pipeline)


def measurement_versions() -> dict[str, int]:
    """The versions of every algorithm that determines a metric table (read at call time)."""
    return {"data": data.DATA_VERSION, "jacobians": jacobians.JACOBIAN_VERSION, "minors": determinants.MINORS_VERSION,
            "observables": metrics.OBSERVABLES_VERSION, "spatial": spatial.SPATIAL_VERSION,
            "surrogate": surrogate_module.SURROGATE_VERSION, "analysis": ANALYSIS_VERSION,
            "table": table_module.TABLE_VERSION}


def effective_config(config: MetricConfig, regime: str) -> MetricConfig:
    """Standard models are always measured on clean images; ``eval_images`` only moves augmented ones."""
    return config if regime == "augmented" else dataclasses.replace(config, eval_images="clean")


def metric_key(model_key: str, config: MetricConfig, regime: str, spatial: bool) -> str:
    """Cache key of one metric table: the model's key, the metric config, and the algorithm versions."""
    return make_key(
        "metrics",
        model=model_key,
        metrics=key_fields(effective_config(config, regime)),
        spatial=spatial,
        versions=measurement_versions(),
    )


def table_kind(config: MetricConfig, regime: str, spatial: bool) -> str:
    """A short digest of what a metric table measures and at which sizes: its key without the model.
    Tables of one kind and width cost about the same, so the store's event log records it and a
    sweep's time-left estimate prices a table by the tables of its kind (a ``paper``-size table
    costs tens of times a ``quick`` one)."""
    return make_key("table-kind", metrics=key_fields(effective_config(config, regime)), spatial=spatial,
                    versions=measurement_versions())[:12]


@dataclass(frozen=True)
class MetricTable:
    """One model's measured rows, the key they are stored under, and what is not a number (timings,
    keys, the ball centres)."""

    key: str
    table: ResultTable
    meta: dict[str, Any]
    variants: dict[str, ResultTable] = dataclasses.field(default_factory=dict)  # variant -> its own rows
    replicates: dict[str, np.ndarray] = dataclasses.field(default_factory=dict, compare=False)  # key -> replicates

    def table_of(self, variant: str = "primary") -> ResultTable:
        """The rows a claim reads under ``variant``: the primary's, with every row the variant measured
        itself (same analysis, layer, k, condition, role and observable) in its place."""
        own = self.variants.get(variant)
        if variant == PRIMARY or not own:
            return self.table
        ident = {r[:-1] for r in own}
        return ResultTable([r for r in self.table if r[:-1] not in ident] + list(own))


def evaluation_inputs(mnist: MNIST, config: MetricConfig, regime: str, n: int, device: torch.device,
                      max_shift: int = 4, start: int = 0) -> torch.Tensor:
    """``n`` test inputs from ``start`` on, normalised (``[n, 784]`` for images); shifted images for augmented
    models if asked."""
    total = mnist.test_images.shape[0]
    if start + n > total:
        raise ValueError(f"test inputs {start}..{start + n - 1} are not allowed: {mnist.name} has {total} test inputs "
                         "(lower n_images or turn off per_seed_sampling)")
    if effective_config(config, regime).eval_images == "augmented":
        images = shifted_test_images(mnist, max_shift, config.eval_shift_seed)[start : start + n]
    else:
        images = mnist.test_images[start : start + n]
    return mnist.normalize(images.to(device))


SEED_STRIDE = 1000  # index seeds of model seed s start at index_seed + 1000 s (RR uses index_seed + j, j < 1000)


def per_seed(config: MetricConfig, seed: int) -> tuple[MetricConfig, int]:
    """The measurement config of model seed ``seed`` and the multiplier of its first test image
    (``per_seed_sampling``); seed 0 is measured exactly as the config says."""
    if not config.per_seed_sampling:
        return config, 0
    return dataclasses.replace(config, index_seed=config.index_seed + SEED_STRIDE * seed), seed


MNIST_TEST_IMAGES = data.FILES["test_images"][1][0]  # 10,000


def check_metric_request(width: int, seeds: tuple[int, ...] | list[int], config: MetricConfig, spatial: bool, *,
                         n_test: int = MNIST_TEST_IMAGES, grid: ImageGrid = MNIST_GRID,
                         family: str = DEFAULT_FAMILY) -> None:
    """Raise a one-line ``ValueError`` naming the bad value if the tables of ``seeds`` at ``width``
    cannot be measured under ``config`` (checked before anything is trained): every k must fit
    the width (a k-minor needs k distinct hidden units), the test images of every seed must exist
    among the ``n_test`` (seed s reads images s·n_images... when ``per_seed_sampling``), and with
    ``spatial`` every ball, patch and separation must hold the spatial k's."""
    fam = get_family(family)
    fam.check_width(width)
    units = min(fam.unit_counts(width).values())
    seeds = check_seeds(seeds)
    if not isinstance(config, MetricConfig):
        raise ValueError(f"config must be a kag.experiments.config.MetricConfig, got {type(config).__name__}")
    _dtype(config)
    if config.eval_images not in ("clean", "augmented"):
        raise ValueError(f"eval_images={config.eval_images!r} is unknown: choose clean or augmented")
    if config.sampling not in SAMPLINGS:
        raise ValueError(f"sampling={config.sampling!r} is unknown: choose {' or '.join(SAMPLINGS)}")
    if not config.ks:
        raise ValueError("ks=() is not allowed: give at least one k")
    k_lists = [("ks", config.ks), ("timeline_k", (config.timeline_k,))]
    if spatial:
        k_lists.append(("spatial_ks", config.spatial_ks))
    for name, ks in k_lists:
        for k in ks:
            if check_int(name, k, 1) > units:
                fits = f"width={width}" if units == width else f"the {units} units of a layer at width={width}"
                raise ValueError(f"{name} asks for k={k}, more than {fits}: a k-minor needs k distinct hidden units "
                                 f"(use a width >= {k}, or smaller k's)")
    images = [("n_images", config.n_images)] + ([("n_spatial_images", config.n_spatial_images)] if spatial else [])
    for name, n in images:  # the block of test images of the last seed, as compute_table reads it
        n = check_int(name, n, 1)
        start = per_seed(config, max(seeds))[1] * n
        if n > n_test:
            raise ValueError(f"{name}={n} is more than the {n_test} MNIST test images: lower {name}")
        if start + n > n_test:
            raise ValueError(f"seed={max(seeds)} with {name}={n} needs test images {start}..{start + n - 1}, but "
                             f"MNIST has {n_test}: use seeds below {n_test // n}, lower {name}, or turn off "
                             "per_seed_sampling")
    check_int("n_samples", config.n_samples, 1)
    if not spatial:
        return
    check_int("n_spatial_samples", config.n_spatial_samples, 1)
    check_int("n_centres", config.n_centres, 1)
    k = max(config.spatial_ks, default=1)
    for radius in config.radii:  # centres are random pixels; the smallest ball is one around a corner
        try:
            corner = grid.ball(radius, 0)
        except ValueError as exc:
            raise ValueError(f"radii: {exc}") from None
        if corner.numel() < k:
            raise ValueError(f"radii holds radius={radius}, whose ball around a corner pixel holds {corner.numel()} "
                             f"pixel(s): spatial k={k} needs at least {k} (use a larger radius)")
    pools = [("patch", name, dict(pool=pool)) for name, pool in grid.patches().items()]
    pools += [("separation", d, dict(min_separation=d)) for d in config.separations]
    for what, name, where in pools:
        for k in config.spatial_ks:
            try:
                sample_indices(units, k, 1, grid=grid, seed=config.index_seed, **where)
            except ValueError as exc:
                raise ValueError(f"{what} {name!r} cannot hold spatial k={k}: {exc}") from None


PRIMARY = "primary"  # the pre-registered estimator; every other variant's rows are kept apart


class _Rows:
    """Collects the rows of one model's table; the identifying columns are fixed once."""

    def __init__(self, width: int, seed: int, regime: str, eval_images: str) -> None:
        self.ident = (width, seed, regime, eval_images)
        self.rows: list[Row] = []
        self.variants: dict[str, list[Row]] = {}  # variant -> its rows (the multiverse, docs/SPEC.md §7)
        self.replicates: dict[str, torch.Tensor] = {}  # replicate_key -> bootstrap replicates of a PR ratio

    def add(self, analysis: str, observable: str, value: float, *, layer: str | None = None, k: int | None = None,
            condition: str | None = None, role: str = "trained", variant: str | None = None) -> None:
        number = math.nan if value is None else float(value)
        row = Row(*self.ident, layer, k, analysis, condition, role, observable, number)
        (self.rows if variant in (None, PRIMARY) else self.variants.setdefault(variant, [])).append(row)


# Images per Jacobian chunk: bounds memory (n=512, float64: 64 images hold 200 MB per network and layer).
_IMAGE_CHUNK = 64
SURROGATES = {"surrogate": "both", "surrogate_rows": "rows", "surrogate_cols": "cols"}  # role -> matched norms
KL_SE_ROLES = ("trained", "null", "null2", "surrogate")  # the KLs that C1-KL, N1 and N2 judge get a bootstrap SE


def _minors(J: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """:func:`kag.determinants.minors` of a Jacobian the caller has checked once (:func:`_checked`) and
    indices the pipeline drew itself: a table takes many samples of each Jacobian, and scanning it
    for NaN at every one cost about 5% of a table's time."""
    return minors_unchecked(J, rows.to(J.device), cols.to(J.device))


def _checked(J: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every Jacobian of ``J`` validated (finite, [B, n, d]) once, by name."""
    for name, Jn in J.items():
        check_jacobian(Jn, f"the {name} network's Jacobian")
    return J


def _dtype(config: MetricConfig) -> torch.dtype:
    dtype = getattr(torch, config.jacobian_dtype, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"jacobian_dtype={config.jacobian_dtype!r} is not allowed: use float32 or float64")
    return dtype


def _chunked_jacobians(states: dict[str, dict[str, torch.Tensor]], x: torch.Tensor, layer: str, dtype: torch.dtype,
                       surrogates: dict[str, str], rounds: int, family: ModelFamily):
    """Yield ``(images slice, {network: J [b, n, d]})`` chunk by chunk (closed-form Jacobians of the
    family's hidden layer ``layer``), the norm-matched surrogates of the trained network (from the
    init's Jacobian) included."""
    for b0 in range(0, x.shape[0], _IMAGE_CHUNK):
        xs = x[b0 : b0 + _IMAGE_CHUNK]
        J = {name: family.layer_jacobian(state, xs, layer, dtype) for name, state in states.items()}
        if surrogates:
            J.update(norm_matched_variants(J_trained=J["trained"], J_init=J["init"], variants=surrogates,
                                           rounds=rounds))
        yield slice(b0, b0 + xs.shape[0]), J


def _mean_pr(m: torch.Tensor) -> tuple[float, int]:
    return mean_ignoring_undefined(participation_ratio(m))


def _divergences(m_p: torch.Tensor, m_q: torch.Tensor, config: MetricConfig) -> tuple[float, float]:
    """(KL, JS) of the log-minor histograms under ``config`` (NaN when neither side has a positive minor)."""
    return divergences(m_p, m_q, config.kl_bins, config.kl_smoothing, config.kl_central)


def _bootstrap_kl(m_p: torch.Tensor, m_q: torch.Tensor, config: MetricConfig) -> BootstrapKL:
    """KL, JS, their bootstrap SEs and replicates under ``config`` (NaN when neither side has a positive minor)."""
    return bootstrap_kl(m_p, m_q, config.kl_bins, config.kl_smoothing, config.kl_central,
                        n_boot=config.n_bootstrap, seed=config.index_seed)


def accuracy_se(accuracy: float | None, n_test: int) -> float:
    """Binomial SE of an accuracy measured on ``n_test`` images: sqrt(p (1 - p) / n)."""
    if accuracy is None or not math.isfinite(accuracy):
        return math.nan
    return math.sqrt(accuracy * (1.0 - accuracy) / n_test)


def _rotation_samples(n: int, d: int, config: MetricConfig, support: torch.Tensor | None = None
                      ) -> list[tuple[int, int, tuple[torch.Tensor, torch.Tensor]]]:
    """(index sample number, k, sample) of the RR estimator (:func:`kag.rr.rr_index_samples`)."""
    return rr_index_samples(n, d, config.ks, config.n_samples, config.rr_index_samples, config.index_seed, support)



def _support(config: MetricConfig, family: ModelFamily, width: int, layer: str) -> torch.Tensor | None:
    """The receptive fields minors are drawn from under ``sampling="support"`` (None: uniform columns)."""
    return family.support(width, layer) if config.sampling == "support" else None


# -- the multiverse (docs/SPEC.md §7): estimator variants measured beside the primary ------------------
PR_VARIANTS = ("nonzero-matched", "fewer-minors", "more-minors")
RR_ARITHMETIC = "rr-arithmetic-mean"
EXTRA_SAMPLE_SEED = 500  # the "more minors" extra index sample: index_seed + 500 (RR uses index_seed + j, j < 500)
PR_ROLES = ("trained", "null")  # PR ratios against the init that claims judge (C1-PR, C2-C8; N1)
RR_ROLES = ("trained", "init", "null", "surrogate")  # RR only where judged: C1-RR, N1, N2


def rr_variants(config: MetricConfig) -> tuple[str, ...]:
    """The RR variants of ``config``: fewer minors, more images, each extra rotation count, arithmetic mean."""
    return ("rr-fewer-minors", "rr-more-images", *(f"rr-rotations-{r}" for r in config.rr_variant_rotations),
            RR_ARITHMETIC)


def fewer_samples(config: MetricConfig, spatial: bool = False) -> int:
    """S of the "fewer minors" variant: the first ``variant_sample_fraction`` of the primary sample."""
    s = config.n_spatial_samples if spatial else config.n_samples
    return max(1, int(round(config.variant_sample_fraction * s)))


def check_variant_config(config: MetricConfig) -> None:
    """One-line ValueError when the multiverse's sizes cannot be measured under ``config``."""
    if not 0 < config.variant_sample_fraction < 1:
        raise ValueError(f"variant_sample_fraction={config.variant_sample_fraction!r} is not allowed: "
                         "use a fraction strictly between 0 and 1")
    check_int("variant_sample_multiple", config.variant_sample_multiple, 2)
    if not config.n_rotation_images <= check_int("rr_variant_images", config.rr_variant_images, 1) \
            <= config.n_images:
        raise ValueError(f"rr_variant_images={config.rr_variant_images} is not allowed: use a count from "
                         f"n_rotation_images={config.n_rotation_images} to n_images={config.n_images}")
    for r in config.rr_variant_rotations:
        if check_int("rr_variant_rotations", r, 1) <= config.n_rotations:
            raise ValueError(f"rr_variant_rotations holds {r}: each must exceed n_rotations={config.n_rotations}")


def replicate_key(analysis: str, layer: str, k: int, condition: str | None, role: str, variant: str) -> str:
    """Where a PR ratio's bootstrap replicates are stored in a metric table (see :class:`MetricTable`)."""
    return "|".join(str(x) for x in (analysis, layer, k, condition or "-", role, variant))


def _pr_variant_minors(a: torch.Tensor, b: torch.Tensor, extra: tuple[torch.Tensor, torch.Tensor] | None,
                       fewer: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The paired minors ``[B, S']`` of (numerator, init) under every PR variant."""
    out = {PRIMARY: (a, b), "nonzero-matched": matched_nonzero(a, b), "fewer-minors": (a[:, :fewer], b[:, :fewer])}
    if extra is not None:
        out["more-minors"] = (torch.cat([a, extra[0]], dim=1), torch.cat([b, extra[1]], dim=1))
    return out


def _lazy_rotations(n: int, config: MetricConfig, device: torch.device):
    """The table's Haar rotations, built once on first use and shared by layers, networks and variants
    (the first R' are those of a run with R' rotations)."""
    cache: list[torch.Tensor] = []

    def get() -> torch.Tensor:
        if not cache:
            cache.append(rotation_matrices(n, max((config.n_rotations, *config.rr_variant_rotations)),
                                           config.index_seed, device))
        return cache[0]
    return get


@dataclass
class _GlobalSamples:
    """The index samples and rotations of the global analysis for a layer of ``n`` units (layers of the
    same size share them, as L1 and L2 of an MLP always have)."""

    samples: dict[int, tuple[torch.Tensor, torch.Tensor]]
    extra: dict[int, tuple[torch.Tensor, torch.Tensor]]
    rr_samples: list
    rotations: Any
    long_sample: tuple[torch.Tensor, torch.Tensor] | None

    @classmethod
    def of(cls, n: int, d: int, config: MetricConfig, device: torch.device,
           support: torch.Tensor | None = None) -> "_GlobalSamples":
        extra_size = (config.variant_sample_multiple - 1) * config.n_samples
        s_max = max(config.pr_sample_sizes, default=0)
        at = dict(n_cols=d, support=support)
        return cls(
            samples={k: sample_indices(n, k, config.n_samples, seed=config.index_seed, **at) for k in config.ks},
            extra={k: sample_indices(n, k, extra_size, seed=config.index_seed + EXTRA_SAMPLE_SEED, **at)
                   for k in config.ks},
            rr_samples=_rotation_samples(n, d, config, support),
            rotations=_lazy_rotations(n, config, device),
            long_sample=sample_indices(n, max(config.ks), s_max, seed=config.index_seed, **at) if s_max else None,
        )


def global_metrics(rows: _Rows, states: dict[str, dict[str, torch.Tensor]], x: torch.Tensor,
                   config: MetricConfig, surrogate: bool, family: ModelFamily | None = None) -> None:
    """``global``, ``zero_rows`` and ``sampling`` rows of every hidden layer of ``family`` (default: the
    paper's MLP) for the trained, init, null and null2 (independent inits) networks, and the
    norm-matched surrogates of the trained one when ``surrogate``; the multiverse's variant rows and
    the PR ratios' bootstrap replicates beside them."""
    family = family or get_family()
    dtype = _dtype(config)
    d = x.shape[1]
    width = family.width_of(states["trained"])
    by_size: dict[tuple, _GlobalSamples] = {}  # layers of one size share samples (unless each has its support)
    fewer = fewer_samples(config)
    k_s = max(config.ks)
    surrogates = SURROGATES if surrogate else {}
    for layer in family.layers:
        n, support = family.units(width, layer), _support(config, family, width, layer)
        shared = (n,) if support is None else (n, layer)
        if shared not in by_size:
            by_size[shared] = _GlobalSamples.of(n, d, config, x.device, support)
        at = by_size[shared]
        samples, extra, rr_samples, rotations, long_sample = (at.samples, at.extra, at.rr_samples, at.rotations,
                                                              at.long_sample)
        m: dict[str, dict[int, list[torch.Tensor]]] = {}
        m_extra: dict[str, dict[int, list[torch.Tensor]]] = {}
        norms: dict[str, list[torch.Tensor]] = {}
        rr_parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}  # first n_rr images, every rotation
        rr_more: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}  # images n_rr.. n_rr_more, primary rotations
        long: dict[str, list[torch.Tensor]] = {"trained": [], "init": []}
        for where, J in _chunked_jacobians(states, x, layer, dtype, surrogates, config.surrogate_rounds, family):
            for name, Jn in _checked(J).items():
                for k in config.ks:
                    m.setdefault(name, {}).setdefault(k, []).append(_minors(Jn, *samples[k]))
                    if name in (*PR_ROLES, "init", "surrogate"):
                        m_extra.setdefault(name, {}).setdefault(k, []).append(_minors(Jn, *extra[k]))
                norms.setdefault(name, []).append(torch.linalg.vector_norm(Jn, dim=2))
                if name in RR_ROLES:  # RR on the first images; float32 matmuls (their error is far below
                    _rotation_parts(Jn, where, rr_samples, rotations, config, rr_parts.setdefault(name, []),
                                    rr_more.setdefault(name, []))  # the spread of the max)
                if long_sample is not None and name in long:
                    long[name].append(_minors(Jn, *long_sample))
            del J
        m = {name: {k: torch.cat(parts) for k, parts in per_k.items()} for name, per_k in m.items()}
        m_extra = {name: {k: torch.cat(parts) for k, parts in per_k.items()} for name, per_k in m_extra.items()}
        rr = {name: tuple(torch.cat([p[i] for p in parts], dim=2) for i in (0, 1)) for name, parts in rr_parts.items()}
        rr_m = {name: tuple(torch.cat([p[i] for p in parts], dim=2) for i in (0, 1)) if parts else None
                for name, parts in rr_more.items()}  # aligned [J, P, B'], rotated [J, P, B', R]
        _zero_rows(rows, layer, {name: torch.cat(v) for name, v in norms.items()}, config)
        _sampling_rows(rows, layer, k_s, {name: torch.cat(v) for name, v in long.items()}, config)
        for k in config.ks:
            of_k = [i for i, (_, kk, _) in enumerate(rr_samples) if kk == k]
            _global_rows(rows, layer, k, {name: per_k[k] for name, per_k in m.items()}, config)
            _pr_variant_rows(rows, layer, k, {name: per_k[k] for name, per_k in m.items()},
                             {name: per_k[k] for name, per_k in m_extra.items()}, fewer, config)
            parts = {name: (a[of_k], q[of_k]) for name, (a, q) in rr.items()}
            more = {name: None if v is None else (v[0][of_k], v[1][of_k]) for name, v in rr_m.items()}
            _rr_rows(rows, layer, k, parts, more, config)


def _rotation_parts(Jn: torch.Tensor, where: slice, rr_samples, rotations, config: MetricConfig,
                    parts: list, more: list) -> None:
    """Rotation maxima of one chunk's images: the first ``n_rotation_images`` under every rotation any
    variant needs, the next ones up to ``rr_variant_images`` under the primary's rotations only."""
    samples = [smp for _, _, smp in rr_samples]
    sizes = [fewer_samples(config)] if fewer_samples(config) < config.n_samples else []
    spans = ((parts, 0, config.n_rotation_images, None),
             (more, config.n_rotation_images, config.rr_variant_images, config.n_rotations))
    for out, lo, hi, n_rot in spans:
        first, last = max(lo, where.start), min(hi, where.stop)
        if last > first:
            Q = rotations()
            Jc = Jn[first - where.start : last - where.start].to(torch.float32)
            out.append(rotation_maxima_at(Jc, samples, Q if n_rot is None else Q[:n_rot], sizes))


def _pr_variant_rows(rows: _Rows, layer: str, k: int, m: dict[str, torch.Tensor], m_extra: dict[str, torch.Tensor],
                     fewer: int, config: MetricConfig) -> None:
    """PR ratios (trained and null against the init; trained against the surrogate) with their bootstrap
    SEs under the primary and every PR variant; the replicates of trained/init are kept for paired
    differences (C2, C3)."""
    pairs = [(name, "init", name) for name in PR_ROLES if name in m]
    if "surrogate" in m:
        pairs.append(("trained", "surrogate", "surrogate"))
    for num, den, role in pairs:
        extra = (m_extra[num], m_extra[den]) if num in m_extra and den in m_extra else None
        for variant, (a, b) in _pr_variant_minors(m[num], m[den], extra, fewer).items():
            ratio, reps = bootstrap_pr_ratio_replicates(a, b, n_boot=config.n_bootstrap, seed=config.index_seed)
            se = float(reps.std(correction=1))
            observable = "pr_ratio" if den == "init" else "pr_trained_over"
            if variant == PRIMARY:  # the primary's ratio rows are written by _global_rows
                rows.add("global", f"{observable}_se", se, layer=layer, k=k, role=role)
                if observable == "pr_trained_over":
                    rows.add("global", observable, ratio, layer=layer, k=k, role=role)
            else:
                rows.add("global", observable, ratio, layer=layer, k=k, role=role, variant=variant)
                rows.add("global", f"{observable}_se", se, layer=layer, k=k, role=role, variant=variant)
            if role == "trained" and den == "init":
                rows.replicates[replicate_key("global", layer, k, None, role, variant)] = reps


def _rr_rows(rows: _Rows, layer: str, k: int, parts: dict[str, tuple[torch.Tensor, torch.Tensor]],
             more: dict[str, tuple[torch.Tensor, torch.Tensor] | None], config: MetricConfig) -> None:
    """RR, RR ratios and their three-source SEs under the primary and every RR variant. ``parts`` =
    (aligned ``[J, P, B]``, rotated ``[J, P, B, R_max]``) of the first images; ``more`` the next
    images' under the primary's rotations; P: the "fewer minors" prefix (if any), then all minors."""
    if not parts:
        return
    R = config.n_rotations

    def pick(name: str, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
        a, q = parts[name]
        if variant == "rr-fewer-minors" and a.shape[1] > 1:
            return a[:, 0], q[:, 0, :, :R]
        if variant == "rr-more-images" and more.get(name) is not None:
            a2, q2 = more[name]
            return torch.cat([a[:, -1], a2[:, -1]], dim=1), torch.cat([q[:, -1, :, :R], q2[:, -1]], dim=1)
        if variant.startswith("rr-rotations-"):
            return a[:, -1], q[:, -1, :, : int(variant.rsplit("-", 1)[1])]
        return a[:, -1], q[:, -1, :, :R]

    for variant in (PRIMARY, *rr_variants(config)):
        tag = None if variant == PRIMARY else variant
        if variant == "rr-fewer-minors" and parts["trained"][0].shape[1] < 2:
            continue
        estimate = rr_arithmetic_estimate if variant == RR_ARITHMETIC else rr_ratio_estimate
        picked = {name: pick(name, variant) for name in parts}
        rr_mean = {name: per_sample_rr(*picked[name], *picked["init"])[0] for name in picked}

        def add(observable: str, value: float, role: str = "trained") -> None:
            rows.add("global", observable, value, layer=layer, k=k, role=role, variant=tag)

        for name in picked:
            if variant == PRIMARY or name != "init":
                add("rr", float(np.mean(rr_mean[name])), name)
            if name in PR_ROLES:
                add("rr_ratio", estimate(rr_mean[name], rr_mean["init"]), name)
        components = rr_variance_components((*picked["trained"], *picked["init"]), config.n_bootstrap,
                                            config.index_seed, estimate)
        if variant == PRIMARY:
            for factor, se in components.items():
                rows.add("rr_variance", "rr_ratio_se", se, layer=layer, k=k, condition=factor)
        add("rr_ratio_se", combined_se(components))
        if "null" in picked:  # N1's RR cells: the null's RR ratio gets its own three-source SE
            add("rr_ratio_se", combined_se(rr_variance_components(
                (*picked["null"], *picked["init"]), config.n_bootstrap, config.index_seed, estimate)), "null")
        if "surrogate" in picked:  # N2: RR(trained) / RR(surrogate), its own three-source SE
            add("rr_trained_over", estimate(rr_mean["trained"], rr_mean["surrogate"]), "surrogate")
            add("rr_trained_over_se", combined_se(rr_variance_components(
                (*picked["trained"], *picked["surrogate"]), config.n_bootstrap, config.index_seed, estimate)),
                "surrogate")


def _zero_rows(rows: _Rows, layer: str, norms: dict[str, torch.Tensor], config: MetricConfig) -> None:
    """Zero-row fractions of every network against the init's threshold (``norms [B, n]``)."""
    for name, values in norms.items():
        z = zero_row_fraction(values[..., None], norms["init"][..., None], config.zero_row_percentile)
        rows.add("zero_rows", "zero_row_fraction", z.trained, layer=layer, role=name)
        per_image = (values <= z.threshold).double().mean(dim=1)  # the threshold fixed: SE over images
        rows.add("zero_rows", "zero_row_fraction_se", se_of_mean(per_image), layer=layer, role=name)
        if name == "init":
            rows.add("zero_rows", "zero_row_threshold", z.threshold, layer=layer, role="none")


def _sampling_rows(rows: _Rows, layer: str, k: int, long: dict[str, torch.Tensor], config: MetricConfig) -> None:
    """``sampling`` rows: the PR ratio on the first S minors of one long index sample, for every S."""
    if not long["trained"].numel():
        return
    for size in config.pr_sample_sizes:
        pr = {name: _mean_pr(values[:, :size])[0] for name, values in long.items()}
        rows.add("sampling", "pr_ratio", ratio_of(pr["trained"], pr["init"]), layer=layer, k=k, condition=str(size))


def _global_rows(rows: _Rows, layer: str, k: int, m: dict[str, torch.Tensor], config: MetricConfig) -> None:
    """The ``global`` PR and divergence rows of one (layer, k): ``m`` minors ``[B, S]`` per network
    (RR: :func:`_rr_rows`; SEs of PR ratios and the variants: :func:`_pr_variant_rows`)."""

    def add(observable: str, value: float, role: str = "trained") -> None:
        rows.add("global", observable, value, layer=layer, k=k, role=role)

    pr = {name: _mean_pr(values) for name, values in m.items()}
    kl: dict[str, Any] = {}
    for name in m:
        add("pr", pr[name][0], name)
        add("pr_undefined", pr[name][1], name)
        add("zero_minor_fraction", float((m[name] == 0).double().mean()), name)
        if config.minor_magnitudes:
            for observable, q in (("log10_minor_q01", 0.01), ("log10_minor_median", 0.5)):
                add(observable, log10_quantile(m[name], q), name)
        if name != "init":
            add("pr_ratio", ratio_of(pr[name][0], pr["init"][0]), name)
            if name in KL_SE_ROLES:
                kl[name] = _bootstrap_kl(m[name], m["init"], config)
                add("kl_se", kl[name].se, name)
                add("js_se", kl[name].js_se, name)
                add("kl", kl[name].kl, name)
                add("js", kl[name].js, name)
            else:
                kl_value, js = _divergences(m[name], m["init"], config)
                kl[name] = BootstrapKL(kl_value, math.nan, js)
                add("kl", kl_value, name)
                add("js", js, name)
    for role in SURROGATES:
        if role in m:  # how much of KL the norms alone explain: KL(trained) / KL(surrogate)
            add("kl_trained_over", ratio_of(kl["trained"].kl, kl[role].kl), role)
    if "surrogate" in m:  # N2's KL cell: KL(trained‖init) - KL(surrogate‖init), SE from paired replicates
        for i, divergence in enumerate(("kl", "js")):
            t, sg = getattr(kl["trained"], divergence), getattr(kl["surrogate"], divergence)
            add(f"{divergence}_minus_surrogate", t - sg, "surrogate")
            add(f"{divergence}_minus_surrogate_se", paired_kl_se(kl["trained"], kl["surrogate"], i), "surrogate")


def log10_quantile(m: torch.Tensor, q: float) -> float:
    """log10 of the ``q`` quantile of the minors ``m`` (all images and samples pooled). A quantile that is
    exactly 0 counts as the smallest float64 (log10 = -323.3), so the table stays finite and a collapse to
    exact zeros reads as the largest possible drop."""
    if not m.numel():
        return math.nan
    value = float(torch.quantile(m.reshape(-1).double(), q))
    return math.log10(max(value, 5e-324)) if math.isfinite(value) else math.nan


def timeline_metrics(rows: _Rows, checkpoints: dict[int, dict[str, torch.Tensor]], x: torch.Tensor,
                     config: MetricConfig, family: ModelFamily, width: int) -> None:
    """``timeline`` rows: L1 PR ratio (k = ``timeline_k``) at every checkpoint, relative to epoch 0
    (checkpoints hold the first layer's parameters of a ``family`` network of ``width``)."""
    if 0 not in checkpoints:
        return
    n = family.units(width, "L1")
    k = min(config.timeline_k, n)
    support = _support(config, family, width, "L1")
    idx_rows, idx_cols = sample_indices(n, k, config.n_samples, n_cols=x.shape[1], seed=config.index_seed,
                                        support=support)
    dtype = _dtype(config)

    def minors_of(snapshot: dict[str, torch.Tensor]) -> torch.Tensor:
        chunks = (check_jacobian(family.layer_jacobian(snapshot, x[b0 : b0 + _IMAGE_CHUNK], "L1", dtype))
                  for b0 in range(0, x.shape[0], _IMAGE_CHUNK))
        return torch.cat([_minors(J, idx_rows, idx_cols) for J in chunks])

    base = minors_of(checkpoints[0])
    base_pr = _mean_pr(base)[0]
    for epoch in sorted(checkpoints):
        m = minors_of(checkpoints[epoch])
        _, se = bootstrap_pr_ratio(m, base, n_boot=config.n_bootstrap, seed=config.index_seed)
        rows.add("timeline", "pr_ratio", ratio_of(_mean_pr(m)[0], base_pr), layer="L1", k=k, condition=str(epoch))
        rows.add("timeline", "pr_ratio_se", se, layer="L1", k=k, condition=str(epoch))


def _pooled_rows(rows: _Rows, analysis: str, condition: str, layer: str, k: int, m: dict[str, torch.Tensor],
                 m_extra: dict[str, torch.Tensor], pool_size: float, config: MetricConfig) -> None:
    """Rows of one spatial condition from the minors ``[items, S]`` of every network (items = image or
    (image, pool) pairs; PRs of all items are pooled): the PR ratio with its bootstrap SE and
    replicates (paired differences: C7, C8) under the primary and every PR variant; ``m_extra``
    the "more minors" variant's extra sample."""

    def add(observable: str, value: float, role: str = "trained", variant: str | None = None) -> None:
        rows.add(analysis, observable, value, layer=layer, k=k, condition=condition, role=role, variant=variant)

    pr = {name: _mean_pr(values) for name, values in m.items()}
    for name in m:
        add("pr", pr[name][0], name)
        add("pr_undefined", pr[name][1], name)
        add("zero_minor_fraction", float((m[name] == 0).double().mean()), name)
    if "surrogate" in m:
        add("pr_trained_over", ratio_of(pr["trained"][0], pr["surrogate"][0]), "surrogate")
    add("pool_size", pool_size, "none")
    extra = (m_extra["trained"], m_extra["init"]) if m_extra else None
    variants = _pr_variant_minors(m["trained"], m["init"], extra, fewer_samples(config, spatial=True))
    for variant, (a, b) in variants.items():
        ratio, reps = bootstrap_pr_ratio_replicates(a, b, n_boot=config.n_bootstrap, seed=config.index_seed)
        add("pr_ratio", ratio if variant != PRIMARY else ratio_of(pr["trained"][0], pr["init"][0]), variant=variant)
        add("pr_ratio_se", float(reps.std(correction=1)), variant=variant)
        rows.replicates[replicate_key(analysis, layer, k, condition, "trained", variant)] = reps


def spatial_metrics(rows: _Rows, states: dict[str, dict[str, torch.Tensor]], x: torch.Tensor,
                    config: MetricConfig, surrogate: bool, grid: ImageGrid = MNIST_GRID,
                    family: ModelFamily | None = None) -> list[list[int]]:
    """Balls of growing radius around random centres drawn per image, the five patches, and
    well-separated pixels (SPEC §6), for every hidden layer of ``family`` (default: the paper's MLP);
    returns the ball centres of every image (pixel indices). Each condition also gets a second,
    independent index sample for the "more minors" variant."""
    family = family or get_family()
    dtype = _dtype(config)
    width, B, S = family.width_of(states["trained"]), x.shape[0], config.n_spatial_samples
    centres = grid.random_centres(B * config.n_centres, seed=config.index_seed).view(B, config.n_centres)
    images = torch.arange(B).repeat_interleave(config.n_centres)  # item -> image, items = (image, centre)
    ball_pools = {r: [grid.ball(r, int(c)) for c in centres.flatten()] for r in config.radii}
    ball_sizes = {r: float(np.mean([p.numel() for p in pools])) for r, pools in ball_pools.items()}
    seeds = {PRIMARY: (config.index_seed, S),
             "more-minors": (config.index_seed + EXTRA_SAMPLE_SEED, (config.variant_sample_multiple - 1) * S)}

    def index_samples(n: int, support: torch.Tensor | None) -> tuple[dict, dict]:
        """The ball samples and the (analysis, condition, k, which) -> sample of a layer of ``n`` units;
        with ``support``, columns from each unit's receptive field, except for the separations (which
        place the columns themselves: uniform, as without support)."""
        balls = {(r, k, which): sample_pooled_indices(n, k, size, pools, n_cols=grid.n_columns, seed=seed,
                                                      support=support)
                 for r, pools in ball_pools.items() for k in config.spatial_ks
                 for which, (seed, size) in seeds.items()}
        # (analysis, condition, k, which) -> index sample, shared by every image
        fixed = {("patches", name, k, which): sample_indices(n, k, size, grid=grid, pool=pool, seed=seed,
                                                             support=support)
                 for name, pool in grid.patches().items() for k in config.spatial_ks
                 for which, (seed, size) in seeds.items()}
        fixed.update({("separation", str(d), k, which): sample_indices(n, k, size, grid=grid,
                                                                       min_separation=float(d), seed=seed)
                      for d in config.separations for k in config.spatial_ks
                      for which, (seed, size) in seeds.items()})
        return balls, fixed

    by_size: dict[tuple, tuple[dict, dict]] = {}
    sizes = {("patches", name): float(pool.numel()) for name, pool in grid.patches().items()}
    sizes.update({("separation", str(d)): float(grid.n_columns) for d in config.separations})
    surrogates = {"surrogate": "both"} if surrogate else {}
    paired = ("trained", "init")  # the networks of the PR ratio's variants
    for layer in family.layers:
        n, support = family.units(width, layer), _support(config, family, width, layer)
        shared = (n,) if support is None else (n, layer)
        if shared not in by_size:
            by_size[shared] = index_samples(n, support)
        balls, fixed = by_size[shared]
        chunks = _concat_chunks(states, x, layer, dtype, surrogates, config.surrogate_rounds, family)
        J = _checked({name: torch.cat(parts) for name, parts in chunks.items()})
        for k in config.spatial_ks:
            for r in config.radii:
                m, m_extra = ({name: minors_per_item(Jn, images, *balls[(r, k, which)]) for name, Jn in J.items()
                               if which == PRIMARY or name in paired} for which in seeds)
                _pooled_rows(rows, "balls", str(r), layer, k, m, m_extra, ball_sizes[r], config)
            for (analysis, condition, kk, which), sample in fixed.items():
                if kk == k and which == PRIMARY:
                    extra = fixed[(analysis, condition, kk, "more-minors")]
                    m = {name: _minors(Jn, *sample) for name, Jn in J.items()}
                    m_extra = {name: _minors(J[name], *extra) for name in paired}
                    _pooled_rows(rows, analysis, condition, layer, k, m, m_extra, sizes[(analysis, condition)],
                                 config)
    return centres.tolist()


def _concat_chunks(states, x, layer, dtype, surrogates, rounds, family) -> dict[str, list[torch.Tensor]]:
    parts: dict[str, list[torch.Tensor]] = {}
    for _, J in _chunked_jacobians(states, x, layer, dtype, surrogates, rounds, family):
        for name, Jn in J.items():
            parts.setdefault(name, []).append(Jn)
    return parts


def compute_table(record: ModelRecord, train: TrainConfig, config: MetricConfig, mnist: MNIST,
                  device: torch.device, spatial: bool) -> tuple[ResultTable, dict[str, Any]]:
    """The full metric table of one model (see the module docstring) and its metadata."""
    keep_freed_memory()  # its large temporaries are reused, not mapped afresh each time (kag.experiments.allocator)
    config, block = per_seed(effective_config(config, record.regime), record.seed)
    family = get_family(record.family)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    states = {
        "trained": record.final_state,
        "init": record.init_state,
        "null": initial_state(record.width, record.seed + config.null_init_offset, record.family),
        "null2": initial_state(record.width, record.seed + 2 * config.null_init_offset, record.family),
    }
    surrogate = record.regime in config.surrogate_regimes
    rows = _Rows(record.width, record.seed, record.regime, config.eval_images)
    n_test = int(mnist.test_labels.shape[0])
    if mnist.task == "regression":  # a regression has no accuracy: its fit is R² on the test points
        rows.add("accuracy", "test_r2", record.manifest.get("test_r2"), condition="clean")
    else:
        for images, accuracy in (("clean", record.test_accuracy),
                                 ("shifted", record.manifest.get("shifted_test_accuracy"))):
            rows.add("accuracy", "test_accuracy", accuracy, condition=images)
            rows.add("accuracy", "test_accuracy_se", accuracy_se(accuracy, n_test), condition=images)
    x = evaluation_inputs(mnist, config, record.regime, config.n_images, device, train.translate_px,
                          start=block * config.n_images)
    global_metrics(rows, states, x, config, surrogate, family)
    timings["global"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    timeline_metrics(rows, record.checkpoints, x, config, family, record.width)
    timings["timeline"] = time.perf_counter() - t1
    centres = None
    if spatial:
        t2 = time.perf_counter()
        xs = evaluation_inputs(mnist, config, record.regime, config.n_spatial_images, device, train.translate_px,
                               start=block * config.n_spatial_images)
        centres = spatial_metrics(rows, {k: states[k] for k in ("trained", "init")}, xs, config, surrogate,
                                  family=family)
        timings["spatial"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    meta = {"width": record.width, "family": record.family, "seed": record.seed, "regime": record.regime, "eval_images": config.eval_images,
            "model_key": record.key, "epochs": record.manifest.get("epochs"), "spatial": spatial,
            "centres": centres, "timings": timings, "device": str(device),
            # the multiverse's rows and the PR ratios' bootstrap replicates (stored apart, see MetricTable)
            "variants": {v: ResultTable(r).to_json() for v, r in rows.variants.items()},
            "replicates": {key: [None if not math.isfinite(x) else round(x, 9) for x in reps.tolist()]
                           for key, reps in rows.replicates.items()}}
    return ResultTable(rows.rows), meta


def _stored(store: Store, key: str) -> MetricTable:
    body = store.load_metrics(key)
    try:
        meta = dict(body["payload"]["meta"])
        variants = {v: ResultTable.from_json(t) for v, t in meta.pop("variants", {}).items()}
        replicates = {k: np.array([math.nan if x is None else float(x) for x in reps], dtype=np.float64)
                      for k, reps in meta.pop("replicates", {}).items()}
        return MetricTable(key, ResultTable.from_json(body["payload"]["table"]), meta, variants, replicates)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptEntryError(f"metric entry {key} in {store.metrics_dir} is not a metric table of this version "
                                f"({exc}); `kag cache rm {key[:12]}` removes it") from None


def ensure_metrics(
    width: int,
    regime: str,
    seeds: tuple[int, ...] | list[int],
    train: TrainConfig,
    config: MetricConfig,
    *,
    spatial: bool = False,
    device: str | torch.device | None = None,
    store: Store | None = None,
    mnist: MNIST | None = None,
    compute: bool = True,
    wait: bool = True,
    label: str = "",
    family: str = DEFAULT_FAMILY,
) -> list[MetricTable]:
    """Metric tables of the ``seeds`` of one (width, regime): from the store, or computed (training
    the models first if needed) under a per-table lock, then stored.

    ``compute=False`` only reads the store (raises :class:`kag.errors.MissingResults`). ``wait=False``
    skips work that another process holds the lock for and raises :class:`kag.errors.Busy` at the
    end, so a scheduler can do something else meanwhile. ``label`` (e.g. the profile name) is
    recorded in the stored entry for ``kag cache ls``.
    """
    check_regime(regime)
    check_train_config(train)
    if spatial and mnist is not None and mnist.grid is None:
        raise ValueError(f"spatial=True is not allowed for dataset {mnist.name!r}: its inputs are not pixels on a grid "
                         "(the spatial analyses need one)")
    check_metric_request(width, seeds, config, spatial,
                         n_test=MNIST_TEST_IMAGES if mnist is None else int(mnist.test_images.shape[0]),
                         family=family)
    store = store or Store()
    mnist = mnist or load_mnist()
    seeds = tuple(seeds)
    if not compute:
        tables = []
        for seed in seeds:
            key = metric_key(model_key(width, seed, regime, train, mnist.sha256, family), config, regime, spatial)
            if not store.has_metrics(key):
                raise MissingResults(f"no cached metric table for width {width} seed {seed} {regime}"
                                     f"{' under profile ' + label if label else ''} "
                                     f"(eval {effective_config(config, regime).eval_images})")
            tables.append(_stored(store, key))
        return tables
    dev = resolve_device(device)
    records = ensure_models(width, seeds, regime, train, device=dev, store=store, mnist=mnist,
                            eval_shift_seed=config.eval_shift_seed, wait=wait, family=family)
    tables, busy = [], False
    for record in records:
        key = metric_key(record.key, config, regime, spatial)
        if not store.has_metrics(key):
            try:
                with store.lock(f"metrics-{key[:20]}", timeout=-1 if wait else 0):
                    if not store.has_metrics(key):
                        table, meta = compute_table(record, train, config, mnist, dev, spatial)
                        store.save_metrics(key, {"table": table.to_json(), "meta": meta},
                                           {"profile": label or None, "width": width, "family": family,
                                            "seed": record.seed,
                                            "regime": regime, "metric_config": dataclasses.asdict(config),
                                            "versions": measurement_versions(),
                                            "source_sha256": METRIC_DIGEST})
                        store.log_event("metrics", width=width, regime=regime, seed=record.seed,
                                        eval_images=meta["eval_images"], seconds=meta["timings"]["total"], key=key,
                                        table_kind=table_kind(config, regime, spatial))
                        Progress(f"metrics width {width} {regime} seed {record.seed} (eval {meta['eval_images']})",
                                 total=1).done(f"{meta['timings']['total']:.1f} s")
            except Timeout:
                busy = True
                continue
        tables.append(_stored(store, key))
    if busy:
        raise Busy(f"another process is computing metric tables of width {width} {regime}")
    return tables


def summarize_table(entry: MetricTable) -> str:
    """A few human-readable lines: accuracy and the global PR, KL and RR ratios."""
    t, meta = entry.table, entry.meta
    acc = t.select(analysis="accuracy", observable="test_accuracy", condition="clean")
    score = (f"test accuracy {acc.rows[0].value:.4f}" if len(acc)
             else f"test R² {t.value(analysis='accuracy', observable='test_r2'):.4f}")  # a regression (xor3d)
    lines = [f"width {meta['width']} seed {meta['seed']} {meta['regime']} (eval: {meta['eval_images']}), "
             f"{score}, key {entry.key[:12]}"]
    g = t.select(analysis="global")
    for layer in g.unique("layer"):
        cells = []
        for k in g.select(layer=layer).unique("k"):
            at = g.select(layer=layer, k=k)
            cells.append(f"k={k}: PR ratio {at.value(observable='pr_ratio', role='trained'):.3f}, "
                         f"KL {at.value(observable='kl', role='trained'):.3f} "
                         f"(null {at.value(observable='kl', role='null'):.3f}), "
                         f"RR ratio {at.value(observable='rr_ratio', role='trained'):.3f}")
        lines.append(f"  {layer}: {', '.join(cells)}")
    z = t.select(analysis="zero_rows", layer="L1", observable="zero_row_fraction")
    lines.append(f"  zero rows L1: trained {z.value(role='trained'):.4f}, init {z.value(role='init'):.4f}")
    tl = t.select(analysis="timeline", observable="pr_ratio")
    if len(tl):
        lines.append("  timeline L1 PR ratio: " + " ".join(f"{r.condition}:{r.value:.3f}" for r in tl))
    return "\n".join(lines)
