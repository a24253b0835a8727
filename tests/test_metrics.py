"""The observables of SPEC §5 on hand-made cases whose answer is known."""

import math

import numpy as np
import pytest
import torch

from kag import metrics
from kag.metrics import (
    ZeroRows,
    bootstrap_kl,
    bootstrap_pr_ratio,
    js_divergence,
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
# bootstrap of the PR ratio


def _reference_bootstrap(m_trained, m_init, n_boot, seed):
    """One replicate at a time, by explicit resampling, with the same generator draws."""
    B, S = m_trained.shape
    g = _gen(seed)
    images = torch.randint(0, B, (n_boot, B), generator=g)
    columns = torch.randint(0, S, (n_boot, S), generator=g)

    def ratio(t, i):
        return mean_ignoring_undefined(participation_ratio(t))[0] / mean_ignoring_undefined(participation_ratio(i))[0]

    replicates = [ratio(m_trained[im][:, co], m_init[im][:, co]) for im, co in zip(images, columns)]
    return ratio(m_trained, m_init), float(np.std(replicates, ddof=1))


def _heavy_minors(B: int, S: int, seed: int) -> torch.Tensor:
    """Log-normal minors whose spread differs between images: ``[B, S]``."""
    g = _gen(seed)
    sigma = 0.5 + 2 * torch.rand(B, 1, generator=g, dtype=torch.float64)
    return (sigma * torch.randn(B, S, generator=g, dtype=torch.float64)).exp()


def test_bootstrap_pr_ratio_matches_a_reference_loop():
    trained, init = _heavy_minors(6, 15, 0), _heavy_minors(6, 15, 1)
    trained[2] = 0.0  # undefined PR: left out of the trained means
    trained[3, :12] = 0.0  # undefined in the replicates that draw none of its 3 positive minors
    init[:, 4] = 0.0
    ratio, se = bootstrap_pr_ratio(trained, init, n_boot=40, seed=3)
    expected_ratio, expected_se = _reference_bootstrap(trained, init, 40, 3)
    assert ratio == pytest.approx(expected_ratio, rel=1e-12)
    assert se == pytest.approx(expected_se, rel=1e-10)
    assert se > 0


def test_bootstrap_pr_ratio_is_the_reported_pr_ratio():
    trained, init = _heavy_minors(20, 100, 0), _heavy_minors(20, 100, 1)
    ratio, _ = bootstrap_pr_ratio(trained, init, n_boot=2)
    pr = [mean_ignoring_undefined(participation_ratio(m))[0] for m in (trained, init)]
    assert ratio == pytest.approx(pr[0] / pr[1], rel=1e-12)


def test_bootstrap_pr_ratio_does_not_depend_on_the_chunk(monkeypatch):
    trained, init = _heavy_minors(10, 50, 0), _heavy_minors(10, 50, 1)
    whole = bootstrap_pr_ratio(trained, init, n_boot=30, seed=1)
    monkeypatch.setattr(metrics, "_BOOTSTRAP_CHUNK_BYTES", 8 * 60 * 7)  # 7 replicates per chunk
    chunked = bootstrap_pr_ratio(trained, init, n_boot=30, seed=1)
    assert chunked == pytest.approx(whole, rel=1e-12)


def test_bootstrap_se_is_zero_when_every_image_and_minor_are_equal():
    ratio, se = bootstrap_pr_ratio(torch.full((8, 40), 2.0), torch.full((8, 40), 0.5), n_boot=50)
    assert ratio == pytest.approx(1.0) and se == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_se_shrinks_like_one_over_root_b():
    se = {B: bootstrap_pr_ratio(_heavy_minors(B, 200, 0), _heavy_minors(B, 200, 1), n_boot=300)[1] for B in (100, 400)}
    assert 1.5 < se[100] / se[400] < 2.7  # √4 = 2


def test_bootstrap_is_seeded_and_leaves_the_global_rng_alone():
    trained, init = _heavy_minors(10, 50, 0), _heavy_minors(10, 50, 1)
    state = torch.get_rng_state()
    first = bootstrap_pr_ratio(trained, init, n_boot=20, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert bootstrap_pr_ratio(trained, init, n_boot=20, seed=5) == first
    assert bootstrap_pr_ratio(trained, init, n_boot=20, seed=6)[1] != first[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(m_init=torch.rand(3, 5)), r"m_trained has shape \[3, 4\] but m_init has \[3, 5\]"),
        (dict(m_trained=torch.rand(12)), r"m_trained has shape \[12\]: expected minors \[B, S\]"),
        (dict(n_boot=1), "n_boot=1 is not allowed"),
        (dict(seed=-1), "seed=-1 is not allowed"),
    ],
    ids=["mismatch", "1-D", "n_boot1", "negative-seed"],
)
def test_bad_bootstrap_arguments_raise(kwargs, message):
    args = dict(m_trained=torch.rand(3, 4), m_init=torch.rand(3, 4)) | kwargs
    with pytest.raises(ValueError, match=message):
        bootstrap_pr_ratio(**args)


# ---------------------------------------------------------------------------------------------
# KL and Jensen-Shannon divergences


def _brute_force_probabilities(m_trained, m_init, bins, central):
    """SPEC §5's histograms with numpy: percentiles, np.histogram, and counts outside the range."""
    a, b = (np.asarray(m, dtype=np.float64).ravel() for m in (m_trained, m_init))
    pooled = np.log10(np.concatenate([a[a > 0], b[b > 0]]))
    lo, hi = np.percentile(pooled, [50 * (1 - central), 50 * (1 + central)])
    probabilities = []
    for x in (a, b):
        logs = np.log10(x[x > 0])
        inner, _ = np.histogram(logs[(logs >= lo) & (logs <= hi)], bins=bins, range=(lo, hi))
        counts = np.concatenate([[np.sum(x == 0) + np.sum(logs < lo)], inner, [np.sum(logs > hi)]])
        probabilities.append(counts / counts.sum())
    return probabilities


def _lognormal(n: int, sigma: float, seed: int) -> torch.Tensor:
    return (sigma * torch.randn(n, generator=_gen(seed), dtype=torch.float64)).exp()


def test_kl_of_identical_distributions_is_zero():
    m = torch.rand(6, 500, generator=_gen(), dtype=torch.float64) + 1e-3
    m[0, :7] = 0.0
    assert kl_divergence(m, m.clone()) == pytest.approx(0.0, abs=1e-9)
    assert js_divergence(m, m.clone()) == pytest.approx(0.0, abs=1e-12)


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
    base, near, spread = _lognormal(10_000, 1.0, 0), _lognormal(10_000, 1.0, 1), _lognormal(10_000, 3.0, 2)
    assert kl_divergence(spread, base) > 10 * kl_divergence(near, base)


def test_exact_zeros_land_in_the_underflow_bin_and_are_counted():
    """central=1: the bins span the positive minors' full range, log10 in [0, 2]."""
    m = torch.tensor([[0.0, 1.0, 10.0], [0.0, 0.0, 100.0]], dtype=torch.float64)
    hist = log_minor_histograms(m, m[:1], bins=4, central=1.0)
    assert hist.zeros_trained == 3 and hist.zeros_init == 1
    torch.testing.assert_close(hist.edges, torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0], dtype=torch.float64))
    assert hist.trained.tolist() == [3, 1, 0, 1, 1, 0]  # underflow, 4 bins (2.0 in the last), overflow
    assert hist.init.tolist() == [1, 1, 0, 1, 0, 0]


def test_minors_outside_the_central_range_land_in_the_outer_bins():
    """log10 = 0..99 (pooled twice): the 1st and 99th percentiles are 0.99 and 98.01, so 0 and 99 fall outside."""
    m = 10.0 ** torch.arange(100, dtype=torch.float64)
    hist = log_minor_histograms(torch.cat([m, torch.zeros(3, dtype=torch.float64)]), m, bins=98, central=0.98)
    torch.testing.assert_close(hist.edges[[0, -1]], torch.tensor([0.99, 98.01], dtype=torch.float64))
    assert hist.trained[0] == 1 + 3 and hist.trained[-1] == 1 and hist.trained[1:-1].sum() == 98
    assert hist.init[0] == 1 and hist.init[-1] == 1 and (hist.init[1:-1] == 1).all()  # one log per bin
    assert hist.zeros_trained == 3 and hist.zeros_init == 0


def test_all_equal_positive_minors_get_a_width_one_range():
    hist = log_minor_histograms(torch.full((5,), 100.0), torch.tensor([0.0, 100.0]), bins=2)
    torch.testing.assert_close(hist.edges, torch.tensor([1.5, 2.0, 2.5], dtype=torch.float64))
    assert hist.trained.tolist() == [0, 0, 5, 0] and hist.init.tolist() == [1, 0, 1, 0]


def test_a_few_zeros_or_extreme_minors_do_not_stretch_the_bins():
    """A bare joint range (central=1, zeros at 1e-300) spans 300 decades: KL then sees only the zero mass."""
    base, spread = _lognormal(20_000, 1.0, 0), _lognormal(20_000, 3.0, 1)
    dirty = base.clone()
    dirty[:5] = 0.0
    dirty[5:8] = 1e-300
    clean_kl = kl_divergence(spread, base)
    assert kl_divergence(spread, dirty) == pytest.approx(clean_kl, rel=0.02)
    edges = log_minor_histograms(spread, dirty).edges
    torch.testing.assert_close(edges, log_minor_histograms(spread, base).edges, rtol=0.02, atol=0.02)
    bare = kl_divergence(spread, dirty.clamp_min(1e-300), central=1.0)
    assert log_minor_histograms(spread, dirty, central=1.0).edges[0] == pytest.approx(-300)
    assert bare < clean_kl / 2  # 3 decades per bin blur the trained spread


@pytest.mark.parametrize("n", [2, 3, 50, 1001])
@pytest.mark.parametrize("central", [0.998, 0.5, 1.0])
def test_the_central_range_is_numpys_percentiles(n, central):
    m = torch.rand(n, generator=_gen(n), dtype=torch.float64) + 0.01
    logs = np.log10(torch.cat([m, m[: n // 2] * 3]).numpy())
    expected = np.percentile(logs, [50 * (1 - central), 50 * (1 + central)])
    edges = log_minor_histograms(m, m[: n // 2] * 3, bins=7, central=central).edges
    if expected[0] == expected[1]:
        expected = expected + [-0.5, 0.5]
    np.testing.assert_allclose(edges[[0, -1]].numpy(), expected, rtol=1e-12, atol=1e-14)

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("central", [0.998, 0.9])
def test_kl_and_js_match_a_numpy_brute_force(seed, central):
    g = _gen(seed)
    a = torch.rand(4, 300, generator=g, dtype=torch.float64) ** 4
    b = torch.rand(4, 300, generator=g, dtype=torch.float64) ** 2
    a[a < 0.002] = 0.0  # some exact zeros on both sides
    b[:, :5] = 0.0
    p, q = _brute_force_probabilities(a, b, bins=30, central=central)
    ps, qs = ((x + 1e-10) / (x + 1e-10).sum() for x in (p, q))
    kl = float(np.sum(ps * np.log(ps / qs)))
    mid = (p + q) / 2
    js = 0.5 * sum(float(np.sum(x[x > 0] * np.log(x[x > 0] / mid[x > 0]))) for x in (p, q))
    assert kl_divergence(a, b, bins=30, central=central) == pytest.approx(kl, rel=1e-9)
    assert js_divergence(a, b, bins=30, central=central) == pytest.approx(js, rel=1e-9)


def _reference_kl_bootstrap(a, b, bins, n_boot, seed):
    """One resampled pair of tensors per replicate, binned on the full sample's edges by numpy."""
    edges = log_minor_histograms(a, b, bins).edges.numpy()
    lo, hi = edges[0], edges[-1]

    def kl(x, y):
        def probs(m):
            logs = np.log10(m.numpy().ravel(), where=m.numpy().ravel() > 0,
                            out=np.full(m.numel(), -np.inf))
            inner = np.clip(np.floor((logs - lo) / (hi - lo) * bins), 0, bins - 1) + 1
            idx = np.where(logs < lo, 0, np.where(logs > hi, bins + 1, inner)).astype(int)
            c = np.bincount(idx, minlength=bins + 2).astype(float)
            c = c / c.sum() + 1e-10
            return c / c.sum()
        p, q = probs(x), probs(y)
        return float(np.sum(p * np.log(p / q)))

    g = _gen(seed)
    B, S = a.shape
    images, columns = torch.randint(0, B, (n_boot, B), generator=g), torch.randint(0, S, (n_boot, S), generator=g)
    by_image = [kl(a[im], b[im]) for im in images]
    by_column = [kl(a[:, co], b[:, co]) for co in columns]
    return kl(a, b), math.sqrt(np.var(by_image, ddof=1) + np.var(by_column, ddof=1))


@pytest.mark.parametrize("seed", range(3))
def test_bootstrap_kl_matches_a_reference_loop(seed):
    g = _gen(seed + 10)
    a = torch.rand(7, 40, generator=g, dtype=torch.float64) ** 4
    b = torch.rand(7, 40, generator=g, dtype=torch.float64) ** 2
    a[a < 0.003] = 0.0  # exact zeros go to the underflow bin
    kl, se, js = bootstrap_kl(a, b, bins=12, n_boot=30, seed=seed)[:3]
    assert js == pytest.approx(js_divergence(a, b, bins=12), rel=1e-12)
    expected_kl, expected_se = _reference_kl_bootstrap(a, b, 12, 30, seed)
    assert kl == pytest.approx(kl_divergence(a, b, bins=12), rel=1e-12)
    assert kl == pytest.approx(expected_kl, rel=1e-9)
    assert se == pytest.approx(expected_se, rel=1e-9)
    assert se > 0


def test_bootstrap_kl_se_shrinks_with_more_minors():
    small = bootstrap_kl(_lognormal(20 * 50, 2.0, 0).view(20, 50), _lognormal(20 * 50, 1.0, 1).view(20, 50), seed=1)
    large = bootstrap_kl(_lognormal(80 * 800, 2.0, 0).view(80, 800), _lognormal(80 * 800, 1.0, 1).view(80, 800),
                         seed=1)
    assert large[1] < small[1] / 3


def test_bootstrap_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="they must match"):
        bootstrap_kl(torch.rand(2, 3) + 0.1, torch.rand(3, 3) + 0.1)


def test_js_is_symmetric_and_bounded_by_ln2():
    a, b = _lognormal(3000, 1.0, 0), _lognormal(3000, 2.0, 1)
    assert js_divergence(a, b) == pytest.approx(js_divergence(b, a), rel=1e-12)
    assert 0 < js_divergence(a, b) < math.log(2)
    low = torch.rand(4, 200, generator=_gen(0), dtype=torch.float64) * 1e-6 + 1e-7
    high = torch.rand(4, 200, generator=_gen(1), dtype=torch.float64) + 1.0
    assert js_divergence(high, low) == pytest.approx(math.log(2), rel=1e-12)


def test_a_side_with_only_zeros_is_all_underflow():
    m = torch.rand(2, 50, generator=_gen(), dtype=torch.float64) + 0.1
    hist = log_minor_histograms(torch.zeros(2, 3), m)
    assert hist.trained.tolist() == [6] + [0] * 101 and hist.zeros_trained == 6
    # central=1: no init minor below the range, so the histograms are disjoint
    assert js_divergence(torch.zeros(2, 3), m, central=1.0) == pytest.approx(math.log(2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(bins=0), "bins=0 is not allowed"),
        (dict(smoothing=-1.0), "smoothing=-1.0 is not allowed"),
        (dict(central=0.0), "central=0.0 is not allowed"),
        (dict(central=1.5), "central=1.5 is not allowed"),
        (dict(m_trained=torch.zeros(2, 3), m_init=torch.zeros(4)), "m_trained and m_init have no positive minor"),
        (dict(m_init=torch.tensor([1.0, -1.0])), "m_init contains negative values"),
        (dict(m_init=torch.tensor([1.0, float("nan")])), "m_init contains NaN"),
        (dict(m_trained=torch.tensor([1.0, float("inf")])), "m_trained contains Inf"),
    ],
    ids=["bins0", "negative-smoothing", "central0", "central>1", "all-zero", "negative", "nan", "inf"],
)
def test_bad_kl_arguments_raise(kwargs, message):
    args = dict(m_trained=torch.rand(2, 3) + 0.1, m_init=torch.rand(2, 3) + 0.1) | kwargs
    with pytest.raises(ValueError, match=message):
        kl_divergence(**args)
    if "smoothing" not in kwargs:
        with pytest.raises(ValueError, match=message):
            js_divergence(**args)


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


def test_rotation_ratio_takes_the_auto_family_by_default(monkeypatch):
    """Like kag.measure: Haar rotations up to HAAR_MAX_UNITS units, structured ones beyond (a wide
    layer's [R, m, m] Haar matrices would not fit in memory)."""
    import kag.rotations

    rows, cols = sample_indices(N, 2, 50, n_cols=784, seed=4)
    J = _gaussian_jacobian()
    kwargs = dict(n_rotations=3, seed=2)
    torch.testing.assert_close(rotation_ratio(J, rows, cols, **kwargs),
                               rotation_ratio(J, rows, cols, rotations="haar", **kwargs))
    monkeypatch.setattr(kag.rotations, "HAAR_MAX_UNITS", N - 1)  # this J is now "wide"
    torch.testing.assert_close(rotation_ratio(J, rows, cols, **kwargs),
                               rotation_ratio(J, rows, cols, rotations="structured", **kwargs))


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


def test_rotation_maxima_are_the_parts_of_the_rotation_ratio():
    from kag.metrics import rotation_maxima

    J = torch.randn(3, 8, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    samples = [sample_indices(8, k, 100, n_cols=40, seed=k) for k in (1, 2)]
    aligned, rotated = rotation_maxima(J, samples, n_rotations=6, seed=5)
    assert aligned.shape == (2, 3) and rotated.shape == (2, 3, 6)
    torch.testing.assert_close(aligned / rotated.mean(-1), rotation_ratios(J, samples, n_rotations=6, seed=5))
    Q = rotation_matrices(8, 6, 5)
    rows, cols = samples[1]
    by_hand = torch.stack([minors(Q[q] @ J, rows, cols).amax(dim=1) for q in range(6)], dim=1)  # [B, R]
    torch.testing.assert_close(rotated[1], by_hand, rtol=1e-9, atol=0)


def test_pr_is_scale_free_even_for_minors_that_underflow_when_squared():
    m = torch.tensor([[3.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    for scale in (1.0, 1e-160, 1e-300):
        torch.testing.assert_close(participation_ratio(m * scale), participation_ratio(m), rtol=1e-12, atol=0)
    assert participation_ratio(torch.full((1, 10), 1e-200, dtype=torch.float64)).item() == pytest.approx(10**-0.5)


def test_zero_rows_after_a_relu_count_every_dead_unit():
    """A ReLU layer whose units 0-34 have a bias so negative that they never fire: their Jacobian rows
    (by autograd) are exactly 0 on every image, in the init as in the trained network. 35% of the init
    rows are 0, so the 1st percentile is 0; a strict "< threshold" counted none of them (issue 18)."""
    gen = _gen(4)
    d, n, dead = 20, 100, 35
    x = torch.randn(16, d, generator=gen, dtype=torch.float64)

    def relu_jacobians(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        layer = lambda v: torch.relu(v @ weight.T + bias)  # noqa: E731
        return torch.stack([torch.autograd.functional.jacobian(layer, xi) for xi in x])  # [B, n, d]

    def network(extra_dead: int) -> torch.Tensor:
        weight = torch.randn(n, d, generator=gen, dtype=torch.float64)
        bias = torch.randn(n, generator=gen, dtype=torch.float64)
        bias[: dead + extra_dead] = -1e3  # never fires on these inputs
        return relu_jacobians(weight, bias)

    J_init, J_trained = network(0), network(15)
    assert (J_init[:, :dead] == 0).all() and (J_trained[:, : dead + 15] == 0).all()
    alive_init = torch.linalg.vector_norm(J_init[:, dead:], dim=2)
    assert (alive_init > 0).float().mean() > 0.3  # the live units do fire
    result = zero_row_fraction(J_trained, J_init)
    exact = lambda J: float((torch.linalg.vector_norm(J, dim=2) == 0).double().mean())  # noqa: E731
    assert result.threshold == pytest.approx(float(torch.finfo(torch.float64).eps) *
                                             float(torch.linalg.vector_norm(J_init, dim=2).max()))
    assert result.init == exact(J_init) >= dead / n
    assert result.trained == exact(J_trained) >= (dead + 15) / n


def test_a_zero_row_is_one_at_most_the_threshold():
    """A row whose norm equals the threshold counts (<=): with 101 init rows of norms 0..100 the 1st
    percentile is exactly 1, so rows of norm 0 and 1 are zero rows."""
    norms = torch.arange(101, dtype=torch.float64)
    J_init = torch.zeros(1, 101, 2, dtype=torch.float64)
    J_init[0, :, 0] = norms
    result = zero_row_fraction(J_init, J_init)
    assert result.threshold == 1.0 and result.init == pytest.approx(2 / 101)
