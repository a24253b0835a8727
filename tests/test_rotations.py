"""kag.rotations: Haar and structured rotations of a layer's units, and RR for wide layers within memory."""

from __future__ import annotations

import math

import pytest
import torch

from kag.determinants import minors, sample_indices
from kag.measurement import measure_jacobians, memory_estimate
from kag.metrics import rotation_maxima_at
from kag.rotations import (HAAR_MAX_UNITS, StructuredRotations, hartley, make_rotations, rotation_family,
                           rotation_matrices, rotations_bytes)


def test_hartley_is_the_orthonormal_cas_transform_for_any_length():
    for n in (1, 5, 8, 13):
        j = torch.arange(n, dtype=torch.float64)
        angle = 2 * math.pi * j[:, None] * j[None, :] / n
        cas = (torch.cos(angle) + torch.sin(angle)) / math.sqrt(n)  # the definition, by hand
        x = torch.randn(3, n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
        torch.testing.assert_close(hartley(x, dim=1), torch.einsum("ij,bjc->bic", cas, x))
        torch.testing.assert_close(hartley(hartley(x, dim=1), dim=1), x)  # its own inverse


@pytest.mark.parametrize("n", [7, 64, 100])
def test_structured_rotations_are_orthogonal_and_apply_as_their_matrices(n):
    rot = StructuredRotations(n, 4, seed=3)
    Q = rot.matrices()
    assert Q.shape == (4, n, n)
    torch.testing.assert_close(Q @ Q.transpose(1, 2), torch.eye(n, dtype=torch.float64).expand(4, n, n))
    x = torch.randn(2, n, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rot.apply(x), torch.einsum("qij,bjc->bqic", Q, x))
    torch.testing.assert_close(rot.apply(x, 1, 3), rot.apply(x)[:, 1:3])
    torch.testing.assert_close(rot.prefix(2).matrices(), Q[:2])
    torch.testing.assert_close(StructuredRotations(n, 2, seed=3).matrices(), Q[:2])  # a prefix is a smaller call
    assert not torch.equal(StructuredRotations(n, 1, seed=4).matrices(), Q[:1])


def test_auto_is_haar_up_to_the_limit_and_structured_beyond():
    assert rotation_family("auto", HAAR_MAX_UNITS) == "haar"
    assert rotation_family("auto", HAAR_MAX_UNITS + 1) == "structured"
    assert rotation_family("haar", 10**5) == "haar" and rotation_family("structured", 3) == "structured"
    with pytest.raises(ValueError, match="rotations='givens' is not allowed: use 'auto', 'haar', 'structured'"):
        rotation_family("givens", 10)
    assert isinstance(make_rotations("structured", 9, 2, 0), StructuredRotations)
    torch.testing.assert_close(make_rotations("haar", 9, 2, 0), rotation_matrices(9, 2, 0))
    assert rotations_bytes("haar", 16_384, 10) == 10 * 16_384**2 * 8  # 21.5 GB
    assert rotations_bytes("structured", 16_384, 10) < 8 * 2**20


def _jacobians(m: int, d: int, B: int) -> dict[str, torch.Tensor]:
    """Three kinds of Jacobian RR meets: axis-aligned (each unit reads 2 inputs: RR > 1), isotropic
    (Gaussian: RR ≈ 1), and Gaussian rows with log-normal norms (dead-ish and dominant units)."""
    g = torch.Generator().manual_seed(11)
    aligned = torch.zeros(B, m, d, dtype=torch.float64)
    cols = torch.randint(0, d, (B, m, 2), generator=g)
    aligned.scatter_(2, cols, torch.randn(B, m, 2, generator=g, dtype=torch.float64))
    iso = torch.randn(B, m, d, generator=g, dtype=torch.float64)
    scaled = iso * torch.exp(1.5 * torch.randn(1, m, 1, generator=g, dtype=torch.float64))
    return {"aligned": aligned, "isotropic": iso, "lognormal rows": scaled}


def test_structured_rotations_match_haar_in_the_statistic_rr_uses():
    """RR's denominator is the largest sampled minor of Q J averaged over rotations: under 200
    structured and 200 Haar rotations it agrees within sampling error on every image, k and kind
    of Jacobian, and the RR of an aligned Jacobian stays far above 1 under both."""
    m, d, B, R = 64, 24, 3, 200
    haar, structured = rotation_matrices(m, R, seed=5), StructuredRotations(m, R, seed=6)
    z_scores, log_ratios = [], []
    for kind, J in _jacobians(m, d, B).items():
        samples = [sample_indices(m, k, 500, n_cols=d, seed=k) for k in (1, 2, 3)]
        (a_h, q_h), (a_s, q_s) = (rotation_maxima_at(J.float(), samples, Q) for Q in (haar, structured))
        torch.testing.assert_close(a_h, a_s)  # the unrotated maxima do not depend on the rotations
        q_h, q_s = q_h[:, -1], q_s[:, -1]  # [K, B, R]
        mean_h, mean_s = q_h.mean(-1), q_s.mean(-1)
        se = torch.sqrt(q_h.var(-1) / R + q_s.var(-1) / R)
        z_scores.append(((mean_s - mean_h) / se).flatten())
        log_ratios.append((mean_s / mean_h).log().flatten())
        if kind == "aligned":
            for q in (q_h, q_s):
                assert float((a_h[0, -1] / q[0].mean(-1)).min()) > 1.5  # k = 1: clearly aligned
    z, log_ratio = torch.cat(z_scores), torch.cat(log_ratios)
    assert float(z.abs().max()) < 4.0, z  # 27 comparisons: |z| < 4 unless the families differ
    assert abs(float(z.mean())) < 3.0 / math.sqrt(z.numel())  # no bias in either direction
    assert float(log_ratio.abs().max()) < 0.08  # within 8% everywhere


def test_rr_of_16384_units_stays_within_a_small_memory_budget(monkeypatch):
    """m = 16,384 (wider than any conv feature map of the README's CNNs): Haar rotations alone would take
    21.5 GB (R = 10); "auto" takes the structured family, the estimate stays under 64 MiB and no
    [R, m, m] tensor is ever built."""
    m, d, B = 16_384, 6, 3
    need = memory_estimate(B, d, m, ks=(1, 2), n_samples=500, rr=True, n_rotations=10, itemsize=8)
    assert sum(need.values()) < 64 * 2**20

    def refuse(*args, **kwargs):
        raise AssertionError("dense Haar rotations were built")

    import kag.measurement as measurement_module
    import kag.rotations as rotations_module
    monkeypatch.setattr(rotations_module, "rotation_matrices", refuse)
    g = torch.Generator().manual_seed(0)
    J_init = torch.randn(B, m, d, generator=g, dtype=torch.float64)
    # a few dominant units (log-normal row norms): the largest entries sit on the unit axes
    J_trained = J_init * torch.exp(1.5 * torch.randn(1, m, 1, generator=g, dtype=torch.float64))
    result = measure_jacobians(J_trained, J_init, ks=(1, 2), n_samples=500, n_rotations=10, rotation_images=3,
                               rr_index_samples=2, n_bootstrap=20)
    assert measurement_module.rotation_family("auto", m) == "structured"
    rr = {r.role: r.value for r in result.select(k=1, observable="rr")}
    ratio = result.select(k=1, observable="rr_ratio")[0]
    assert 0.8 < rr["init"] < 1.25 and rr["trained"] > 1.3  # Gaussian ≈ 1, aligned above 1
    assert math.isfinite(ratio.value) and ratio.value > 1.3 and math.isfinite(ratio.se)


def test_the_minors_of_structured_rotations_are_those_of_their_matrices():
    """rotation_maxima_at with StructuredRotations equals the same call with their dense matrices."""
    m, d = 40, 10
    J = torch.randn(2, m, d, generator=torch.Generator().manual_seed(1))
    rot = StructuredRotations(m, 3, seed=2)
    samples = [sample_indices(m, 2, 100, n_cols=d, seed=0)]
    a_s, q_s = rotation_maxima_at(J, samples, rot)
    a_d, q_d = rotation_maxima_at(J, samples, rot.matrices().float())
    torch.testing.assert_close(q_s, q_d, rtol=1e-4, atol=0)
    expected = minors(torch.einsum("qij,bjc->bqic", rot.matrices().float(), J).flatten(0, 1), *samples[0]).amax(-1)
    torch.testing.assert_close(q_s[0, -1].flatten(), expected.double(), rtol=1e-4, atol=0)
