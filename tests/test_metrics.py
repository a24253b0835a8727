"""The observables of SPEC §5 on hand-made cases whose answer is known."""

import math

import numpy as np
import pytest
import torch

from kag.metrics import (
    ZeroRows,
    kl_divergence,
    log_minor_histograms,
    mean_ignoring_undefined,
    participation_ratio,
    rotation_matrices,
    rotation_ratio,
    rotation_ratios,
    zero_row_fraction,
)
from kag.determinants import minors, sample_indices

B, N = 8, 16  # images and hidden units of the synthetic Jacobians


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ka_ideal_jacobian(seed: int = 0) -> torch.Tensor:
    """Each pixel feeds exactly one hidden unit, with a random magnitude: ``[B, N, 784]``."""
    g = _gen(seed)
    J = torch.zeros(B, N, 784, dtype=torch.float64)
    owner = torch.randint(0, N, (B, 1, 784), generator=g)
    return J.scatter_(1, owner, torch.rand(B, 1, 784, generator=g, dtype=torch.float64) + 0.1)


def _gaussian_jacobian(seed: int = 1) -> torch.Tensor:
    return torch.randn(B, N, 784, generator=_gen(seed), dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# participation ratio


def test_pr_of_one_dominant_minor_is_one():
    m = torch.zeros(2, 50, dtype=torch.float64)
    m[:, 7] = 3.0
    torch.testing.assert_close(participation_ratio(m), torch.ones(2, dtype=torch.float64))


def test_pr_of_equal_minors_is_one_over_root_s():
    S = 400
    torch.testing.assert_close(participation_ratio(torch.full((3, S), 0.2)), torch.full((3,), 1 / math.sqrt(S)))


def test_pr_is_scale_invariant_and_within_its_range():
    m = torch.rand(5, 300, generator=_gen(), dtype=torch.float64)
    pr = participation_ratio(m)
    torch.testing.assert_close(participation_ratio(1e-7 * m), pr)
    assert ((pr >= 1 / math.sqrt(300)) & (pr <= 1)).all()


def test_pr_of_all_zero_minors_is_undefined_and_counted():
    m = torch.rand(4, 10, dtype=torch.float64)
    m[1] = 0.0
    pr = participation_ratio(m)
    assert torch.isnan(pr[1]) and not torch.isnan(pr[[0, 2, 3]]).any()
    mean, n_undefined = mean_ignoring_undefined(pr)
    assert n_undefined == 1
    assert mean == pytest.approx(float(pr[[0, 2, 3]].mean()))


def test_mean_of_nothing_defined_is_nan():
    mean, n_undefined = mean_ignoring_undefined([float("nan")] * 3)
    assert math.isnan(mean) and n_undefined == 3
    assert mean_ignoring_undefined(np.array([1.0, 3.0])) == (2.0, 0)


def test_pr_rejects_nan_and_empty():
    with pytest.raises(ValueError, match="m contains NaN"):
        participation_ratio(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match=r"m has shape \[3, 0\]"):
        participation_ratio(torch.zeros(3, 0))


# ---------------------------------------------------------------------------------------------
# KL divergence


def test_kl_of_identical_distributions_is_zero():
    m = torch.rand(6, 500, generator=_gen(), dtype=torch.float64) + 1e-3
    assert kl_divergence(m, m.clone()) == pytest.approx(0.0, abs=1e-9)


def test_kl_of_disjoint_distributions_is_large():
    low = torch.rand(4, 200, generator=_gen(0), dtype=torch.float64) * 1e-6 + 1e-7
    high = torch.rand(4, 200, generator=_gen(1), dtype=torch.float64) + 1.0
    assert kl_divergence(high, low) > 10  # ≈ ln(1/smoothing) per unit of mass
    assert kl_divergence(high, low, smoothing=0.0) == math.inf


@pytest.mark.parametrize("seed", range(5))
def test_kl_is_non_negative(seed):
    g = _gen(seed)
    a = torch.rand(3, 100, generator=g, dtype=torch.float64) ** 3
    b = torch.rand(3, 100, generator=g, dtype=torch.float64)
    assert kl_divergence(a, b, bins=20) >= 0


def test_kl_grows_when_the_trained_minors_spread():
    base = torch.randn(10_000, generator=_gen(0), dtype=torch.float64).exp()
    near = torch.randn(10_000, generator=_gen(1), dtype=torch.float64).exp()
    spread = (3 * torch.randn(10_000, generator=_gen(2), dtype=torch.float64)).exp()
    assert kl_divergence(spread, base) > 10 * kl_divergence(near, base)


def test_exact_zero_minors_are_dropped_and_counted():
    m = torch.tensor([[0.0, 1.0, 10.0], [0.0, 0.0, 100.0]], dtype=torch.float64)
    hist = log_minor_histograms(m, m[:1], bins=4)
    assert hist.dropped_trained == 3 and hist.dropped_init == 1
    assert int(hist.trained.sum()) == 3 and int(hist.init.sum()) == 2
    torch.testing.assert_close(hist.edges, torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0], dtype=torch.float64))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(bins=0), "bins=0 is not allowed"),
        (dict(smoothing=-1.0), "smoothing=-1.0 is not allowed"),
        (dict(m_trained=torch.zeros(2, 3)), "m_trained has no positive minor"),
        (dict(m_init=torch.tensor([1.0, -1.0])), "m_init contains negative values"),
        (dict(m_init=torch.tensor([1.0, float("nan")])), "m_init contains NaN"),
    ],
    ids=["bins0", "negative-smoothing", "all-zero", "negative", "nan"],
)
def test_bad_kl_arguments_raise(kwargs, message):
    args = dict(m_trained=torch.rand(2, 3) + 0.1, m_init=torch.rand(2, 3) + 0.1) | kwargs
    with pytest.raises(ValueError, match=message):
        kl_divergence(**args)


# ---------------------------------------------------------------------------------------------
# rotation ratio


def test_rotation_matrices_are_orthogonal():
    Q = rotation_matrices(12, 30, seed=0)
    assert Q.shape == (30, 12, 12) and Q.dtype == torch.float64
    torch.testing.assert_close(Q.transpose(1, 2) @ Q, torch.eye(12, dtype=torch.float64).expand(30, 12, 12))
    torch.testing.assert_close(torch.linalg.det(Q).abs(), torch.ones(30, dtype=torch.float64))


def test_rotation_matrices_look_haar():
    """Entries centred with variance 1/n, diagonal included (plain QR would bias the diagonal)."""
    n = 4
    Q = rotation_matrices(n, 4000, seed=1)
    assert abs(float(Q.mean())) < 0.01
    assert float(Q.var()) == pytest.approx(1 / n, rel=0.05)
    assert abs(float(torch.diagonal(Q, dim1=1, dim2=2).mean())) < 0.02


def test_rotation_matrices_are_deterministic_per_seed():
    assert torch.equal(rotation_matrices(5, 3, seed=2), rotation_matrices(5, 3, seed=2))
    assert not torch.equal(rotation_matrices(5, 3, seed=2), rotation_matrices(5, 3, seed=3))


def test_ka_ideal_jacobian_beats_a_dense_gaussian_one():
    rows, cols = sample_indices(N, 2, 2000, n_cols=784, seed=1)
    ka, gauss = _ka_ideal_jacobian(), _gaussian_jacobian()
    pr_ka, pr_gauss = (participation_ratio(minors(J, rows, cols)).mean() for J in (ka, gauss))
    rr_ka, rr_gauss = (rotation_ratio(J, rows, cols, n_rotations=20).mean() for J in (ka, gauss))
    assert pr_ka > 3 * pr_gauss
    assert 0.8 < rr_gauss < 1.25
    assert rr_ka > 2.0


def test_rotating_a_gaussian_jacobian_keeps_its_rotation_ratio():
    rows, cols = sample_indices(N, 2, 1000, n_cols=784, seed=2)
    J = _gaussian_jacobian()
    Q0 = rotation_matrices(N, 1, seed=99)[0]
    rr, rr_rotated = (rotation_ratio(X, rows, cols, n_rotations=20).mean() for X in (J, Q0 @ J))
    assert float(rr_rotated) == pytest.approx(float(rr), rel=0.15)


def test_rotation_ratio_is_the_same_whatever_the_chunk():
    rows, cols = sample_indices(N, 3, 300, n_cols=784, seed=3)
    J = _gaussian_jacobian().float()
    whole = rotation_ratio(J, rows, cols, n_rotations=6)
    assert whole.shape == (B,) and whole.dtype == torch.float64
    torch.testing.assert_close(rotation_ratio(J, rows, cols, n_rotations=6, chunk=5), whole)


def test_rotation_ratio_matches_its_definition():
    """Brute force: minors of every explicitly rotated Jacobian."""
    rows, cols = sample_indices(N, 2, 200, n_cols=784, seed=4)
    J = _ka_ideal_jacobian()
    Q = rotation_matrices(N, 5, seed=7)
    rotated_max = torch.stack([minors(q @ J, rows, cols).amax(dim=1) for q in Q]).mean(dim=0)
    expected = minors(J, rows, cols).amax(dim=1) / rotated_max
    torch.testing.assert_close(rotation_ratio(J, rows, cols, n_rotations=5, seed=7), expected)


def test_bad_rotation_arguments_raise():
    J = _gaussian_jacobian()
    rows, cols = sample_indices(N, 2, 10, n_cols=784)
    with pytest.raises(ValueError, match="n_rotations=0 is not allowed"):
        rotation_ratio(J, rows, cols, n_rotations=0)
    with pytest.raises(ValueError, match=r"rows contains \d+: indices must be in 0..7"):
        rotation_ratio(J[:, :8], rows + 8, cols)


# ---------------------------------------------------------------------------------------------
# zero rows


def test_zero_rows_are_found():
    J_init = torch.randn(32, 64, 784, generator=_gen(0))
    J_trained = torch.randn(32, 64, 784, generator=_gen(1))
    J_trained[:, :20] = 0.0  # 31% of the units are dead
    result = zero_row_fraction(J_trained, J_init)
    assert isinstance(result, ZeroRows)
    assert result.trained >= 0.3
    assert result.init == pytest.approx(0.01, abs=0.002)
    assert result.threshold > 0


def test_zero_rows_reject_mismatched_shapes_and_percentiles():
    J = torch.randn(2, 4, 784)
    with pytest.raises(ValueError, match=r"J_trained has shape \[2, 3, 784\] but J_init has \[2, 4, 784\]"):
        zero_row_fraction(J[:, :3], J)
    with pytest.raises(ValueError, match="percentile=100 is not allowed"):
        zero_row_fraction(J, J, percentile=100)
    with pytest.raises(ValueError, match="J_init contains NaN"):
        zero_row_fraction(J, J * float("nan"))


def test_rotation_ratios_of_several_samples_equal_each_alone():
    g = torch.Generator().manual_seed(3)
    J = torch.randn(3, 10, 40, generator=g)
    samples = [sample_indices(10, k, 50, n_cols=40, pool=list(range(40)), seed=k) for k in (1, 2, 3)]
    together = rotation_ratios(J, samples, n_rotations=7, seed=5)
    for i, (rows, cols) in enumerate(samples):
        torch.testing.assert_close(together[i], rotation_ratio(J, rows, cols, n_rotations=7, seed=5))
