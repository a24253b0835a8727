"""Many layers of a network against its initialisation in one call, as one tidy table (issue 18 item 2).

:func:`measure` takes the layers by their ``named_modules()`` names, checks every argument and
estimates the memory of the largest layer **before** any Jacobian is computed (an impossible request
is refused with one line naming the parameter to change), prints progress per layer, and returns a
:class:`Measurement`: one :class:`Measured` row per (layer, k, observable, role) with its value, its
measurement SE, the exact-zero share of the minors behind it and the number of images on which it
is defined; saved with :meth:`Measurement.to_csv` / :meth:`Measurement.to_json`, or a pandas
DataFrame with :meth:`Measurement.to_pandas`. Per-image values on request.

The observables are those of :func:`kag.compare_to_init` (same index samples, same KL rule, same
zero-row threshold), with SEs: PR per network (SE over images), the PR ratio (bootstrap over images
and minors), KL and JS of the trained network's log-minors against the init's (bootstrap), RR per
network and the RR ratio (bootstrap over images), and the zero-row fractions (SE over images).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kag.compare import DEFAULT_MEMORY_BUDGET, SAMPLINGS, _ratio, gib, memory_estimate, refuse_beyond_budget
from kag.compare import _kl as kl_or_nan  # the single-layer path's KL and its NaN rule
from kag.determinants import check_int, jacobian_support, minors, sample_indices
from kag.jacobians import _resolve_layer, jacobian
from kag.metrics import (bootstrap_kl, bootstrap_pr_ratio_replicates, mean_ignoring_undefined, multiplicities,
                         participation_ratio, rotation_ratios, se_of_mean, zero_row_fraction)
from kag.progress import Progress, format_duration

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


def measure(
    model: nn.Module,
    init: nn.Module,
    x: torch.Tensor,
    layers: Sequence[str],
    *,
    ks: Sequence[int] = (1, 2, 3),
    n_samples: int = 10_000,
    rr: bool = True,
    n_rotations: int = 20,
    rotation_images: int | None = 32,
    sampling: str = "uniform",
    n_bootstrap: int = 200,
    kl_bins: int = 100,
    kl_smoothing: float = 1e-10,
    zero_row_percentile: float = 1.0,
    per_image: bool = False,
    dtype: torch.dtype | None = torch.float64,
    seed: int = 42,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    verbose: bool = True,
) -> Measurement:
    """KAG of every layer in ``layers`` (``named_modules()`` names), trained ``model`` against ``init``,
    on inputs ``x [B, *in_shape]``: one :class:`Measurement` (see the module docstring).

    ``rr=False`` skips the rotation ratio (its rotations are the largest memory of a wide layer);
    RR uses the first ``rotation_images`` images (None: all). ``sampling="support"`` draws each
    minor's columns where its rows are non-zero (convolutions; see :func:`kag.sample_indices`).
    ``memory_budget`` (bytes, default 4 GiB) bounds what one layer may need at once: a larger need is
    refused before any Jacobian, naming what to lower. ``verbose`` prints the estimate and progress
    lines (to stderr; ``KAG_QUIET=1`` silences them).
    """
    for name, net in (("model", model), ("init", init)):
        if not isinstance(net, nn.Module):
            raise ValueError(f"{name} must be an nn.Module, got {type(net).__name__}")
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers={layers!r} is not allowed: give a non-empty list of module names, "
                         f"e.g. {[n for n, _ in model.named_modules() if n][:3]}")
    for layer in layers:
        _resolve_layer(layer, model, init, ("model", "init"))
    if isinstance(ks, (int, bool)) or not ks:
        raise ValueError(f"ks={ks!r} is not allowed: give a non-empty list of minor orders, e.g. (1, 2, 3)")
    ks = tuple(check_int("k", k, 1) for k in ks)
    n_samples = check_int("n_samples", n_samples, 1)
    n_rotations = check_int("n_rotations", n_rotations, 1)
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, 2)
    memory_budget = check_int("memory_budget", memory_budget, 1)
    kl_bins = check_int("kl_bins", kl_bins, 1)
    if isinstance(kl_smoothing, bool) or not isinstance(kl_smoothing, (int, float)) or not kl_smoothing > 0:
        raise ValueError(f"kl_smoothing={kl_smoothing!r} is not allowed: use a number > 0")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling={sampling!r} is not allowed: use {' or '.join(map(repr, SAMPLINGS))}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch [B, *in_shape], got {getattr(x, 'shape', type(x).__name__)}")
    B, d = x.shape[0], x[0].numel()
    n_rr = B if rotation_images is None else min(check_int("rotation_images", rotation_images, 1), B)

    # sizes and memory before any Jacobian
    sizes = _layer_sizes(model, x, layers)
    itemsize = torch.finfo(dtype or x.dtype).bits // 8
    needs = {name: memory_estimate(B, d, m, ks=ks, n_samples=n_samples, rr=rr, n_rotations=n_rotations,
                                   itemsize=itemsize) for name, m in sizes.items()}
    for name, parts in needs.items():
        for k in ks:
            if k > min(sizes[name], d):
                raise ValueError(f"k={k} exceeds layer {name!r}'s {sizes[name]} outputs or the input's {d} values: "
                                 "a k-minor needs k rows and k columns")
        lower = {"rotations": "lower n_rotations or pass rr=False", "Jacobians": "measure fewer images (x)",
                 "minors": "lower n_samples"}[max(parts, key=parts.get)]
        refuse_beyond_budget(f"layer {name!r} (m={sizes[name]})", parts, memory_budget,
                             f"{lower}, or raise memory_budget")
    progress = Progress("measure", total=len(layers), unit="layer", every=0.0 if verbose else math.inf)
    peak = max(sum(p.values()) for p in needs.values())
    if verbose:
        progress._print(f"{len(layers)} layers of {B} images, peak memory about {gib(peak)} "
                        f"(budget {gib(memory_budget)}); RR {'on' if rr else 'off'}")

    start = time.perf_counter()
    rows: list[Measured] = []
    images: dict[tuple[str, int | None, str, str], torch.Tensor] = {}
    for i, layer in enumerate(layers):
        t0 = time.perf_counter()
        J = {name: jacobian(net, x, layer=layer, dtype=dtype) for name, net in (("trained", model), ("init", init))}
        _layer_rows(rows, images, layer, J, ks=ks, n_samples=n_samples, rr=rr, n_rotations=n_rotations, n_rr=n_rr,
                    sampling=sampling, n_bootstrap=n_bootstrap, percentile=zero_row_percentile, seed=seed,
                    kl_bins=kl_bins, kl_smoothing=kl_smoothing)
        del J
        if i == 0 and verbose and len(layers) > 1:
            left = (time.perf_counter() - t0) * (len(layers) - 1)
            progress.update(1, f"{layer} in {format_duration(time.perf_counter() - t0)}; "
                               f"about {format_duration(left)} left if the others cost as much")
        else:
            progress.update(i + 1, f"{layer} in {format_duration(time.perf_counter() - t0)}")
    seconds = time.perf_counter() - start
    if verbose:
        progress.done(f"{len(rows)} rows from {len(layers)} layers in {format_duration(seconds)}")
    return Measurement(rows, images if per_image else None, seconds)


def _ratio_se(a: torch.Tensor, b: torch.Tensor, n_boot: int, seed: int) -> float:
    """Bootstrap SE over images of mean(a) / mean(b) (per-image values; undefined images left out)."""
    ok = torch.isfinite(a) & torch.isfinite(b)
    a, b = a[ok].double(), b[ok].double()
    if a.numel() < 2:
        return math.nan
    draws = torch.randint(0, a.numel(), (n_boot, a.numel()), generator=torch.Generator().manual_seed(seed))
    w = multiplicities(draws, a.numel())  # [n_boot, B]: how often each image was drawn
    reps = (w @ a) / (w @ b)
    return float(reps[torch.isfinite(reps)].std(correction=1))


def _layer_rows(rows: list[Measured], images: dict, layer: str, J: dict[str, torch.Tensor], *, ks, n_samples, rr,
                n_rotations, n_rr, sampling, n_bootstrap, percentile, seed, kl_bins,
                kl_smoothing) -> None:
    B, m, d = J["trained"].shape
    support = jacobian_support(J["trained"], J["init"]) if sampling == "support" else None
    samples = [sample_indices(m, k, n_samples, n_cols=d, seed=seed, support=support) for k in ks]
    rr_parts = ({name: rotation_ratios(J[name][:n_rr], samples, n_rotations=n_rotations, seed=seed) for name in J}
                if rr else None)  # [K, B']

    def add(k, observable, role, value, se=math.nan, zero=math.nan, n=B, per=None):
        rows.append(Measured(layer, k, observable, role, float(value), float(se), float(zero), int(n)))
        if per is not None:
            images[(layer, k, observable, role)] = per

    for i, (k, (r, c)) in enumerate(zip(ks, samples)):
        mins = {name: minors(J[name], r, c) for name in J}  # [B, S]
        zero = {name: float((mins[name] == 0).double().mean()) for name in J}
        pr = {name: participation_ratio(mins[name]) for name in J}
        for name in J:
            mean, n_undefined = mean_ignoring_undefined(pr[name])
            add(k, "pr", name, mean, se_of_mean(pr[name]), zero[name], B - n_undefined, pr[name])
        ratio, reps = bootstrap_pr_ratio_replicates(mins["trained"], mins["init"], n_boot=n_bootstrap, seed=seed)
        n_both = int((torch.isfinite(pr["trained"]) & torch.isfinite(pr["init"])).sum())
        add(k, "pr_ratio", "trained", ratio, float(reps.std(correction=1)), zero["trained"], n_both)
        value = kl_or_nan(mins["trained"], mins["init"], kl_bins, kl_smoothing)
        boot = (bootstrap_kl(mins["trained"], mins["init"], kl_bins, kl_smoothing, n_boot=n_bootstrap, seed=seed)
                if math.isfinite(value) else None)
        add(k, "kl", "trained", value, boot.se if boot else math.nan, zero["trained"])
        add(k, "js", "trained", boot.js if boot else math.nan, boot.js_se if boot else math.nan, zero["trained"])
        if rr_parts is not None:
            per = {name: rr_parts[name][i] for name in J}
            means = {}
            for name in J:
                means[name], n_undefined = mean_ignoring_undefined(per[name])
                add(k, "rr", name, means[name], se_of_mean(per[name]), math.nan, per[name].numel() - n_undefined,
                    per[name])
            rr_ratio = _ratio(means["trained"], means["init"])  # as compare_to_init
            n_both = int((torch.isfinite(per["trained"]) & torch.isfinite(per["init"])).sum())
            add(k, "rr_ratio", "trained", rr_ratio, _ratio_se(per["trained"], per["init"], n_bootstrap, seed),
                math.nan, n_both)
    norms = {name: torch.linalg.vector_norm(J[name], dim=2, dtype=torch.float64) for name in J}  # [B, n]
    zr = zero_row_fraction(J["trained"], J["init"], percentile)
    for name, value in (("trained", zr.trained), ("init", zr.init)):
        per = (norms[name] <= zr.threshold).double().mean(dim=1)  # the pooled threshold fixed: SE over images
        add(None, "zero_row_fraction", name, value, se_of_mean(per), math.nan, B, per)
