"""The KAG observables of SPEC §5, as pure functions of minors and Jacobians.

* :func:`participation_ratio` — concentration of the minors of each image, ``‖m‖₂/‖m‖₁``;
* :func:`kl_divergence` — how far the trained log-minor distribution moved from the init one;
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
from kag.determinants import check_indices, check_int, check_jacobian, chunk_bytes, minors_unchecked

# Version of the observables (PR, KL histograms, RR estimator, zero rows): part of every metric
# cache key; bump it when any of them computes something else.
OBSERVABLES_VERSION = 1

# Rotated Jacobians alive at once in rotation_ratio: cache-sized on CPU, big on GPUs.
_ROTATION_CHUNK_BYTES = {"cpu": 32 * 2**20, "cuda": 1024 * 2**20}


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
    all zero has no defined PR and gets NaN (never a silent 0/0 -> 0).
    """
    m = _check_minors("m", m)
    l1 = m.abs().sum(dim=-1)
    l2 = torch.linalg.vector_norm(m, dim=-1)
    return torch.where(l1 > 0, l2 / l1, torch.full_like(l1, math.nan))


def mean_ignoring_undefined(values: torch.Tensor | np.ndarray | list[float]) -> tuple[float, int]:
    """``(mean of the non-NaN values, number of NaNs)``; the mean is NaN when nothing is defined."""
    v = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64).ravel()
    undefined = np.isnan(v)
    n_undefined = int(undefined.sum())
    mean = float(v[~undefined].mean()) if n_undefined < v.size else math.nan
    return mean, n_undefined


# ---------------------------------------------------------------------------------------------
# KL divergence of log-minor histograms


class LogMinorHistograms(NamedTuple):
    """Counts of log10(minor) per bin for trained and init over shared ``edges [bins+1]``.

    Exact zeros have no logarithm: they are left out and counted in ``dropped_*``.
    """

    trained: torch.Tensor
    init: torch.Tensor
    edges: torch.Tensor
    dropped_trained: int
    dropped_init: int


def log_minor_histograms(m_trained: torch.Tensor, m_init: torch.Tensor, bins: int = 100) -> LogMinorHistograms:
    """Histograms of log10 of all positive entries of both tensors, ``bins`` bins over their joint range."""
    bins = check_int("bins", bins, 1)
    logs, dropped = [], []
    for name, m in (("m_trained", m_trained), ("m_init", m_init)):
        m = _check_minors(name, m).detach().reshape(-1).to(torch.float64)
        if (m < 0).any():
            raise ValueError(f"{name} contains negative values: minors are absolute determinants")
        positive = m[m > 0]
        if positive.numel() == 0:
            raise ValueError(f"{name} has no positive minor: log10 histograms need at least one")
        logs.append(positive.log10())
        dropped.append(m.numel() - positive.numel())
    lo = float(min(t.min() for t in logs))
    hi = float(max(t.max() for t in logs))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("minors contain Inf: log10 histograms need finite minors")
    if hi == lo:  # a single value: one bin centred on it
        lo, hi = lo - 0.5, hi + 0.5
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    counts = []
    for t in logs:
        idx = ((t - lo) / (hi - lo) * bins).floor().clamp_(0, bins - 1).long()  # max lands in the last bin
        counts.append(torch.bincount(idx, minlength=bins).cpu())
    return LogMinorHistograms(counts[0], counts[1], edges, dropped[0], dropped[1])


def kl_divergence(
    m_trained: torch.Tensor, m_init: torch.Tensor, bins: int = 100, smoothing: float = 1e-10
) -> float:
    """``KL(P‖Q) = Σ P ln(P/Q)`` of the log10-minor histograms of trained (P) and init (Q).

    All entries of each tensor are pooled (images and samples); ``bins`` equal bins span the
    joint range of both. Exact zeros have no log10 and are dropped (counts in
    :func:`log_minor_histograms`). Smoothing: each histogram is normalised to probabilities,
    ``smoothing`` is added to every bin and it is renormalised, so an empty bin of Q cannot make
    KL infinite (``smoothing=0`` can return ``inf``). Natural log. Bins 100 and smoothing 1e-10
    are SPEC §5's [assumed] defaults.
    """
    if isinstance(smoothing, bool) or not isinstance(smoothing, numbers.Real) or not (
        math.isfinite(smoothing) and smoothing >= 0
    ):
        raise ValueError(f"smoothing={smoothing!r} is not allowed: expected a finite number >= 0")
    hist = log_minor_histograms(m_trained, m_init, bins)
    p, q = (_smoothed(c.to(torch.float64), smoothing) for c in (hist.trained, hist.init))
    if smoothing == 0 and ((p > 0) & (q == 0)).any():
        return math.inf
    support = p > 0  # 0·ln(0/q) = 0
    kl = (p[support] * (p[support] / q[support]).log()).sum()
    return float(kl.clamp_min(0.0))  # identical histograms can round to -1e-17


def _smoothed(counts: torch.Tensor, smoothing: float) -> torch.Tensor:
    p = counts / counts.sum() + smoothing
    return p / p.sum()


# ---------------------------------------------------------------------------------------------
# rotation ratio


def rotation_matrices(
    n: int, n_rotations: int, seed: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Haar-random orthogonal matrices ``[n_rotations, n, n]`` float64 on ``device``.

    QR of a standard Gaussian with the signs of R's diagonal folded into Q (without that
    correction QR is not Haar). The Gaussians come from a CPU generator seeded by ``seed``, so
    every device gets the same rotations up to float rounding.
    """
    n = check_int("n", n, 1)
    n_rotations = check_int("n_rotations", n_rotations, 1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    gauss = torch.randn(n_rotations, n, n, generator=generator, dtype=torch.float64).to(device)
    q, r = torch.linalg.qr(gauss)
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    signs[signs == 0] = 1.0
    return q * signs[:, None, :]


def rotation_ratio(
    J: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    n_rotations: int = 100,
    seed: int = 0,
    chunk: int | None = None,
) -> torch.Tensor:
    """``RR = max_s m_s(J) / mean_q max_s m_s(Q_q J)`` per image: ``J [B, n, m] -> [B]`` float64.

    Q_q are Haar rotations of the hidden (row) space; the same index sample is used for J and
    every Q_q J. RR > 1: the largest minors are aligned with the neuron basis; ≈ 1 for an
    isotropic (e.g. Gaussian) J. NaN where every sampled minor of an image is zero.
    See :func:`rotation_ratios` for several index samples (e.g. k = 1, 2, 3) at the price of one.
    """
    return rotation_ratios(J, [(rows, cols)], n_rotations=n_rotations, seed=seed, chunk=chunk)[0]


def rotation_ratios(
    J: torch.Tensor,
    samples: Sequence[tuple[torch.Tensor, torch.Tensor]],
    n_rotations: int = 100,
    seed: int = 0,
    chunk: int | None = None,
) -> torch.Tensor:
    """:func:`rotation_ratio` for several index samples ``[(rows [S, k], cols [S, k]), ...] -> [len, B]``.

    The rotated Jacobians are shared by all samples, so k = 1, 2, 3 cost about what one k costs.
    Only the sampled rows of Q_q J and the sampled columns of J matter, so each chunk computes
    ``Q_q[used rows] @ J[:, :, used cols]`` for many (rotation, image) pairs as one matmul, in J's
    dtype with TF32 off (float32 measured 2-3× faster than float64 on CPU; its error, ~1e-6
    relative, is far below the spread of the maximum over rotations); determinants are float64.
    ``chunk`` = (rotation, image) pairs per matmul (None: from a budget of 32 MB on CPU, 1 GB on CUDA).
    """
    check_jacobian(J)
    B, n, m = J.shape
    if not samples:
        raise ValueError("samples=[] is not allowed: give at least one (rows, cols) pair")
    samples = [tuple(t.to(J.device) for t in check_indices(r, c, n, m)) for r, c in samples]
    n_rotations = check_int("n_rotations", n_rotations, 1)
    if chunk is not None:
        chunk = check_int("chunk", chunk, 1)

    with torch.no_grad(), full_float32_precision():
        aligned = torch.stack([minors_unchecked(J, r, c).amax(dim=1) for r, c in samples])  # [K, B]
        used_rows = torch.unique(torch.cat([r.flatten() for r, _ in samples]))
        used_cols = torch.unique(torch.cat([c.flatten() for _, c in samples]))
        local = [(torch.searchsorted(used_rows, r), torch.searchsorted(used_cols, c)) for r, c in samples]
        r, u = used_rows.numel(), used_cols.numel()
        Q = rotation_matrices(n, n_rotations, seed, J.device)[:, used_rows, :].to(J.dtype)  # [R, r, n]

        budget = chunk_bytes(_ROTATION_CHUNK_BYTES, J.device)
        pairs = chunk or max(1, budget // (2 * r * u * J.element_size()))
        bc = min(B, pairs)
        rc = max(1, min(n_rotations, pairs // bc))
        rotated_max_sum = torch.zeros(len(samples), B, dtype=torch.float64, device=J.device)
        for b0 in range(0, B, bc):
            Jb = J[b0 : b0 + bc, :, used_cols]  # [nb, n, u]
            nb = Jb.shape[0]
            Jb = Jb.permute(1, 0, 2).reshape(n, nb * u)  # [n, nb*u]: the chunk's images side by side
            for q0 in range(0, n_rotations, rc):
                Qc = Q[q0 : q0 + rc]
                nq = Qc.shape[0]
                rotated = (Qc.reshape(nq * r, n) @ Jb).view(nq, r, nb, u).transpose(1, 2).reshape(nq * nb, r, u)
                for i, (rows_local, cols_local) in enumerate(local):
                    best = minors_unchecked(rotated, rows_local, cols_local).amax(dim=1)  # [nq*nb]
                    rotated_max_sum[i, b0 : b0 + nb] += best.view(nq, nb).sum(dim=0)
    return aligned / (rotated_max_sum / n_rotations)


# ---------------------------------------------------------------------------------------------
# zero rows


class ZeroRows(NamedTuple):
    """Shares of (image, unit) rows whose norm is below ``threshold`` (pooled over images)."""

    trained: float
    init: float
    threshold: float


def zero_row_fraction(J_trained: torch.Tensor, J_init: torch.Tensor, percentile: float = 1.0) -> ZeroRows:
    """Zero-row fractions: ``J_trained, J_init [B, n, m] -> ZeroRows``.

    τ = the ``percentile``-th percentile (linear interpolation) of the init network's row norms
    ``‖J_i‖₂`` pooled over images and units; a row counts as zero when its norm is ``< τ``.
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
    tau = float(np.percentile(norms_init.cpu().numpy(), percentile))
    return ZeroRows(
        trained=float((norms_trained < tau).double().mean()),
        init=float((norms_init < tau).double().mean()),
        threshold=tau,
    )
