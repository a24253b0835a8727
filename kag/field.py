"""Observables of the wider field, beside the paper's (issue 18 item 7).

* :func:`effective_rank`: the participation ratio of the Jacobian's spectrum, ``(Σσ²)² / Σσ⁴``
  (1 for a rank-one J, ``min(n, d)`` for one with equal singular values);
* :func:`column_norms` and, on them, the PR and KL of the column norms: how unevenly the input
  pixels are used, with no minors at all;
* :func:`kl_from_uniform`: KL of the normalised ``|values|`` against the uniform distribution,
  which needs no initial network;
* kag-core's definitions (``logiq-ai/kag-core``, ``kag_core/ka_metrics.py``), as named variants of
  ours: :func:`kagcore_pr` (``L2 / (L1 + eps)``; ours is ``L2 / L1`` with each image divided by its
  largest minor first), :func:`kagcore_pr_standard` (the physics PR ``L1² / (n L2²)``, large when
  uniform), :func:`kagcore_rotation_ratio` (a fresh index sample for the unrotated J and for every
  rotation; ours shares one index sample between J and all its rotations, which removes the
  sampling noise from the ratio). kag-core's KL is :func:`kl_from_uniform`; ours compares the
  log-minor histograms of the trained and the initial network.

Every function works on a batch of images at once: values ``[B, S]`` or Jacobians ``[B, n, d]``.
"""

from __future__ import annotations

import math

import torch

from kag.checks import check_int, check_jacobian

from kag.determinants import minors_unchecked, sample_indices
from kag.rotations import rotation_matrices

KAGCORE_EPS = 1e-12  # kag-core's eps in its PR and KL


def _values(values: torch.Tensor) -> torch.Tensor:
    """``|values|`` as ``[B, S]`` float64, NaN and Inf set to 0 (as kag-core does)."""
    if not isinstance(values, torch.Tensor) or values.dim() != 2 or values.numel() == 0:
        shape = list(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"values has shape {shape}: expected a non-empty [B, S] tensor (one row per image)")
    return torch.nan_to_num(values.detach().to(torch.float64).abs(), nan=0.0, posinf=0.0, neginf=0.0)


def effective_rank(J: torch.Tensor) -> torch.Tensor:
    """The participation ratio of each image's singular values: ``J [B, n, d] -> [B]`` float64,
    ``(Σσ²)² / Σσ⁴``; NaN for an all-zero Jacobian."""
    check_jacobian(J)
    s2 = torch.linalg.svdvals(J.to(torch.float64)) ** 2
    total = s2.sum(dim=1)
    out = total**2 / (s2**2).sum(dim=1)
    return torch.where(total > 0, out, torch.full_like(out, math.nan))


def column_norms(J: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each column (input value) of each image's Jacobian: ``[B, n, d] -> [B, d]`` float64."""
    check_jacobian(J)
    return torch.linalg.vector_norm(J.to(torch.float64), dim=1)


def kl_from_uniform(values: torch.Tensor, eps: float = KAGCORE_EPS) -> torch.Tensor:
    """kag-core's KL: ``p = |v| / Σ|v|`` per image, ``KL(p ‖ uniform) = Σ p log((p + eps) · S)``:
    ``[B, S] -> [B]``; 0 when uniform, ``log S`` at most; NaN where ``Σ|v| < eps``."""
    v = _values(values)
    total = v.sum(dim=1, keepdim=True)
    p = v / total.clamp_min(eps)
    out = (p * torch.log((p + eps) * v.shape[1])).sum(dim=1)
    return torch.where(total[:, 0] >= eps, out, torch.full_like(out, math.nan))


def kagcore_pr(values: torch.Tensor, eps: float = KAGCORE_EPS) -> torch.Tensor:
    """kag-core's PR, ``L2 / (L1 + eps)`` of ``|values|``: ``[B, S] -> [B]`` (1 when one value
    dominates, ``1/√S`` when all are equal); NaN where ``L1 < eps``."""
    v = _values(values)
    l1, l2 = v.sum(dim=1), torch.linalg.vector_norm(v, dim=1)
    out = l2 / (l1 + eps)
    return torch.where(l1 >= eps, out, torch.full_like(out, math.nan))


def kagcore_pr_standard(values: torch.Tensor) -> torch.Tensor:
    """The physics participation ratio ``L1² / (S · L2²)`` of ``|values|``: ``[B, S] -> [B]`` (1 when
    uniform, ``1/S`` when one value dominates: large means spread, the opposite of PR); NaN for zeros."""
    v = _values(values)
    l2sq = (v * v).sum(dim=1)
    out = v.sum(dim=1) ** 2 / (v.shape[1] * l2sq)
    return torch.where(l2sq > 0, out, torch.full_like(out, math.nan))


def kagcore_rotation_ratio(J: torch.Tensor, k: int, n_samples: int = 300, n_rotations: int = 5,
                           seed: int = 0) -> torch.Tensor:
    """kag-core's RR: ``max |minors of J| / mean_q max |minors of Q_q J|`` with a fresh index sample of
    ``n_samples`` k-minors for J and for each of the ``n_rotations`` Haar rotations Q_q of the rows:
    ``[B, n, d] -> [B]`` float64 (the same samples and rotations for every image); NaN where a
    maximum is 0."""
    check_jacobian(J)
    B, n, d = J.shape
    k = check_int("k", k, 1)
    n_rotations = check_int("n_rotations", n_rotations, 1)
    samples = [sample_indices(n, k, n_samples, n_cols=d, seed=seed + i) for i in range(n_rotations + 1)]
    J64 = J.to(torch.float64)
    Q = rotation_matrices(n, n_rotations, seed, J.device)  # [R, n, n]
    rotated = torch.einsum("qij,bjd->qbid", Q, J64)  # [R, B, n, d]
    aligned = minors_unchecked(J64, *(t.to(J.device) for t in samples[0])).amax(dim=1)
    maxima = torch.stack([minors_unchecked(rotated[q], *(t.to(J.device) for t in samples[q + 1])).amax(dim=1)
                          for q in range(n_rotations)])  # [R, B]
    mean_rotated = maxima.mean(dim=0)
    out = aligned / mean_rotated
    return torch.where((aligned > 0) & (mean_rotated > 0), out, torch.full_like(out, math.nan))
