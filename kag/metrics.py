"""The KAG observables of SPEC §5, as pure functions of minors and Jacobians.

* :func:`participation_ratio` — concentration of the minors of each image, ``‖m‖₂/‖m‖₁``;
  :func:`bootstrap_pr_ratio` — the PR ratio with its bootstrap SE over images and index samples;
* :func:`kl_divergence`, :func:`js_divergence` — how far the trained log-minor distribution moved
  from the init one; :func:`bootstrap_kl` — KL with its bootstrap SE;
* :func:`rotation_ratio` — whether large minors are aligned with the neuron basis;
* :func:`zero_row_fraction` — hidden units whose input gradient all but vanished.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple, Sequence

import numpy as np
import torch

from kag.jacobians import full_float32_precision
from kag.rotations import StructuredRotations, make_rotations, rotation_family
from kag.rotations import rotation_matrices  # noqa: F401  (its home before kag.rotations; still importable here)
from kag.checks import check_indices, check_int, check_jacobian, chunk_bytes
from kag.determinants import _abs_det, entry_major_index, minors_unchecked

# Version of the observables (PR, KL histograms, RR estimator, zero rows): part of every metric
# cache key; bump it when any of them computes something else.
# 2: KL histograms keep every minor (SPEC §5 zero policy): bins over the pooled central 99.8% of
#    log10 of the positive minors plus underflow (exact zeros) and overflow bins; 1 dropped zeros.
# 3: PR divides each image by its largest minor first (no underflow of squares below 1e-154).
# 4: rotated Jacobians as one batched matmul per (image, rotation) chunk, gathered without a transpose.
# 5: a zero row is one whose norm is at most the threshold (<=, was <), the threshold floored at the
#    dtype's precision (eps x the largest init row norm): exactly-zero rows always count (ReLU);
#    rotated minors' determinants in the rotation's dtype (float32), only their maxima in float64.
OBSERVABLES_VERSION = 5

# Rotated Jacobians alive at once in rotation_ratio: cache-sized on CPU, big on GPUs.
_ROTATION_CHUNK_BYTES = {"cpu": 32 * 2**20, "cuda": 1024 * 2**20}

# Bootstrap multiplicity weights alive at once, [replicates, B + S] float64: ~200 replicates at S = 20,000.
_BOOTSTRAP_CHUNK_BYTES = 32 * 2**20


def _check_minors(name: str, m: torch.Tensor) -> torch.Tensor:
    if not isinstance(m, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of minors, got {type(m).__name__}")
    if m.dim() < 1 or m.shape[-1] < 1:
        raise ValueError(f"{name} has shape {list(m.shape)}: expected [..., S] with S >= 1 minors")
    if torch.isnan(m).any():
        raise ValueError(f"{name} contains NaN: minors must be numbers")
    return m


# ---------------------------------------------------------------------------------------------
# participation ratio


def participation_ratio(m: torch.Tensor) -> torch.Tensor:
    """``‖m‖₂ / ‖m‖₁`` over the last axis: ``m [..., S] -> [...]``, in ``[1/√S, 1]``.

    1 means one minor carries everything, 1/√S that all are equal. An image whose minors are
    all zero has no defined PR and gets NaN (never a silent 0/0 -> 0). Each image is divided by
    its largest minor first, so minors below 1e-154 (float64 Jacobians where σ' underflows) do
    not underflow when squared: PR is scale-free.
    """
    m = _check_minors("m", m).abs()
    top = m.amax(dim=-1, keepdim=True)
    m = m / torch.where(top > 0, top, torch.ones_like(top))
    l1 = m.sum(dim=-1)
    l2 = torch.linalg.vector_norm(m, dim=-1)
    return torch.where(l1 > 0, l2 / l1, torch.full_like(l1, math.nan))


def ratio_of(a: float, b: float) -> float:
    """``a / b``, NaN unless both are finite and b is not 0 (the rule of every ratio of means)."""
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def se_of_mean(values: torch.Tensor) -> float:
    """SE of the mean of the defined (finite) ``values``: std (ddof 1) / sqrt(n); NaN for fewer than two."""
    v = values[torch.isfinite(values)].double()
    return float(v.std(correction=1)) / math.sqrt(v.numel()) if v.numel() > 1 else math.nan


def mean_ignoring_undefined(values: torch.Tensor | np.ndarray | list[float]) -> tuple[float, int]:
    """``(mean of the non-NaN values, number of NaNs)``; the mean is NaN when nothing is defined."""
    v = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64).ravel()
    undefined = np.isnan(v)
    n_undefined = int(undefined.sum())
    mean = float(v[~undefined].mean()) if n_undefined < v.size else math.nan
    return mean, n_undefined


def bootstrap_pr_ratio(
    m_trained: torch.Tensor, m_init: torch.Tensor, n_boot: int = 200, seed: int = 0
) -> tuple[float, float]:
    """PR ratio and its bootstrap SE: ``m_trained, m_init [B, S] -> (ratio, se)`` (see
    :func:`bootstrap_pr_ratio_replicates`, whose replicates' SD (ddof 1) is the SE)."""
    ratio, replicates = bootstrap_pr_ratio_replicates(m_trained, m_init, n_boot, seed)
    return ratio, float(replicates.std(correction=1))


def bootstrap_pr_ratio_replicates(
    m_trained: torch.Tensor, m_init: torch.Tensor, n_boot: int = 200, seed: int = 0
) -> tuple[float, torch.Tensor]:
    """PR ratio and its bootstrap replicates: ``m_trained, m_init [B, S] -> (ratio, [n_boot])``.

    Two calls with the same ``seed``, B and S use the same draws, so the replicates of two PR
    ratios measured on the same images (two layers, two k's, two networks) are paired: the SD of
    their replicate differences is the SE of the difference, shared images accounted for.

    ratio = mean over images of PR(m_trained[b]) / mean over images of PR(m_init[b]), images with
    an undefined PR left out of each mean (as :func:`mean_ignoring_undefined`). The two tensors
    share one index sample, so their columns are paired. Each of the ``n_boot`` replicates
    resamples the B images and the S columns with replacement, the same draws for trained and
    init (seed-paired); se = std of the replicate ratios (ddof 1), NaN when a replicate has no
    defined image on a side. Draws: image indices ``[n_boot, B]`` then column indices
    ``[n_boot, S]`` from a local ``torch.Generator`` seeded by ``seed`` (the global RNG is untouched).
    """
    _check_paired_minors(m_trained, m_init)
    for name, m in (("m_trained", m_trained), ("m_init", m_init)):
        if torch.isinf(m).any():
            raise ValueError(f"{name} contains Inf: minors must be finite")
    n_boot = check_int("n_boot", n_boot, 2)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    B, S = m_trained.shape
    device = m_trained.device
    images = torch.randint(0, B, (n_boot, B), generator=generator).to(device)
    columns = torch.randint(0, S, (n_boot, S), generator=generator).to(device)

    with torch.no_grad():
        # PR is scale-free: dividing each image by its largest minor keeps ‖m‖₂ from underflowing.
        scaled = [_scaled_minors(m.to(device=device, dtype=torch.float64)) for m in (m_trained, m_init)]
        ones = [torch.ones(1, size, dtype=torch.float64, device=device) for size in (B, S)]
        full = [_weighted_mean_pr(m, *ones) for m in scaled]  # every weight 1: the plain PR ratio
        ratio = float(full[0][0] / full[1][0])
        step = max(1, _BOOTSTRAP_CHUNK_BYTES // (8 * (S + B)))
        replicates = []
        for r0 in range(0, n_boot, step):
            V = multiplicities(images[r0 : r0 + step], B)
            W = multiplicities(columns[r0 : r0 + step], S)
            t, i = (_weighted_mean_pr(m, V, W) for m in scaled)
            replicates.append(t / i)
    return ratio, torch.cat(replicates).cpu()


def matched_nonzero(m_a: torch.Tensor, m_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired minors ``[B, S]`` reduced per image to their non-zero minors at a matched count: each
    keeps its first c non-zero minors, c = the smaller of the two non-zero counts, and the rest are
    set to 0 (a zero adds nothing to ‖m‖₁ or ‖m‖₂). The sample is i.i.d., so the first c non-zero
    minors are a uniform subsample of them. PR over c minors of equal size is 1/√c, so exact zeros
    (dead units) would otherwise raise a network's PR by about (1 - f)^(-1/2); matched, zeros
    neither inflate nor deflate the PR ratio (docs/SPEC.md §7, the multiverse)."""
    _check_paired_minors(m_a, m_b)
    nonzero = [m != 0 for m in (m_a, m_b)]
    count = torch.minimum(*(z.sum(dim=1) for z in nonzero))[:, None]
    return tuple(torch.where(z & (z.cumsum(dim=1) <= count), m, torch.zeros_like(m))
                 for m, z in zip((m_a, m_b), nonzero))


def _check_paired_minors(m_trained: torch.Tensor, m_init: torch.Tensor) -> None:
    """Both tensors are minors ``[B, S]`` of one shape (columns paired by a shared index sample)."""
    for name, m in (("m_trained", m_trained), ("m_init", m_init)):
        if _check_minors(name, m).dim() != 2:
            raise ValueError(f"{name} has shape {list(m.shape)}: expected minors [B, S]")
    if m_trained.shape != m_init.shape:
        raise ValueError(
            f"m_trained has shape {list(m_trained.shape)} but m_init has {list(m_init.shape)}: they must match"
        )


def _scaled_minors(m: torch.Tensor) -> torch.Tensor:
    """``|m| [B, S]`` divided per image by its largest entry (all-zero images stay zero)."""
    m = m.abs()
    top = m.amax(dim=1, keepdim=True)
    return m / torch.where(top > 0, top, torch.ones_like(top))


def multiplicities(draws: torch.Tensor, size: int) -> torch.Tensor:
    """How often each index was drawn: ``draws [R, N] of 0..size-1 -> [R, size]`` float64."""
    R = draws.shape[0]
    offset = torch.arange(R, device=draws.device)[:, None] * size
    return torch.bincount((draws + offset).flatten(), minlength=R * size).view(R, size).to(torch.float64)


def _weighted_mean_pr(m: torch.Tensor, V: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Mean PR per replicate: ``m [B, S]``, image weights ``V [R, B]``, column weights ``W [R, S] -> [R]``.

    NaN PRs (an image with no weighted mass) are left out of the weighted mean.
    """
    l1 = m @ W.T  # [B, R]
    l2 = ((m * m) @ W.T).sqrt()
    defined = l1 > 0
    pr = torch.where(defined, l2 / torch.where(defined, l1, torch.ones_like(l1)), torch.zeros_like(l1))
    weight = V * defined.T  # [R, B]
    return (weight * pr.T).sum(dim=1) / weight.sum(dim=1)  # 0/0 -> NaN: no defined image


# ---------------------------------------------------------------------------------------------
# KL and Jensen-Shannon divergences of log-minor histograms


class LogMinorHistograms(NamedTuple):
    """Counts of log10(minor) for trained and init, ``[bins + 2]`` each, over shared ``edges [bins+1]``.

    ``counts[0]`` is the underflow bin (below ``edges[0]``, exact zeros included), ``counts[1:-1]``
    the ``bins`` equal bins of the central range ``[edges[0], edges[-1]]``, ``counts[-1]`` the
    overflow bin. ``zeros_*``: exact zeros of each side (all of them in its underflow bin).
    """

    trained: torch.Tensor
    init: torch.Tensor
    edges: torch.Tensor
    zeros_trained: int
    zeros_init: int


def log_minor_histograms(
    m_trained: torch.Tensor, m_init: torch.Tensor, bins: int = 100, central: float = 0.998
) -> LogMinorHistograms:
    """SPEC §5's histograms of log10 of every minor of both tensors (any shapes, all entries pooled).

    The ``bins`` equal bins span the pooled ``(1-central)/2`` to ``(1+central)/2`` quantiles
    (linear interpolation, as ``numpy.percentile``) of log10 of the positive minors of both
    tensors, exact zeros excluded; everything below goes to an underflow bin, exact zeros
    included, everything above to an overflow bin, so no minor is dropped and a handful of zero or
    extreme minors cannot stretch the bins. A zero-width range (e.g. all positive minors equal)
    becomes the width-1 range centred on it. ValueError when neither tensor has a positive minor.
    """
    bins = check_int("bins", bins, 1)
    if isinstance(central, bool) or not isinstance(central, numbers.Real) or not 0 < central <= 1:
        raise ValueError(f"central={central!r} is not allowed: expected a fraction in (0, 1]")
    logs, zeros = [], []
    for name, m in (("m_trained", m_trained), ("m_init", m_init)):
        m = _check_minors(name, m).detach().reshape(-1).to(torch.float64)
        if (m < 0).any():
            raise ValueError(f"{name} contains negative values: minors are absolute determinants")
        if torch.isinf(m).any():
            raise ValueError(f"{name} contains Inf: log10 histograms need finite minors")
        logs.append(m[m > 0].log10())
        zeros.append(m.numel() - logs[-1].numel())
    positive = torch.cat(logs)
    if positive.numel() == 0:
        raise ValueError("m_trained and m_init have no positive minor: log10 histograms need at least one")
    tail = (1 - float(central)) / 2
    lo, hi = _quantiles(positive, (tail, 1 - tail))
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    counts = []
    for t, n_zeros in zip(logs, zeros):
        c = torch.bincount(_bin_of_log(t, lo, hi, bins), minlength=bins + 2).cpu()
        c[0] += n_zeros  # exact zeros: underflow
        counts.append(c)
    return LogMinorHistograms(counts[0], counts[1], edges, zeros[0], zeros[1])


def _bin_of_log(t: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """Bin of each log10 value: 0 underflow (below lo, -inf included), 1..bins the equal bins, bins+1 overflow."""
    inner = ((t - lo) / (hi - lo) * bins).floor().clamp_(0, bins - 1).long() + 1  # hi lands in the last bin
    return torch.where(t < lo, 0, torch.where(t > hi, bins + 1, inner))


class BootstrapKL(NamedTuple):
    """KL with its bootstrap SE, and JS of the same histograms (one histogram, one percentile pass)."""

    kl: float
    se: float
    js: float
    js_se: float = math.nan
    # [2, n_boot, 2]: (image bootstrap, column bootstrap) x replicate x (KL, JS), for paired differences
    replicates: torch.Tensor | None = None


def divergence_defined(m_trained: torch.Tensor, m_init: torch.Tensor) -> bool:
    """Whether KL and JS of two minor samples are defined: when at least one side has a positive
    minor (no bin can be placed otherwise). A side whose minors are all exactly 0 has all its mass
    in the underflow bin, and its divergence is defined. The rule of every caller (library and pipeline)."""
    return bool((m_trained > 0).any() or (m_init > 0).any())


def bootstrap_kl(
    m_trained: torch.Tensor,
    m_init: torch.Tensor,
    bins: int = 100,
    smoothing: float = 1e-10,
    central: float = 0.998,
    n_boot: int = 200,
    seed: int = 0,
) -> BootstrapKL:
    """KL of :func:`kl_divergence`, its bootstrap SE, and :func:`js_divergence`: ``[B, S] x 2 -> (kl, se, js)``.

    The bin edges stay those of the full sample; each replicate re-counts the histograms. Two
    one-way bootstraps, ``n_boot`` replicates each: over the B images (columns fixed) and over the
    S columns of the shared index sample (images fixed), the same draws for trained and init.
    All NaN when neither side has a positive minor (:func:`divergence_defined`).
    se = sqrt(var_images + var_columns) (ddof 1): the two one-way variances both contain the
    image-by-column residual, so the sum errs on the large side. Draws: image indices
    ``[n_boot, B]`` then column indices ``[n_boot, S]`` from a local generator seeded by ``seed``.
    """
    _check_paired_minors(m_trained, m_init)
    n_boot = check_int("n_boot", n_boot, 2)
    if not divergence_defined(m_trained, m_init):
        return BootstrapKL(math.nan, math.nan, math.nan)
    hist = log_minor_histograms(m_trained, m_init, bins, central)  # validates bins, central and the values
    p_full, q_full = (c.to(torch.float64) / c.sum() for c in (hist.trained, hist.init))
    kl, js = _kl_of(p_full, q_full, smoothing), _js_of(p_full, q_full)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    B, S = m_trained.shape
    draws = {0: torch.randint(0, B, (n_boot, B), generator=generator),
             1: torch.randint(0, S, (n_boot, S), generator=generator)}
    lo, hi = float(hist.edges[0]), float(hist.edges[-1])
    reps = []
    with torch.no_grad():
        per_side = []
        for m in (m_trained, m_init):
            logs = m.detach().to(torch.float64).log10()  # exact zeros: -inf, the underflow bin
            per_side.append(_bin_of_log(logs, lo, hi, bins).cpu())
        for axis, size in ((0, B), (1, S)):
            counts = []
            for idx in per_side:  # counts per image [B, bins+2], or per column [S, bins+2]
                along = idx if axis == 0 else idx.T
                c = torch.zeros(size, bins + 2, dtype=torch.float64)
                counts.append(c.scatter_add_(1, along, torch.ones(along.shape, dtype=torch.float64)))
            weights = multiplicities(draws[axis], size)  # [n_boot, size]
            p, q = (weights @ c for c in counts)
            p, q = p / p.sum(1, keepdim=True), q / q.sum(1, keepdim=True)
            reps.append(torch.stack([_kl_rows(p, q, smoothing), _js_rows(p, q)], dim=1))
    replicates = torch.stack(reps)  # [2, n_boot, 2]
    se, js_se = (math.sqrt(float(replicates[:, :, i].var(dim=1, correction=1).sum())) for i in (0, 1))
    return BootstrapKL(kl, se, js, js_se, replicates)


def paired_kl_se(a: BootstrapKL, b: BootstrapKL, divergence: int = 0) -> float:
    """SE of ``a - b`` (KL if ``divergence`` is 0, JS if 1) from the replicates of two
    :func:`bootstrap_kl` calls with the same draws (same seed, images and columns): the two one-way
    variances of the replicate differences, added as in :func:`bootstrap_kl`."""
    if a.replicates is None or b.replicates is None or a.replicates.shape != b.replicates.shape:
        return math.nan
    diff = a.replicates[:, :, divergence] - b.replicates[:, :, divergence]
    return math.sqrt(float(diff.var(dim=1, correction=1).sum()))


def _kl_rows(p: torch.Tensor, q: torch.Tensor, smoothing: float) -> torch.Tensor:
    """KL of each row pair of ``p, q [R, bins]`` (probabilities), smoothed as :func:`kl_divergence`."""
    p = (p + smoothing) / (p + smoothing).sum(1, keepdim=True)
    q = (q + smoothing) / (q + smoothing).sum(1, keepdim=True)
    terms = torch.where(p > 0, p * (p / q).log(), torch.zeros_like(p))
    return terms.sum(1).clamp_min(0.0)


def _quantiles(x: torch.Tensor, qs: Sequence[float]) -> list[float]:
    """Quantiles of a 1-D ``x`` by linear interpolation (numpy's default); any size, unlike torch.quantile.

    Only the two order statistics around each quantile are needed: one ``numpy.partition`` with all
    of them as pivots finds them in a single linear pass.
    """
    values = x.detach().cpu().numpy()
    n = values.size
    positions = [q * (n - 1) for q in qs]
    lower = [min(int(math.floor(pos)), n - 1) for pos in positions]
    pivots = sorted({i for lo in lower for i in (lo, min(lo + 1, n - 1))})
    part = np.partition(values, pivots)
    return [float(part[lo] + (pos - lo) * (part[min(lo + 1, n - 1)] - part[lo])) for pos, lo in zip(positions, lower)]


def _histogram_probabilities(
    m_trained: torch.Tensor, m_init: torch.Tensor, bins: int, central: float
) -> tuple[torch.Tensor, torch.Tensor]:
    hist = log_minor_histograms(m_trained, m_init, bins, central)
    return tuple(c.to(torch.float64) / c.sum() for c in (hist.trained, hist.init))


def kl_divergence(
    m_trained: torch.Tensor,
    m_init: torch.Tensor,
    bins: int = 100,
    smoothing: float = 1e-10,
    central: float = 0.998,
) -> float:
    """``KL(P‖Q) = Σ P ln(P/Q)`` of the log10-minor histograms of trained (P) and init (Q).

    Over the ``bins + 2`` bins of :func:`log_minor_histograms` (central range, underflow with the
    exact zeros, overflow). Smoothing: each histogram is normalised to probabilities,
    ``smoothing`` is added to every bin and it is renormalised, so an empty bin of Q cannot make
    KL infinite (``smoothing=0`` can return ``inf``). Natural log. Bins 100 and smoothing 1e-10
    are SPEC §5's [assumed] defaults.
    """
    return _kl_of(*_histogram_probabilities(m_trained, m_init, bins, central), smoothing)


def _kl_of(p: torch.Tensor, q: torch.Tensor, smoothing: float) -> float:
    if isinstance(smoothing, bool) or not isinstance(smoothing, numbers.Real) or not (
        math.isfinite(smoothing) and smoothing >= 0
    ):
        raise ValueError(f"smoothing={smoothing!r} is not allowed: expected a finite number >= 0")
    p, q = _smoothed(p, smoothing), _smoothed(q, smoothing)
    if smoothing == 0 and ((p > 0) & (q == 0)).any():
        return math.inf
    return float(_kl(p, q).clamp_min(0.0))  # identical histograms can round to -1e-17


def divergences(m_trained: torch.Tensor, m_init: torch.Tensor, bins: int = 100, smoothing: float = 1e-10,
                central: float = 0.998) -> tuple[float, float]:
    """``(KL, JS)`` of one pair of histograms: :func:`kl_divergence` and :func:`js_divergence` at the
    price of one histogram (the percentiles of the pooled minors dominate their cost); NaN when
    neither side has a positive minor (:func:`divergence_defined`)."""
    if not divergence_defined(m_trained, m_init):
        return math.nan, math.nan
    p, q = _histogram_probabilities(m_trained, m_init, bins, central)
    return _kl_of(p, q, smoothing), _js_of(p, q)


def js_divergence(m_trained: torch.Tensor, m_init: torch.Tensor, bins: int = 100, central: float = 0.998) -> float:
    """Jensen–Shannon divergence ``½KL(P‖M) + ½KL(Q‖M)``, ``M = (P+Q)/2``, in ``[0, ln 2]``.

    Of the same (unsmoothed) histograms as :func:`kl_divergence`; symmetric, and finite without
    smoothing. Natural log: ln 2 for disjoint histograms.
    """
    return _js_of(*_histogram_probabilities(m_trained, m_init, bins, central))


def _js_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """JS of each row pair of ``p, q [R, bins]`` (probabilities), as :func:`_js_of`."""
    mid = (p + q) / 2

    def kl_rows(a: torch.Tensor) -> torch.Tensor:
        terms = torch.where(a > 0, a * (a / torch.where(a > 0, mid, torch.ones_like(mid))).log(), torch.zeros_like(a))
        return terms.sum(dim=1)

    return ((kl_rows(p) + kl_rows(q)) / 2).clamp(0.0, math.log(2))


def _js_of(p: torch.Tensor, q: torch.Tensor) -> float:
    mid = (p + q) / 2
    js = (_kl(p, mid) + _kl(q, mid)) / 2
    return float(js.clamp(0.0, math.log(2)))


def _smoothed(p: torch.Tensor, smoothing: float) -> torch.Tensor:
    p = p + smoothing
    return p / p.sum()


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    support = p > 0  # 0·ln(0/q) = 0
    return (p[support] * (p[support] / q[support]).log()).sum()


# ---------------------------------------------------------------------------------------------
# rotation ratio


def rotation_ratio(
    J: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    n_rotations: int = 100,
    seed: int = 0,
    chunk: int | None = None,
    rotations: str = "auto",
) -> torch.Tensor:
    """``RR = max_s m_s(J) / mean_q max_s m_s(Q_q J)`` per image: ``J [B, n, m] -> [B]`` float64.

    Q_q are random rotations of the hidden (row) space (``rotations``: ``"haar"``, ``"structured"``
    or ``"auto"``, the default of every measuring function: Haar up to 1,024 units, structured beyond,
    so a wide layer fits in memory; see :mod:`kag.rotations`); the same index sample is used for J and every Q_q J. RR > 1: the largest minors are aligned with the neuron basis; ≈ 1 for an
    isotropic (e.g. Gaussian) J. NaN where every sampled minor of an image is zero.
    See :func:`rotation_ratios` for several index samples (e.g. k = 1, 2, 3) at the price of one.
    """
    return rotation_ratios(J, [(rows, cols)], n_rotations=n_rotations, seed=seed, chunk=chunk, rotations=rotations)[0]


def rotation_ratios(
    J: torch.Tensor,
    samples: Sequence[tuple[torch.Tensor, torch.Tensor]],
    n_rotations: int = 100,
    seed: int = 0,
    chunk: int | None = None,
    rotations: str = "auto",
) -> torch.Tensor:
    """:func:`rotation_ratio` for several index samples ``[(rows [S, k], cols [S, k]), ...] -> [len, B]``.

    The ratio of :func:`rotation_maxima`'s two parts, averaged over rotations.
    """
    aligned, rotated = rotation_maxima(J, samples, n_rotations=n_rotations, seed=seed, chunk=chunk,
                                       rotations=rotations)
    return aligned / rotated.mean(dim=2)


def rotation_maxima(
    J: torch.Tensor,
    samples: Sequence[tuple[torch.Tensor, torch.Tensor]],
    n_rotations: int = 100,
    seed: int = 0,
    chunk: int | None = None,
    rotations: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The parts of the rotation ratio: ``(aligned [K, B], rotated [K, B, R])`` float64, the largest
    sampled minor of each image for each of the K index samples, unrotated and under each rotation
    Q_q. ``RR = aligned / rotated.mean(-1)``; the parts let a caller split RR's variance between
    index samples, images and rotations.

    The rotations are :func:`kag.rotations.make_rotations` ``(family, n, n_rotations, seed)``, the
    family ``rotations`` (``"haar"``, ``"structured"`` or ``"auto"``, see :mod:`kag.rotations`); see
    :func:`rotation_maxima_at` to pass them in (built once, shared by many calls) and to get the
    maxima over the first S' minors of every sample as well. ``chunk`` = (rotation, image) pairs per
    matmul (None: from a budget of 32 MB on CPU, 1 GB on CUDA).
    """
    check_jacobian(J)
    n_rotations = check_int("n_rotations", n_rotations, 1)
    Q = make_rotations(rotation_family(rotations, J.shape[1]), J.shape[1], n_rotations, seed, J.device)
    aligned, rotated = rotation_maxima_at(J, samples, Q, chunk=chunk)
    return aligned[:, -1], rotated[:, -1]


def rotation_maxima_at(
    J: torch.Tensor,
    samples: Sequence[tuple[torch.Tensor, torch.Tensor]],
    rotations: torch.Tensor,
    sizes: Sequence[int] = (),
    chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation maxima under given rotations, at several sample sizes: ``(aligned [K, P, B],
    rotated [K, P, B, R])`` float64, P = ``len(sizes) + 1``: the largest of the first ``sizes[p]``
    minors of each index sample, then (last) of all of them.

    ``rotations``: Haar matrices ``[R, n, n]`` (e.g. :func:`rotation_matrices`, built once per width
    and shared by layers, networks and estimator variants: the first R' of them are the rotations of
    a run with R' rotations), or :class:`kag.rotations.StructuredRotations` (no ``[R, n, n]``: each
    chunk's ``Q_q J[:, :, used cols]`` is computed by FFTs and its used rows kept).
    Only the sampled rows of Q_q J and the sampled columns of J matter, so each chunk
    computes ``Q_q[used rows] @ J[:, :, used cols]`` for many (rotation, image) pairs as one matmul,
    in J's dtype with TF32 off (float32 measured 2-3× faster than float64 on CPU; its error, ~1e-6
    relative, is far below the spread of the maximum over rotations); determinants too (only the maxima are float64).
    The minors of all index samples of one k are gathered straight from the matmul's output in one
    call per chunk and their maxima taken at once (no Python loop over samples).
    """
    check_jacobian(J)
    B, n, m = J.shape
    if not samples:
        raise ValueError("samples=[] is not allowed: give at least one (rows, cols) pair")
    samples = [tuple(t.to(J.device) for t in check_indices(r, c, n, m)) for r, c in samples]
    structured = isinstance(rotations, StructuredRotations)
    if structured and rotations.n != n:
        raise ValueError(f"rotations turn {rotations.n} units: expected rotations of J's {n} rows")
    if not structured and (not isinstance(rotations, torch.Tensor) or rotations.dim() != 3
                           or rotations.shape[1:] != (n, n)):
        shape = list(rotations.shape) if isinstance(rotations, torch.Tensor) else type(rotations).__name__
        raise ValueError(f"rotations has shape {shape}: expected [R, {n}, {n}] rotations of J's {n} rows")
    smallest = min(r.shape[0] for r, _ in samples)
    sizes = [check_int("sizes", s, 1) for s in sizes]
    if any(s > smallest for s in sizes):
        raise ValueError(f"sizes={sizes} asks for more minors than the smallest index sample holds ({smallest})")
    if chunk is not None:
        chunk = check_int("chunk", chunk, 1)
    n_rotations = len(rotations)
    cuts = [*sizes, None]

    def maxima(values: torch.Tensor) -> torch.Tensor:  # [..., S] -> [..., P]
        return torch.stack([values[..., :cut].amax(dim=-1) for cut in cuts], dim=-1)

    with torch.no_grad(), full_float32_precision():
        aligned = torch.stack([maxima(minors_unchecked(J, r, c)) for r, c in samples])  # [K, B, P]
        used_rows = torch.unique(torch.cat([r.flatten() for r, _ in samples]))
        used_cols = torch.unique(torch.cat([c.flatten() for _, c in samples]))
        r, u = used_rows.numel(), used_cols.numel()
        groups = _samples_by_shape(samples, used_rows, used_cols)
        Q = None if structured else rotations.to(J.device)[:, used_rows, :].to(J.dtype)  # [R, r, n]

        budget = chunk_bytes(_ROTATION_CHUNK_BYTES, J.device)
        per_pair = (4 * n if structured else 2 * r) * u * J.element_size()  # an FFT's complex copy of [n, u]
        pairs = chunk or max(1, budget // per_pair)
        bc = min(B, pairs)
        rc = max(1, min(n_rotations, pairs // bc))
        rotated_max = torch.empty(len(samples), B, n_rotations, len(cuts), dtype=torch.float64, device=J.device)
        for b0 in range(0, B, bc):
            Jb = J[b0 : b0 + bc, :, used_cols]  # [nb, n, u]
            nb = Jb.shape[0]
            for q0 in range(0, n_rotations, rc):
                nq = min(rc, n_rotations - q0)
                # [nb, nq*r, u]: each (image, rotation) pair's rotated block contiguous, ready to gather
                if structured:
                    rotated = rotations.apply(Jb, q0, q0 + nq)[:, :, used_rows].reshape(nb * nq, r * u)
                else:
                    rotated = torch.matmul(Q[q0 : q0 + nq].reshape(nq * r, n), Jb).view(nb * nq, r * u)
                for which, entries, k, S in groups:
                    best = _grouped_rotated_maxima(rotated, entries, k, S, maxima)  # [nb*nq, G, P]
                    rotated_max[which, b0 : b0 + nb, q0 : q0 + nq] = best.view(nb, nq, len(which), -1).permute(
                        2, 0, 1, 3)
    return aligned.permute(0, 2, 1), rotated_max.permute(0, 3, 1, 2)


def _samples_by_shape(samples, used_rows: torch.Tensor, used_cols: torch.Tensor):
    """Index samples grouped by shape ``(S, k)``: ``[(sample numbers, entries [k*k, G, S], k, S)]``,
    ``entries`` the positions of every minor's k×k entries in a rotated block ``[r, u]`` flattened
    (rows and columns as positions in ``used_rows`` / ``used_cols``), entry-major."""
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, (rows, _) in enumerate(samples):
        by_shape.setdefault(tuple(rows.shape), []).append(i)
    u = used_cols.numel()
    groups = []
    for (S, k), which in by_shape.items():
        rows = torch.cat([torch.searchsorted(used_rows, samples[i][0]) for i in which])  # [G*S, k]
        cols = torch.cat([torch.searchsorted(used_cols, samples[i][1]) for i in which])
        entries = entry_major_index(rows, cols, u).reshape(k * k, len(which), S)  # contiguous
        groups.append((torch.tensor(which, device=used_rows.device), entries, k, S))
    return groups


# Gathered entries of rotated minors alive at once (float32 values and determinants).
_ROTATED_GATHER_ELEMENTS = 2**22


def _grouped_rotated_maxima(rotated: torch.Tensor, entries: torch.Tensor, k: int, S: int, maxima) -> torch.Tensor:
    """Maxima of the minors of G index samples in every rotated block: ``rotated [pairs, r*u]``,
    ``entries [k*k, G, S]`` -> ``[pairs, G, P]``; gathered in blocks of whole samples to bound memory."""
    pairs, G = rotated.shape[0], entries.shape[1]
    step = max(1, _ROTATED_GATHER_ELEMENTS // max(1, pairs * k * k * S))
    out = []
    for g0 in range(0, G, step):
        idx = entries[:, g0 : g0 + step].reshape(1, -1)  # [1, k*k*g*S], entry-major
        g = idx.shape[1] // (k * k * S)
        block = rotated.gather(1, idx.expand(pairs, -1))
        # in the rotation's dtype (float32): only the largest minor is kept, and the rounding of a
        # float32 determinant (~1e-6 relative) is far below the spread of that maximum over rotations;
        # a float64 copy of every gathered entry cost as much as the gather itself
        dets = _abs_det(block.view(pairs, k, k, g * S))  # [pairs, g*S]
        out.append(maxima(dets.view(pairs, g, S)).to(torch.float64))
    return torch.cat(out, dim=1)


# ---------------------------------------------------------------------------------------------
# zero rows


class ZeroRows(NamedTuple):
    """Shares of (image, unit) rows whose norm is at most ``threshold`` (pooled over images)."""

    trained: float
    init: float
    threshold: float


def zero_row_fraction(J_trained: torch.Tensor, J_init: torch.Tensor, percentile: float = 1.0) -> ZeroRows:
    """Zero-row fractions: ``J_trained, J_init [B, n, m] -> ZeroRows``.

    τ = the ``percentile``-th percentile (linear interpolation) of the init network's row norms
    ``‖J_i‖₂`` pooled over images and units, floored at the precision of J's dtype (``eps`` times the
    largest init row norm: a norm that small is rounding); a row counts as zero when its norm is
    ``≤ τ``. So exactly-zero rows always count, also when more than ``percentile``% of the init rows
    are exactly zero and the percentile itself is 0 (ReLU layers with dead units).
    """
    check_jacobian(J_trained, "J_trained")
    check_jacobian(J_init, "J_init")
    if J_trained.shape != J_init.shape:
        raise ValueError(
            f"J_trained has shape {list(J_trained.shape)} but J_init has {list(J_init.shape)}: they must match"
        )
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile < 100:
        raise ValueError(f"percentile={percentile!r} is not allowed: expected a number in (0, 100)")
    norms_trained = torch.linalg.vector_norm(J_trained, dim=2, dtype=torch.float64).flatten()
    norms_init = torch.linalg.vector_norm(J_init, dim=2, dtype=torch.float64).flatten()
    tau = zero_row_threshold(norms_init, percentile, J_init.dtype)
    return ZeroRows(
        trained=float((norms_trained <= tau).double().mean()),
        init=float((norms_init <= tau).double().mean()),
        threshold=tau,
    )


def zero_row_threshold(norms_init: torch.Tensor, percentile: float, dtype: torch.dtype) -> float:
    """τ of :func:`zero_row_fraction` from the init's row norms (any shape): their ``percentile``-th
    percentile, at least ``eps(dtype)`` times the largest of them."""
    values = norms_init.detach().to(torch.float64).flatten().cpu().numpy()
    floor = float(torch.finfo(dtype).eps) * float(values.max(initial=0.0))
    return max(float(np.percentile(values, percentile)), floor)
