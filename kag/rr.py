"""The rotation-ratio estimator (SPEC §5), shared by :func:`kag.measure`, :func:`kag.compare_to_init`
and the reproduction's pipeline (:mod:`kag.experiments.analysis`), so a user's RR is the report's RR.

Per index sample j (the same for both networks), RR_j of a network is the mean over images of
``aligned / mean over rotations of rotated`` (:func:`kag.metrics.rotation_maxima_at` gives the two
parts); the RR ratio of a against b is the geometric mean over index samples of RR_j(a) / RR_j(b)
(:func:`rr_ratio_estimate`; the arithmetic mean is a multiverse variant), and its measurement SE
comes from resampling index samples, images and rotations, each alone
(:func:`rr_variance_components`), added in quadrature (:func:`combined_se`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kag.determinants import sample_indices
from kag.metrics import mean_ignoring_undefined, multiplicities, ratio_of


def rr_index_samples(m: int, d: int, ks: Sequence[int], n_samples: int, count: int, seed: int,
                     support: torch.Tensor | None = None) -> list[tuple[int, int, tuple[torch.Tensor, torch.Tensor]]]:
    """The RR estimator's index samples of an ``[m, d]`` Jacobian as ``(j, k, (rows, cols))``: ``count``
    samples per k, sample j of seed ``seed + j`` (j = 0 is the sample every other observable uses),
    j-major (all k of sample 0, then of sample 1, ...: the order both paths hand to
    :func:`kag.metrics.rotation_maxima_at`)."""
    return [(j, k, sample_indices(m, k, n_samples, n_cols=d, seed=seed + j, support=support))
            for j in range(count) for k in ks]


@dataclass(frozen=True)
class RREstimate:
    """RR of a network against a base: ``rr`` / ``rr_base`` the mean over index samples of each one's
    RR_j, ``ratio`` the estimator over index samples of RR_j / RR_j(base), ``se`` its three-source SE."""

    rr: float
    rr_base: float
    ratio: float
    se: float


def estimate_rr(parts: tuple[torch.Tensor, torch.Tensor], base: tuple[torch.Tensor, torch.Tensor], n_boot: int,
                seed: int, estimate=None) -> RREstimate:
    """RR ratio of a network against ``base`` from their rotation maxima, ``(aligned [J, B], rotated
    [J, B, R])`` each over the same index samples, images and rotations; ``estimate``: the estimator over
    index samples (default :func:`rr_ratio_estimate`)."""
    estimate = estimate or rr_ratio_estimate
    rr, rr_base, _ = per_sample_rr(*parts, *base)
    se = combined_se(rr_variance_components((*parts, *base), n_boot, seed, estimate))
    return RREstimate(float(np.mean(rr)), float(np.mean(rr_base)), estimate(rr, rr_base), se)


def combined_se(components: dict[str, float]) -> float:
    """The SE of all sources together: the components added in quadrature (undefined ones left out)."""
    return math.sqrt(sum(se * se for se in components.values() if math.isfinite(se)))


def rr_ratio_estimate(per_sample_a: list[float], per_sample_b: list[float]) -> float:
    """The RR-ratio estimator: the geometric mean over index samples of RR(a)/RR(b).

    A mean of ratios is biased upwards (Jensen: E[1/Y] > 1/E[Y]); for two exchangeable networks,
    e.g. two independent inits, log RR(a) - log RR(b) is symmetric about 0, so its mean is not.
    NaN when no index sample gives a finite ratio."""
    logs = [math.log(a / b) for a, b in zip(per_sample_a, per_sample_b)
            if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)]
    return math.exp(float(np.mean(logs))) if logs else math.nan


def rr_arithmetic_estimate(per_sample_a: list[float], per_sample_b: list[float]) -> float:
    """The arithmetic mean over index samples of RR(a)/RR(b): a variant of the multiverse (biased
    upwards by Jensen's inequality, see :func:`rr_ratio_estimate`); NaN when no ratio is finite."""
    ratios = [a / b for a, b in zip(per_sample_a, per_sample_b)
              if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)]
    return float(np.mean(ratios)) if ratios else math.nan


def per_sample_rr(aligned: torch.Tensor, rotated: torch.Tensor, base_aligned: torch.Tensor, base_rotated: torch.Tensor
                 ) -> tuple[list[float], list[float], list[float]]:
    """(RR of the network, RR of the base, their ratio) per index sample, each RR the mean over images
    (undefined images ignored) of aligned / mean over rotations."""
    rr = [mean_ignoring_undefined(v)[0] for v in aligned / rotated.mean(dim=2)]
    base = [mean_ignoring_undefined(v)[0] for v in base_aligned / base_rotated.mean(dim=2)]
    return rr, base, [ratio_of(a, b) for a, b in zip(rr, base)]


def rr_variance_components(parts: tuple[torch.Tensor, ...], n_boot: int, seed: int,
                           estimate=None) -> dict[str, float]:
    """Measurement SE of the RR-ratio estimator (``estimate``, default :func:`rr_ratio_estimate`, of
    RR(a) and RR(b)) from each source alone: resampling index samples, images or rotations (with
    replacement, both networks together) while the other two stay fixed; ``parts`` = (aligned,
    rotated) of a and b, ``[J, B]`` and ``[J, B, R]``. All replicates of a source at once: each is
    a weighted mean (weights = how often an index was drawn), so no Python loop over replicates."""
    generator = torch.Generator().manual_seed(seed)
    a_a, q_a, a_b, q_b = (t.to(torch.float64) for t in parts)
    geometric = (estimate or rr_ratio_estimate) is rr_ratio_estimate
    sizes = {"index samples": a_a.shape[0], "images": a_a.shape[1], "rotations": q_a.shape[2]}
    out = {}
    for factor, size in sizes.items():
        weights = multiplicities(torch.randint(0, size, (n_boot, size), generator=generator), size)
        if factor == "rotations":  # RR per sample [n_boot, J] of each network, rotations reweighted
            rr = [_weighted_image_mean(a[None] / (torch.einsum("nr,jbr->njb", weights, q) / size))
                  for a, q in ((a_a, q_a), (a_b, q_b))]
        elif factor == "images":
            rr = [_weighted_image_mean((a / q.mean(dim=2))[None].expand(n_boot, -1, -1), weights)
                  for a, q in ((a_a, q_a), (a_b, q_b))]
        else:
            rr = [_weighted_image_mean((a / q.mean(dim=2))[None]).expand(n_boot, -1) for a, q in ((a_a, q_a), (a_b, q_b))]
        sample_weights = weights if factor == "index samples" else torch.ones(n_boot, a_a.shape[0],
                                                                              dtype=torch.float64)
        estimates = _batched_estimate(rr[0], rr[1], sample_weights, geometric)
        finite = estimates[torch.isfinite(estimates)]
        out[factor] = float(finite.std(correction=1)) if finite.numel() > 1 and size > 1 else math.nan
    return out


def _weighted_image_mean(values: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over images (last axis) of ``values [n, J, B]`` ignoring NaN (undefined images), weighted by
    ``weights [n, B]`` (None: equal): ``-> [n, J]``, NaN where no image is defined."""
    defined = ~torch.isnan(values)
    w = defined.to(torch.float64) if weights is None else defined * weights[:, None, :]
    total = torch.where(defined, values, torch.zeros_like(values)).mul(w).sum(dim=2)
    return total / w.sum(dim=2)  # 0/0 -> NaN


def _batched_estimate(rr_a: torch.Tensor, rr_b: torch.Tensor, weights: torch.Tensor, geometric: bool) -> torch.Tensor:
    """:func:`rr_ratio_estimate` (or the arithmetic mean) of every replicate row: ``rr_a, rr_b [n, J]``,
    index samples weighted by ``weights [n, J]`` -> ``[n]``; NaN where no ratio is finite."""
    ok = (rr_a > 0) & (rr_b > 0) & torch.isfinite(rr_a) & torch.isfinite(rr_b)
    safe_a, safe_b = (torch.where(ok, t, torch.ones_like(t)) for t in (rr_a, rr_b))
    terms = (safe_a / safe_b).log() if geometric else safe_a / safe_b
    w = ok * weights
    mean = (terms * w).sum(dim=1) / w.sum(dim=1)
    return mean.exp() if geometric else mean
