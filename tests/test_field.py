"""The wider field's observables (kag.field) against transcriptions of their formulas: kag-core's
(``kag_core/ka_metrics.py``: one image, one value at a time, ``torch.norm``/``torch.det``) and numpy's SVD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kag.determinants import sample_indices
from kag.field import (KAGCORE_EPS, column_norms, effective_rank, kagcore_pr, kagcore_pr_standard,
                       kagcore_rotation_ratio, kl_from_uniform)
from kag.metrics import rotation_matrices


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def values() -> torch.Tensor:
    v = torch.randn(5, 40, generator=_gen(0), dtype=torch.float64) ** 3  # heavy-tailed, signed
    v[1, :39] = 0.0  # one value dominates
    v[2] = 0.5  # uniform
    return v


def _transcribed_pr(v: torch.Tensor) -> float:  # kag-core compute_pr
    a = torch.nan_to_num(torch.abs(v), nan=0.0, posinf=0.0, neginf=0.0)
    l1, l2 = torch.norm(a, p=1), torch.norm(a, p=2)
    return float("nan") if l1 < KAGCORE_EPS else (l2 / (l1 + KAGCORE_EPS)).item()


def _transcribed_kl(v: torch.Tensor) -> float:  # kag-core compute_kl_divergence
    a = torch.nan_to_num(torch.abs(v), nan=0.0, posinf=0.0, neginf=0.0)
    if a.sum() < KAGCORE_EPS:
        return float("nan")
    p = a / a.sum()
    q = torch.ones_like(p) / len(p)
    return torch.sum(p * torch.log((p + KAGCORE_EPS) / q)).item()


def test_kagcore_pr_and_kl_are_their_formulas_image_by_image(values):
    np.testing.assert_allclose(kagcore_pr(values), [_transcribed_pr(v) for v in values], rtol=1e-12)
    np.testing.assert_allclose(kl_from_uniform(values), [_transcribed_kl(v) for v in values], rtol=1e-10,
                               atol=1e-12)
    assert kagcore_pr(values)[1] == pytest.approx(1.0) and kagcore_pr(values)[2] == pytest.approx(1 / math.sqrt(40))
    assert kl_from_uniform(values)[2] == pytest.approx(0.0, abs=1e-9)
    assert kl_from_uniform(values)[1] == pytest.approx(math.log(40), rel=1e-9)  # all mass on one value


def test_the_physics_pr_is_large_when_uniform(values):
    a = values.abs()
    want = [float(r.sum() ** 2 / (len(r) * (r * r).sum())) for r in a]
    np.testing.assert_allclose(kagcore_pr_standard(values), want, rtol=1e-12)
    assert kagcore_pr_standard(values)[2] == pytest.approx(1.0) and kagcore_pr_standard(values)[1] == pytest.approx(1 / 40)


def test_undefined_values_are_nan_not_errors():
    zeros = torch.zeros(2, 10)
    for fn in (kagcore_pr, kl_from_uniform, kagcore_pr_standard):
        assert torch.isnan(fn(zeros)).all(), fn.__name__
    nan_inf = torch.tensor([[float("nan"), float("inf"), 2.0, 2.0]])
    assert kagcore_pr(nan_inf)[0] == pytest.approx(_transcribed_pr(nan_inf[0]))  # NaN and Inf count as 0
    with pytest.raises(ValueError, match=r"values has shape \[3\]: expected a non-empty \[B, S\] tensor"):
        kagcore_pr(torch.ones(3))


def test_effective_rank_is_the_participation_ratio_of_the_spectrum():
    J = torch.randn(4, 6, 9, generator=_gen(1), dtype=torch.float64)
    J[1] = torch.outer(torch.randn(6, generator=_gen(2), dtype=torch.float64),
                       torch.randn(9, generator=_gen(3), dtype=torch.float64))  # rank one
    J[2] = torch.eye(6, 9, dtype=torch.float64) * 3.0  # equal singular values
    J[3] = 0.0
    want = []
    for j in J.numpy():
        s2 = np.linalg.svd(j, compute_uv=False) ** 2
        want.append(s2.sum() ** 2 / (s2**2).sum() if s2.sum() > 0 else math.nan)
    got = effective_rank(J)
    np.testing.assert_allclose(got[:3], want[:3], rtol=1e-10)
    assert got[1] == pytest.approx(1.0) and got[2] == pytest.approx(6.0) and torch.isnan(got[3])


def test_column_norm_observables_use_the_input_columns():
    J = torch.randn(3, 5, 7, generator=_gen(4), dtype=torch.float64)
    norms = column_norms(J)
    assert norms.shape == (3, 7)
    torch.testing.assert_close(norms, torch.stack([torch.norm(j, dim=0) for j in J]))
    np.testing.assert_allclose(kagcore_pr(norms), [_transcribed_pr(torch.norm(j, dim=0)) for j in J], rtol=1e-12)


def test_kagcore_rotation_ratio_is_its_formula_with_a_fresh_sample_per_rotation():
    J = torch.randn(3, 8, 12, generator=_gen(5), dtype=torch.float64)
    k, S, R, seed = 2, 40, 4, 11
    got = kagcore_rotation_ratio(J, k, n_samples=S, n_rotations=R, seed=seed)
    samples = [sample_indices(8, k, S, n_cols=12, seed=seed + i) for i in range(R + 1)]
    Q = rotation_matrices(8, R, seed)

    def max_minor(j: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> float:  # one torch.det per minor
        return max(abs(float(torch.det(j[r][:, c]))) for r, c in zip(rows, cols))

    for b in range(3):
        aligned = max_minor(J[b], *samples[0])
        rotated = np.mean([max_minor(Q[q] @ J[b], *samples[q + 1]) for q in range(R)])
        assert got[b].item() == pytest.approx(aligned / rotated, rel=1e-10)
    assert torch.isnan(kagcore_rotation_ratio(torch.zeros(1, 4, 4), 1, n_samples=5, n_rotations=2)).all()
