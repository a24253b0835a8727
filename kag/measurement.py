"""KAG of a network against its initialisation, many layers in one call, as one tidy table (SPEC §4-5).

The one measurement path of the library: :func:`measure_jacobians` turns the Jacobians of one
representation (trained and init) into :class:`Measured` rows, and :func:`measure` (many layers by
their ``named_modules()`` names), :func:`kag.compare_to_init` (one layer, any representation) and
the reproduction's pipeline (:mod:`kag.experiments.analysis`) use the same functions for every observable: PR
and its ratio with a bootstrap SE, KL and JS with bootstrap SEs (KL undefined only when neither side
has a positive minor), RR over several index samples with the estimator and three-source SE of
:mod:`kag.rr`, zero rows with the threshold of :func:`kag.metrics.zero_row_fraction`.

:func:`measure` checks every argument and estimates the memory of the largest layer **before** any
Jacobian is computed (an impossible request is refused with one line naming the parameter to
change), prints progress per layer, and returns a :class:`Measurement`: one :class:`Measured` row per
(layer, k, observable, role) with its value, its measurement SE, the exact-zero share of the minors
behind it and the number of images on which it is defined; saved with :meth:`Measurement.to_csv` /
:meth:`Measurement.to_json`, or a pandas DataFrame with :meth:`Measurement.to_pandas`. Per-image
values on request.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kag.checks import check_int

from kag.determinants import jacobian_support, minors
from kag.jacobians import _resolve_layer, jacobian
from kag.metrics import (bootstrap_kl, bootstrap_pr_ratio_replicates, mean_ignoring_undefined,
                         participation_ratio, ratio_of, rotation_maxima_at, se_of_mean, zero_row_fraction)
from kag.progress import Progress, format_duration
from kag.rotations import ROTATIONS, make_rotations, rotation_family, rotations_bytes
from kag.rr import estimate_rr, rr_index_samples

DEFAULT_MEMORY_BUDGET = 4 * 2**30  # bytes one layer's measurement may need at once
SAMPLINGS = ("uniform", "support")
MOSTLY_ZERO = 0.5  # warn when more than this share of a result's minors are exactly 0
# The paper's estimator settings (SPEC §3-5): the defaults of a user's call, and of the pipeline's
# kag.experiments.config.MetricConfig, which reads them from here, so a user's numbers are the report's.
DEFAULTS = dict(ks=(1, 2, 3), n_samples=10_000, n_rotations=10, rotation_images=32, rr_index_samples=16,
                n_bootstrap=200, kl_bins=100, kl_smoothing=1e-10, zero_row_percentile=1.0, seed=42)


def memory_estimate(B: int, d: int, m: int, *, ks: Sequence[int], n_samples: int, rr: bool, n_rotations: int,
                    itemsize: int, rotations: str = "auto") -> dict[str, int]:
    """Bytes one layer needs at once: both networks' Jacobians, the minors of both networks for every
    k, and RR's rotations (Haar: ``[R, m, m]`` float64; structured: a few bytes per unit)."""
    out = {"Jacobians": 2 * B * m * d * itemsize, "minors": 2 * B * n_samples * 8 * len(ks)}
    if rr:
        out["rotations"] = rotations_bytes(rotation_family(rotations, m), m, n_rotations)
    return out


def gib(n: float) -> str:
    """Bytes as a person reads them: "1.25 GiB", "3.4 MiB"."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def refuse_beyond_budget(subject: str, need: dict[str, int], memory_budget: int, advice: str) -> None:
    """One-line ValueError when ``need`` (a :func:`memory_estimate`) exceeds ``memory_budget`` bytes:
    ``"<subject> needs about 1.2 GiB at once (Jacobians ..., ...), more than memory_budget=...: <advice>"``."""
    total = sum(need.values())
    if total > memory_budget:
        raise ValueError(f"{subject} needs about {gib(total)} at once "
                         f"({', '.join(f'{p} {gib(v)}' for p, v in need.items())}), more than memory_budget="
                         f"{gib(memory_budget)}: {advice}")


ADVICE = {"rotations": "lower n_rotations, use rotations='structured' or pass rr=False",
          "Jacobians": "measure fewer images (x)", "minors": "lower n_samples"}


FIELDS = ("layer", "k", "observable", "role", "value", "se", "zero_fraction", "n_defined")


@dataclass(frozen=True)
class Measured:
    """One number: the layer (its module name), k (None for zero rows), the observable, the network
    it describes (``trained``, ``init``; a ratio or divergence carries ``trained``), its value and
    measurement SE, the exact-zero share of the minors it was computed from (NaN where no minors are
    involved) and the number of images on which it is defined."""

    layer: str
    k: int | None
    observable: str
    role: str
    value: float
    se: float
    zero_fraction: float
    n_defined: int


@dataclass
class Measurement:
    """The rows of :func:`measure` (and, if asked for, per-image values keyed by (layer, k, observable, role))."""

    rows: list[Measured]
    per_image: dict[tuple[str, int | None, str, str], torch.Tensor] | None = None
    seconds: float = math.nan

    def select(self, **where: Any) -> list[Measured]:
        """The rows whose fields equal the given values, e.g. ``select(layer="conv", observable="pr_ratio")``."""
        unknown = sorted(set(where) - set(FIELDS))
        if unknown:
            raise ValueError(f"field {unknown[0]!r} is unknown: a row has {', '.join(FIELDS)}")
        return [r for r in self.rows if all(getattr(r, f) == v for f, v in where.items())]

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(FIELDS)
            writer.writerows([getattr(r, name) for name in FIELDS] for r in self.rows)
        return path

    def to_json(self, path: str | Path) -> Path:
        """``{"fields", "rows"}``; NaN as null (strict JSON)."""
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v
        path = Path(path)
        path.write_text(json.dumps({"fields": list(FIELDS), "rows": [[clean(getattr(r, n)) for n in FIELDS]
                                                                      for r in self.rows]}), encoding="utf-8")
        return path

    def to_pandas(self):
        """The rows as a pandas DataFrame (pandas is optional: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas needs pandas: pip install pandas (or use to_csv / to_json)") from None
        return pd.DataFrame([dataclasses.asdict(r) for r in self.rows], columns=list(FIELDS))


def _layer_sizes(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, int]:
    """Each layer's output size per sample, from one forward pass on one sample (hooks on all at once)."""
    sizes: dict[str, int] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs: Any, out: Any) -> None:  # returns None: the output is kept
            sizes.setdefault(name, out[0].numel() if isinstance(out, torch.Tensor) else -1)
        return record

    handles = [model.get_submodule(name).register_forward_hook(hook(name)) for name in layers]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    for name in layers:
        if sizes.get(name, -1) < 0:
            raise ValueError(f"layer {name!r} did not return a tensor in a forward pass: measure a layer that does")
    return sizes


@dataclass(frozen=True)
class Options:
    """The checked settings of one measurement (see :func:`measure` for each)."""

    ks: tuple[int, ...]
    n_samples: int
    rr: bool
    n_rotations: int
    rotation_images: int | None
    rr_index_samples: int
    rotations: str
    sampling: str
    n_bootstrap: int
    kl_bins: int
    kl_smoothing: float
    zero_row_percentile: float
    seed: int


def check_options(*, ks=DEFAULTS["ks"], n_samples=DEFAULTS["n_samples"], rr: bool = True,
                  n_rotations=DEFAULTS["n_rotations"], rotation_images=DEFAULTS["rotation_images"],
                  rr_index_samples=DEFAULTS["rr_index_samples"], rotations: str = "auto", sampling: str = "uniform",
                  n_bootstrap=DEFAULTS["n_bootstrap"], kl_bins=DEFAULTS["kl_bins"],
                  kl_smoothing=DEFAULTS["kl_smoothing"], zero_row_percentile=DEFAULTS["zero_row_percentile"],
                  seed=DEFAULTS["seed"]) -> Options:
    """:class:`Options` from keyword arguments, each checked with a one-line ValueError."""
    if isinstance(ks, (int, bool, str)) or not isinstance(ks, Sequence) or len(ks) == 0:
        raise ValueError(f"ks={ks!r} is not allowed: give a non-empty list of minor orders, e.g. (1, 2, 3)")
    if isinstance(kl_smoothing, bool) or not isinstance(kl_smoothing, (int, float)) or not kl_smoothing > 0:
        raise ValueError(f"kl_smoothing={kl_smoothing!r} is not allowed: use a number > 0")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling={sampling!r} is not allowed: use {' or '.join(map(repr, SAMPLINGS))}")
    if rotations not in ROTATIONS:
        raise ValueError(f"rotations={rotations!r} is not allowed: use {', '.join(map(repr, ROTATIONS))}")
    p = zero_row_percentile
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 100:
        raise ValueError(f"zero_row_percentile={p!r} is not allowed: expected a number in (0, 100)")
    return Options(ks=tuple(check_int("k", k, 1) for k in ks), n_samples=check_int("n_samples", n_samples, 1),
                   rr=bool(rr), n_rotations=check_int("n_rotations", n_rotations, 1),
                   rotation_images=None if rotation_images is None else check_int("rotation_images",
                                                                                  rotation_images, 1),
                   rr_index_samples=check_int("rr_index_samples", rr_index_samples, 1), rotations=rotations,
                   sampling=sampling, n_bootstrap=check_int("n_bootstrap", n_bootstrap, 2),
                   kl_bins=check_int("kl_bins", kl_bins, 1), kl_smoothing=float(kl_smoothing),
                   zero_row_percentile=float(p), seed=check_int("seed", seed, 0))


def check_fits(subject: str, B: int, d: int, m: int, options: Options, itemsize: int, memory_budget: int) -> int:
    """Refuse (one line) a k that does not fit an ``[m, d]`` Jacobian or a need beyond ``memory_budget``;
    the bytes needed otherwise."""
    check_ks_fit(options.ks, m, d, subject)
    need = memory_estimate(B, d, m, ks=options.ks, n_samples=options.n_samples, rr=options.rr,
                           n_rotations=options.n_rotations, itemsize=itemsize, rotations=options.rotations)
    refuse_beyond_budget(f"{subject} (m={m})", need, check_int("memory_budget", memory_budget, 1),
                         f"{ADVICE[max(need, key=need.get)]}, or raise memory_budget")
    return sum(need.values())


def check_ks_fit(ks: Sequence[int], m: int, d: int, subject: str) -> None:
    """One-line ValueError for a k larger than the ``m`` outputs of ``subject`` or the ``d`` input values."""
    for k in ks:
        if k > min(m, d):
            side = f"{subject}'s {m} outputs" if k > m else f"the input's {d} values"
            raise ValueError(f"k={k} exceeds {side}: a k-minor needs k rows and k columns")


def measure(
    model: nn.Module,
    init: nn.Module,
    x: torch.Tensor,
    layers: Sequence[str],
    *,
    ks: Sequence[int] = DEFAULTS["ks"],
    n_samples: int = DEFAULTS["n_samples"],
    rr: bool = True,
    n_rotations: int = DEFAULTS["n_rotations"],
    rotation_images: int | None = DEFAULTS["rotation_images"],
    rr_index_samples: int = DEFAULTS["rr_index_samples"],
    rotations: str = "auto",
    sampling: str = "uniform",
    n_bootstrap: int = DEFAULTS["n_bootstrap"],
    kl_bins: int = DEFAULTS["kl_bins"],
    kl_smoothing: float = DEFAULTS["kl_smoothing"],
    zero_row_percentile: float = DEFAULTS["zero_row_percentile"],
    per_image: bool = False,
    dtype: torch.dtype | None = torch.float64,
    seed: int = DEFAULTS["seed"],
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    verbose: bool = True,
) -> Measurement:
    """KAG of every layer in ``layers`` (``named_modules()`` names), trained ``model`` against ``init``,
    on inputs ``x [B, *in_shape]``: one :class:`Measurement` (see the module docstring).

    The defaults are those of the paper's pipeline. Per k, one index sample of ``n_samples`` minors
    (seed ``seed``) serves PR, KL and every image; RR (``rr=False`` skips it) is the estimator of
    :mod:`kag.rr` over ``rr_index_samples`` index samples (seeds seed, seed + 1, ...) on the first
    ``rotation_images`` images (None: all) under ``n_rotations`` random rotations (``rotations``:
    ``"haar"``, ``"structured"`` or ``"auto"`` = Haar up to 1,024 units, see :mod:`kag.rotations`),
    in float32 like the pipeline. ``sampling="support"`` draws each minor's columns where its rows
    are non-zero (convolutions; see :func:`kag.sample_indices`). SEs are bootstrap SEs over
    ``n_bootstrap`` replicates. The zero-row threshold is the ``zero_row_percentile``-th percentile of
    init's row norms. ``memory_budget`` (bytes, default 4 GiB) bounds what one layer may need at
    once: a larger need is refused before any Jacobian, naming what to lower. ``verbose`` prints
    the estimate and progress lines (to stderr; ``KAG_QUIET=1`` silences them).
    """
    for name, net in (("model", model), ("init", init)):
        if not isinstance(net, nn.Module):
            raise ValueError(f"{name} must be an nn.Module, got {type(net).__name__}")
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers={layers!r} is not allowed: give a non-empty list of module names, "
                         f"e.g. {[n for n, _ in model.named_modules() if n][:3]}")
    for layer in layers:
        _resolve_layer(layer, model, init, ("model", "init"))
    options = check_options(ks=ks, n_samples=n_samples, rr=rr, n_rotations=n_rotations,
                            rotation_images=rotation_images, rr_index_samples=rr_index_samples, rotations=rotations,
                            sampling=sampling, n_bootstrap=n_bootstrap, kl_bins=kl_bins, kl_smoothing=kl_smoothing,
                            zero_row_percentile=zero_row_percentile, seed=seed)
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch [B, *in_shape], got {getattr(x, 'shape', type(x).__name__)}")
    B, d = x.shape[0], x[0].numel()

    # sizes and memory before any Jacobian
    sizes = _layer_sizes(model, x, layers)
    itemsize = torch.finfo(dtype or x.dtype).bits // 8
    peak = max(check_fits(f"layer {name!r}", B, d, m, options, itemsize, memory_budget) for name, m in sizes.items())
    progress = Progress("measure", total=len(layers), unit="layer", every=0.0 if verbose else math.inf)
    if verbose:
        progress._print(f"{len(layers)} layers of {B} images, peak memory about {gib(peak)} "
                        f"(budget {gib(memory_budget)}); RR {'on' if options.rr else 'off'}")

    start = time.perf_counter()
    rows: list[Measured] = []
    images: dict[tuple[str, int | None, str, str], torch.Tensor] = {}
    for i, layer in enumerate(layers):
        t0 = time.perf_counter()
        J = {name: jacobian(net, x, layer=layer, dtype=dtype) for name, net in (("trained", model), ("init", init))}
        part = measure_jacobians(J.pop("trained"), J.pop("init"), layer=layer, options=options)
        rows += part.rows
        images.update(part.per_image)
        if not verbose:
            continue
        if i == 0 and len(layers) > 1:
            left = (time.perf_counter() - t0) * (len(layers) - 1)
            progress.update(1, f"{layer} in {format_duration(time.perf_counter() - t0)}; "
                               f"about {format_duration(left)} left if the others cost as much")
        else:
            progress.update(i + 1, f"{layer} in {format_duration(time.perf_counter() - t0)}")
    seconds = time.perf_counter() - start
    if verbose:
        progress.done(f"{len(rows)} rows from {len(layers)} layers in {format_duration(seconds)}")
    return Measurement(rows, images if per_image else None, seconds)


def measure_jacobians(J_trained: torch.Tensor, J_init: torch.Tensor, *, layer: str = "", options: Options | None = None,
                      **kwargs: Any) -> Measurement:
    """The rows of one representation from its Jacobians ``[B, m, d]`` (trained and init, the same
    images): what :func:`measure` computes per layer (``options`` or the keyword arguments of
    :func:`check_options`), with per-image values."""
    options = options or check_options(**kwargs)
    if J_trained.shape != J_init.shape:
        raise ValueError(f"J_trained has shape {list(J_trained.shape)} but J_init has {list(J_init.shape)}: "
                         "the two networks must have the same architecture")
    J = {"trained": J_trained, "init": J_init}
    B, m, d = J_trained.shape
    check_ks_fit(options.ks, m, d, "the Jacobian")
    o = options
    support = jacobian_support(J_trained, J_init) if o.sampling == "support" else None
    # RR's index samples, in the pipeline's order; j = 0 serves PR and KL
    rr_samples = rr_index_samples(m, d, o.ks, o.n_samples, o.rr_index_samples if o.rr else 1, o.seed, support)
    samples = {k: smp for j, k, smp in rr_samples if j == 0}
    parts = _rotation_parts(J, rr_samples, o) if o.rr else None

    rows: list[Measured] = []
    images: dict[tuple[str, int | None, str, str], torch.Tensor] = {}

    def add(k, observable, role, value, se=math.nan, zero=math.nan, n=B, per=None):
        rows.append(Measured(layer, k, observable, role, float(value), float(se), float(zero), int(n)))
        if per is not None:
            images[(layer, k, observable, role)] = per

    for k in o.ks:
        mins = {name: minors(J[name], *samples[k]) for name in J}  # [B, S]
        zero = {name: float((mins[name] == 0).double().mean()) for name in J}
        _warn_if_mostly_zero(k, zero, o.sampling)
        pr = {name: participation_ratio(mins[name]) for name in J}
        means = {}
        for name in J:
            means[name], n_undefined = mean_ignoring_undefined(pr[name])
            add(k, "pr", name, means[name], se_of_mean(pr[name]), zero[name], B - n_undefined, pr[name])
        _, reps = bootstrap_pr_ratio_replicates(mins["trained"], mins["init"], n_boot=o.n_bootstrap, seed=o.seed)
        n_both = int((torch.isfinite(pr["trained"]) & torch.isfinite(pr["init"])).sum())
        add(k, "pr_ratio", "trained", ratio_of(means["trained"], means["init"]), float(reps.std(correction=1)),
            zero["trained"], n_both)
        boot = bootstrap_kl(mins["trained"], mins["init"], o.kl_bins, o.kl_smoothing, n_boot=o.n_bootstrap,
                            seed=o.seed)  # NaN when neither side has a positive minor
        add(k, "kl", "trained", boot.kl, boot.se, zero["trained"])
        add(k, "js", "trained", boot.js, boot.js_se, zero["trained"])
        if parts is not None:
            of_k = [i for i, (_, kk, _) in enumerate(rr_samples) if kk == k]
            picked = {name: (a[of_k], q[of_k]) for name, (a, q) in parts.items()}  # [J, B'], [J, B', R]
            est = estimate_rr(picked["trained"], picked["init"], o.n_bootstrap, o.seed)
            for name, value in (("trained", est.rr), ("init", est.rr_base)):
                a, q = picked[name]
                per = (a / q.mean(dim=2)).nanmean(dim=0)  # [B'] each image's RR, averaged over index samples
                add(k, "rr", name, value, se_of_mean(per), math.nan, int(torch.isfinite(per).sum()), per)
            add(k, "rr_ratio", "trained", est.ratio, est.se, math.nan, picked["trained"][0].shape[1])
    norms = {name: torch.linalg.vector_norm(J[name], dim=2, dtype=torch.float64) for name in J}  # [B, n]
    zr = zero_row_fraction(J_trained, J_init, o.zero_row_percentile)
    for name, value in (("trained", zr.trained), ("init", zr.init)):
        per = (norms[name] <= zr.threshold).double().mean(dim=1)  # the pooled threshold fixed: SE over images
        add(None, "zero_row_fraction", name, value, se_of_mean(per), math.nan, B, per)
    return Measurement(rows, images)


def _rotation_parts(J: dict[str, torch.Tensor], rr_samples, o: Options) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Rotation maxima ``(aligned [J·K, B'], rotated [J·K, B', R])`` of each network on its first
    ``rotation_images`` images, in float32 (like the pipeline: the error of a float32 rotation is far
    below the spread of the maximum over rotations), under the same rotations for both."""
    B, m, _ = J["trained"].shape
    n_rr = B if o.rotation_images is None else min(o.rotation_images, B)
    Q = make_rotations(rotation_family(o.rotations, m), m, o.n_rotations, o.seed, J["trained"].device)
    samples = [smp for _, _, smp in rr_samples]
    out = {}
    for name, Jn in J.items():
        aligned, rotated = rotation_maxima_at(Jn[:n_rr].to(torch.float32), samples, Q)
        out[name] = (aligned[:, -1], rotated[:, -1])
    return out


def _warn_if_mostly_zero(k: int, shares: dict[str, float], sampling: str) -> None:
    """Warn when more than :data:`MOSTLY_ZERO` of a network's sampled minors (``shares``: network ->
    exact-zero share) are exactly 0."""
    worst = max(shares, key=shares.get)
    if shares[worst] > MOSTLY_ZERO:
        hint = " (a local layer? try sampling='support')" if sampling == "uniform" else ""
        warnings.warn(f"k={k}: {shares[worst]:.0%} of the sampled minors of {worst} are exactly 0, so PR, KL and RR "
                      f"describe few minors{hint}", RuntimeWarning, stacklevel=4)
