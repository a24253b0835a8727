"""The index sampler and the batched k-minors (SPEC §4, §6)."""

import itertools

import pytest
import torch
from scipy import stats

import kag.minors
from kag.minors import minors, sample_indices
from kag.spatial import pairwise_distances


def _reference_minors(J, rows, cols):
    """One ``torch.linalg.det`` per (image, sample), in float64: slow but obviously right."""
    J = J.double()
    return torch.tensor(
        [[torch.linalg.det(J[b][r][:, c]).abs().item() for r, c in zip(rows, cols)] for b in range(J.shape[0])],
        dtype=torch.float64,
    )


# ---------------------------------------------------------------------------------------------
# minors


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5], ids=lambda k: f"k={k}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_minors_match_linalg_det(k, dtype):
    g = torch.Generator().manual_seed(k)
    J = torch.randn(3, 12, 784, generator=g, dtype=dtype)
    rows, cols = sample_indices(12, k, 40, seed=k)
    got = minors(J, rows, cols)
    assert got.shape == (3, 40) and got.dtype == torch.float64
    torch.testing.assert_close(got, _reference_minors(J, rows, cols), rtol=1e-10, atol=1e-12)


def test_minors_are_the_same_whatever_the_chunking(monkeypatch):
    J = torch.randn(4, 10, 784, generator=torch.Generator().manual_seed(0))
    rows, cols = sample_indices(10, 3, 500)
    whole = minors(J, rows, cols)
    monkeypatch.setattr(kag.minors, "_MINOR_CHUNK_BYTES", {"cpu": 1000})  # a few samples per chunk
    assert torch.equal(minors(J, rows, cols), whole)


@pytest.mark.parametrize("k", [2, 3, 4], ids=lambda k: f"k={k}")
def test_degenerate_minors_are_zero(k):
    g = torch.Generator().manual_seed(0)
    J = torch.randn(2, 8, 784, generator=g, dtype=torch.float64)
    J[:, 5] = 0.0  # a zero row
    J[:, 6] = J[:, 0] + 2 * J[:, 1]  # rank deficiency
    base_rows, base_cols = list(range(k)), list(range(10, 10 + k))
    rows = torch.tensor([
        [0, 0, *base_rows[2:]],  # duplicate row
        base_rows,  # duplicate column (below)
        [5, *base_rows[1:]],  # zero row
        [0, 1, 6, *range(2, k)][:k] if k >= 3 else [0, 5],  # linearly dependent rows
    ])
    cols = torch.tensor([base_cols, [10, 10, *base_cols[2:]], base_cols, base_cols])
    assert minors(J, rows, cols).max() < 1e-12


def test_indices_on_cpu_follow_a_cuda_jacobian():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    J = torch.randn(2, 6, 784, dtype=torch.float64)
    rows, cols = sample_indices(6, 3, 50)
    got = minors(J.cuda(), rows, cols)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), minors(J, rows, cols))


@pytest.mark.parametrize(
    "J, rows, cols, message",
    [
        (torch.randn(4, 784), [[0]], [[0]], r"J has shape \[4, 784\]: expected a 3-D"),
        (torch.full((1, 4, 784), float("nan")), [[0]], [[0]], "J contains NaN or Inf"),
        (torch.zeros(1, 4, 784).index_fill_(2, torch.tensor([5]), float("inf")), [[0]], [[0]], "J contains NaN"),
        (torch.randn(1, 4, 784), [[0, 1]], [[0, 1, 2]], r"rows has shape \[1, 2\] but cols has \[1, 3\]"),
        (torch.randn(1, 4, 784), [[0, 4]], [[0, 1]], "rows contains 4: indices must be in 0..3"),
        (torch.randn(1, 4, 784), [[0, 1]], [[0, 784]], "cols contains 784: indices must be in 0..783"),
        (torch.randn(1, 4, 784), [0, 1], [0, 1], r"rows has shape \[2\]: expected \[S, k\]"),
        (torch.randn(1, 4, 784), [[0.0, 1.0]], [[0, 1]], "rows has dtype torch.float32"),
    ],
    ids=["J-2d", "J-nan", "J-inf", "shape-mismatch", "row-out-of-range", "col-out-of-range", "rows-1d", "float-rows"],
)
def test_bad_minor_inputs_raise(J, rows, cols, message):
    with pytest.raises(ValueError, match=message):
        minors(J, torch.as_tensor(rows), torch.as_tensor(cols))


# ---------------------------------------------------------------------------------------------
# sampler


def test_sample_shapes_and_ranges():
    rows, cols = sample_indices(20, 3, 1000, seed=1)
    assert rows.shape == cols.shape == (1000, 3)
    assert rows.dtype == cols.dtype == torch.int64 and rows.device.type == "cpu"
    assert 0 <= rows.min() and rows.max() < 20 and 0 <= cols.min() and cols.max() < 784


def test_no_duplicates_within_a_sample():
    rows, cols = sample_indices(5, 4, 2000, pool=range(6))
    for idx in (rows, cols):
        assert (idx.sort(dim=1).values.diff(dim=1) > 0).all()


def test_columns_come_from_the_pool():
    pool = torch.tensor([3, 77, 400, 401, 783])
    _, cols = sample_indices(10, 2, 500, pool=pool)
    assert torch.isin(cols, pool).all()


def test_sampler_is_deterministic_per_seed():
    a = sample_indices(50, 3, 200, seed=7)
    b = sample_indices(50, 3, 200, seed=7)
    c = sample_indices(50, 3, 200, seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])


def test_rows_do_not_depend_on_the_pool_or_the_separation():
    plain = sample_indices(30, 2, 100)
    pooled = sample_indices(30, 2, 100, pool=range(50))
    separated = sample_indices(30, 2, 100, min_separation=10)
    assert torch.equal(plain[0], pooled[0]) and torch.equal(plain[0], separated[0])


def test_sampler_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sample_indices(40, 3, 100, min_separation=5)
    assert torch.equal(torch.rand(3), expected)


def test_pool_pixels_are_drawn_uniformly():
    pool, k, S = torch.arange(100, 110), 3, 20_000
    rows, cols = sample_indices(7, k, S, pool=pool, seed=3)
    for idx, size in ((cols - 100, 10), (rows, 7)):
        counts = torch.bincount(idx.flatten(), minlength=size).numpy()
        assert stats.chisquare(counts).pvalue > 1e-4


def test_sets_are_drawn_uniformly():
    """Every 2-subset of a 5-pixel pool appears equally often (not just every pixel)."""
    _, cols = sample_indices(4, 2, 20_000, pool=range(5), seed=4)
    pairs = {p: i for i, p in enumerate(itertools.combinations(range(5), 2))}
    codes = torch.tensor([pairs[tuple(sorted(c))] for c in cols.tolist()])
    assert stats.chisquare(torch.bincount(codes, minlength=10).numpy()).pvalue > 1e-4


@pytest.mark.parametrize("k, d", [(2, 14.0), (3, 7.0), (3, 14.0), (4, 10.0)], ids=lambda v: f"{v}")
def test_min_separation_is_respected(k, d):
    _, cols = sample_indices(10, k, 2000, min_separation=d)
    dist = pairwise_distances(cols)
    off_diagonal = ~torch.eye(k, dtype=torch.bool)
    assert (dist[:, off_diagonal] >= d).all()


def test_min_separation_within_a_pool():
    pool = torch.arange(0, 784, 3)
    _, cols = sample_indices(10, 3, 500, pool=pool, min_separation=5)
    assert torch.isin(cols, pool).all()
    assert (pairwise_distances(cols)[:, ~torch.eye(3, dtype=torch.bool)] >= 5).all()


def test_min_separation_spreads_over_the_image():
    """Separated samples still reach every pixel: no region is excluded."""
    _, cols = sample_indices(10, 2, 20_000, min_separation=14)
    assert torch.bincount(cols.flatten(), minlength=784).min() > 0


def test_impossible_separation_raises_quickly():
    with pytest.raises(ValueError, match=r"no 3 pixels of the pool are pairwise >= 30.0 px apart \(0 of \d+ random"):
        sample_indices(10, 3, 100, min_separation=30)


def test_separation_beyond_the_pool_diameter_raises():
    with pytest.raises(ValueError, match="no 2 pixels of the pool are pairwise >= 40.0 px apart"):
        sample_indices(10, 2, 100, min_separation=40)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_rows=10, k=0, n_samples=5), "k=0 is not allowed"),
        (dict(n_rows=3, k=4, n_samples=5), "k=4 exceeds the n_rows=3 hidden units"),
        (dict(n_rows=10, k=4, n_samples=5, pool=[1, 2, 3]), "k=4 exceeds the pool of 3 pixels"),
        (dict(n_rows=10, k=2, n_samples=0), "n_samples=0 is not allowed"),
        (dict(n_rows=0, k=1, n_samples=5), "n_rows=0 is not allowed"),
        (dict(n_rows=10, k=1, n_samples=5, pool=[]), "pool is empty"),
        (dict(n_rows=10, k=1, n_samples=5, pool=[0, 784]), "pool contains 784"),
        (dict(n_rows=10, k=1, n_samples=5, pool=[-1, 3]), "pool contains -1"),
        (dict(n_rows=10, k=1, n_samples=5, pool=[3, 3]), "pool contains duplicate"),
        (dict(n_rows=10, k=1, n_samples=5, pool=[[1, 2]]), r"pool has shape \[1, 2\]"),
        (dict(n_rows=10, k=2, n_samples=5, min_separation=-1.0), "min_separation=-1.0 is not allowed"),
        (dict(n_rows=10, k=2, n_samples=5, min_separation=float("nan")), "min_separation=nan"),
        (dict(n_rows=10, k=2.5, n_samples=5), "k=2.5 is not allowed"),
    ],
    ids=["k0", "k-over-rows", "k-over-pool", "S0", "rows0", "empty-pool", "pool-high", "pool-negative",
         "pool-duplicates", "pool-2d", "negative-separation", "nan-separation", "float-k"],
)
def test_bad_sampler_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_indices(**kwargs)
