"""The index sampler and the batched k-minors (SPEC §4, §6)."""

import importlib
import itertools

import pytest
import torch
from scipy import stats

from kag.determinants import entry_major_index, minors, minors_unchecked, sample_indices
from kag.spatial import ImageGrid

minors_module = importlib.import_module("kag.determinants")  # not `kag.determinants`: the package may export a function of that name
MNIST = ImageGrid(28, 28)


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
    rows, cols = sample_indices(12, k, 40, n_cols=784, seed=k)
    got = minors(J, rows, cols)
    assert got.shape == (3, 40) and got.dtype == torch.float64
    torch.testing.assert_close(got, _reference_minors(J, rows, cols), rtol=1e-10, atol=1e-12)


def test_minors_are_the_same_whatever_the_chunking(monkeypatch):
    J = torch.randn(4, 10, 784, generator=torch.Generator().manual_seed(0))
    rows, cols = sample_indices(10, 3, 500, n_cols=784)
    whole = minors(J, rows, cols)
    monkeypatch.setattr(minors_module, "_MINOR_CHUNK_BYTES", {"cpu": 1000})  # a few samples per chunk
    assert torch.equal(minors(J, rows, cols), whole)


@pytest.mark.parametrize("k", [1, 2, 3], ids=lambda k: f"k={k}")
def test_precomputed_entry_positions_give_the_same_minors(k, monkeypatch):
    """A caller may build the entry-major positions once (the rotation ratio does): same minors, any chunking."""
    J = torch.randn(4, 10, 784, generator=torch.Generator().manual_seed(k))
    rows, cols = sample_indices(10, k, 300, n_cols=784, seed=k)
    entries = entry_major_index(rows, cols, 784)
    assert entries.shape == (k, k, 300) and entries.is_contiguous()
    assert int(entries[1 % k, 0, 5]) == int(rows[5, 1 % k]) * 784 + int(cols[5, 0])
    whole = minors(J, rows, cols)
    assert torch.equal(minors_unchecked(J, rows, cols, entries), whole)
    monkeypatch.setattr(minors_module, "_MINOR_CHUNK_BYTES", {"cpu": 1000})
    assert torch.equal(minors_unchecked(J, rows, cols, entries), whole)


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
    rows, cols = sample_indices(6, 3, 50, n_cols=784)
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
    rows, cols = sample_indices(20, 3, 1000, n_cols=784, seed=1)
    assert rows.shape == cols.shape == (1000, 3)
    assert rows.dtype == cols.dtype == torch.int64 and rows.device.type == "cpu"
    assert 0 <= rows.min() and rows.max() < 20 and 0 <= cols.min() and cols.max() < 784


def test_no_duplicates_within_a_sample():
    rows, cols = sample_indices(5, 4, 2000, n_cols=784, pool=range(6))
    for idx in (rows, cols):
        assert (idx.sort(dim=1).values.diff(dim=1) > 0).all()


def test_columns_come_from_the_pool():
    pool = torch.tensor([3, 77, 400, 401, 783])
    _, cols = sample_indices(10, 2, 500, n_cols=784, pool=pool)
    assert torch.isin(cols, pool).all()


def test_sampler_is_deterministic_per_seed():
    a = sample_indices(50, 3, 200, n_cols=784, seed=7)
    b = sample_indices(50, 3, 200, n_cols=784, seed=7)
    c = sample_indices(50, 3, 200, n_cols=784, seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])


def test_rows_do_not_depend_on_the_pool_or_the_separation():
    plain = sample_indices(30, 2, 100, n_cols=784)
    pooled = sample_indices(30, 2, 100, n_cols=784, pool=range(50))
    separated = sample_indices(30, 2, 100, grid=MNIST, min_separation=10)
    assert torch.equal(plain[0], pooled[0]) and torch.equal(plain[0], separated[0])


def test_sampler_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sample_indices(40, 3, 100, grid=MNIST, min_separation=5)
    assert torch.equal(torch.rand(3), expected)


def test_pool_pixels_are_drawn_uniformly():
    pool, k, S = torch.arange(100, 110), 3, 20_000
    rows, cols = sample_indices(7, k, S, n_cols=784, pool=pool, seed=3)
    for idx, size in ((cols - 100, 10), (rows, 7)):
        counts = torch.bincount(idx.flatten(), minlength=size).numpy()
        assert stats.chisquare(counts).pvalue > 1e-4


def test_sets_are_drawn_uniformly():
    """Every 2-subset of a 5-pixel pool appears equally often (not just every pixel)."""
    _, cols = sample_indices(4, 2, 20_000, n_cols=5, seed=4)
    pairs = {p: i for i, p in enumerate(itertools.combinations(range(5), 2))}
    codes = torch.tensor([pairs[tuple(sorted(c))] for c in cols.tolist()])
    assert stats.chisquare(torch.bincount(codes, minlength=10).numpy()).pvalue > 1e-4


@pytest.mark.parametrize("k, d", [(2, 14.0), (3, 7.0), (3, 14.0), (4, 10.0)], ids=lambda v: f"{v}")
def test_min_separation_is_respected(k, d):
    _, cols = sample_indices(10, k, 2000, grid=MNIST, min_separation=d)
    dist = MNIST.pairwise_distances(cols)
    off_diagonal = ~torch.eye(k, dtype=torch.bool)
    assert (dist[:, off_diagonal] >= d).all()


def test_min_separation_within_a_pool():
    pool = torch.arange(0, 784, 3)
    _, cols = sample_indices(10, 3, 500, grid=MNIST, pool=pool, min_separation=5)
    assert torch.isin(cols, pool).all()
    assert (MNIST.pairwise_distances(cols)[:, ~torch.eye(3, dtype=torch.bool)] >= 5).all()


def test_min_separation_spreads_over_the_image():
    """Separated samples still reach every pixel: no region is excluded."""
    _, cols = sample_indices(10, 2, 20_000, grid=MNIST, min_separation=14)
    assert torch.bincount(cols.flatten(), minlength=784).min() > 0


def test_impossible_separation_raises_quickly():
    with pytest.raises(ValueError, match=r"no 3 pixels of the pool are pairwise >= 30.0 px apart \(0 of \d+ random"):
        sample_indices(10, 3, 100, grid=MNIST, min_separation=30)


def test_separation_beyond_the_pool_diameter_raises():
    with pytest.raises(ValueError, match="no 2 pixels of the pool are pairwise >= 40.0 px apart"):
        sample_indices(10, 2, 100, grid=MNIST, min_separation=40)


def test_columns_past_784_are_drawn_when_the_jacobian_is_wider():
    _, cols = sample_indices(5, 2, 5000, n_cols=3072, seed=0)
    assert cols.max() >= 3000 and cols.min() >= 0
    assert torch.bincount(cols.flatten(), minlength=3072)[784:].sum() > 0.7 * cols.numel()


def test_a_colour_grid_gives_every_channel_its_columns():
    grid = ImageGrid(32, 32, channels=3)
    _, cols = sample_indices(5, 3, 5000, grid=grid, seed=0)
    channels = torch.bincount((cols // grid.n_pixels).flatten(), minlength=3)
    assert cols.max() < 3072 and (channels > 0.3 * cols.numel()).all()


def test_separation_treats_the_channels_of_one_pixel_as_distance_zero():
    grid = ImageGrid(8, 8, channels=3)
    pool = grid.columns([0, 7])  # two pixels 7 px apart, three channels each
    _, cols = sample_indices(4, 2, 2000, grid=grid, pool=pool, min_separation=1, seed=0)
    pixels = grid.column_pixels()[cols]
    assert (pixels[:, 0] != pixels[:, 1]).all()  # never two channels of one pixel
    assert torch.bincount((cols // 64).flatten(), minlength=3).min() > 0
    _, near = sample_indices(4, 2, 2000, grid=grid, pool=pool, seed=0)
    assert (grid.column_pixels()[near].diff(dim=1) == 0).any()  # without separation they do occur
    with pytest.raises(ValueError, match="no 3 pixels of the pool are pairwise >= 1.0 px apart"):
        sample_indices(4, 3, 100, grid=grid, pool=pool, min_separation=1)


def test_separation_in_a_large_ball():
    grid = ImageGrid(64, 64, channels=3)
    pool = grid.ball(20, (32, 32))
    _, cols = sample_indices(8, 3, 1000, grid=grid, pool=pool, min_separation=12, seed=0)
    assert torch.isin(cols, pool).all()
    assert (grid.pairwise_distances(cols)[:, ~torch.eye(3, dtype=torch.bool)] >= 12).all()


def test_grid_and_n_cols_are_interchangeable_without_separation():
    a = sample_indices(16, 3, 300, n_cols=3072, seed=5)
    b = sample_indices(16, 3, 300, grid=ImageGrid(32, 32, channels=3), seed=5)
    c = sample_indices(16, 3, 300, n_cols=3072, grid=ImageGrid(32, 32, channels=3), seed=5)
    assert all(torch.equal(x, y) and torch.equal(x, z) for x, y, z in zip(a, b, c))


def test_pool_diameter_from_row_ends_is_the_brute_force_diameter():
    g = torch.Generator().manual_seed(0)
    for size in (1, 2, 5, 40, 300):
        xy = torch.randint(0, 30, (size, 2), generator=g)
        brute = float(((xy[:, None].double() - xy[None].double()) ** 2).sum(-1).max().sqrt())
        assert minors_module._diameter(xy) == brute


def test_mnist_samples_are_pinned():
    """Exact indices on the 28×28 grid: the committed results were computed with these."""
    rows, cols = sample_indices(64, 3, 4, grid=MNIST, seed=42)
    assert rows.tolist() == [[3, 30, 43], [46, 8, 32], [20, 26, 32], [23, 1, 10]]
    assert cols.tolist() == [[416, 723, 303], [87, 719, 63], [112, 375, 143], [128, 355, 144]]
    rows, cols = sample_indices(64, 3, 4, grid=MNIST, pool=MNIST.ball(14, 405), min_separation=7.0, seed=42)
    assert rows.tolist() == [[3, 30, 43], [46, 8, 32], [20, 26, 32], [23, 1, 10]]
    assert cols.tolist() == [[312, 660, 297], [579, 242, 400], [405, 178, 579], [483, 157, 578]]
    rows, cols = sample_indices(512, 2, 3, grid=MNIST, pool=MNIST.patches()["centre"], min_separation=4.0, seed=42)
    assert rows.tolist() == [[110, 317], [160, 467], [103, 79]]
    assert cols.tolist() == [[238, 483], [291, 269], [326, 521]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_rows=10, k=0, n_samples=5, n_cols=784), "k=0 is not allowed"),
        (dict(n_rows=3, k=4, n_samples=5, n_cols=784), "k=4 exceeds n_rows=3: a k-minor needs k distinct rows"),
        (dict(n_rows=10, k=4, n_samples=5, n_cols=784, pool=[1, 2, 3]), "k=4 exceeds the pool of 3 columns"),
        (dict(n_rows=10, k=4, n_samples=5, n_cols=3), "k=4 exceeds the pool of 3 columns"),
        (dict(n_rows=10, k=2, n_samples=0, n_cols=784), "n_samples=0 is not allowed"),
        (dict(n_rows=0, k=1, n_samples=5, n_cols=784), "n_rows=0 is not allowed"),
        (dict(n_rows=10, k=1, n_samples=5), "give n_cols .* or grid .*: neither was given"),
        (dict(n_rows=10, k=1, n_samples=5, n_cols=0), "n_cols=0 is not allowed"),
        (dict(n_rows=10, k=1, n_samples=5, n_cols=100, grid=MNIST), "n_cols=100 disagrees with grid="),
        (dict(n_rows=10, k=1, n_samples=5, grid=(28, 28)), "grid must be a kag.spatial.ImageGrid, got tuple"),
        (dict(n_rows=10, k=2, n_samples=5, n_cols=784, min_separation=2), r"min_separation=2 needs grid="),
        (dict(n_rows=10, k=1, n_samples=5, n_cols=784, pool=[]), "pool is empty"),
        (dict(n_rows=10, k=1, n_samples=5, n_cols=784, pool=[0, 784]),
         "pool contains 784: column indices must be in 0..783"),
        (dict(n_rows=10, k=1, n_samples=5, n_cols=3072, pool=[0, 3072]), "pool contains 3072"),
        (dict(n_rows=10, k=1, n_samples=5, n_cols=784, pool=[-1, 3]), "pool contains -1"),
        (dict(n_rows=10, k=1, n_samples=5, n_cols=784, pool=[3, 3]), "pool contains duplicate"),
        (dict(n_rows=10, k=1, n_samples=5, n_cols=784, pool=[[1, 2]]), r"pool has shape \[1, 2\]"),
        (dict(n_rows=10, k=2, n_samples=5, grid=MNIST, min_separation=-1.0), "min_separation=-1.0 is not allowed"),
        (dict(n_rows=10, k=2, n_samples=5, grid=MNIST, min_separation=float("nan")), "min_separation=nan"),
        (dict(n_rows=10, k=2.5, n_samples=5, n_cols=784), "k=2.5 is not allowed"),
    ],
    ids=["k0", "k-over-rows", "k-over-pool", "k-over-columns", "S0", "rows0", "no-columns", "cols0",
         "grid-disagrees", "grid-type", "separation-without-grid", "empty-pool", "pool-high", "pool-high-wide",
         "pool-negative", "pool-duplicates", "pool-2d", "negative-separation", "nan-separation", "float-k"],
)
def test_bad_sampler_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_indices(**kwargs)


def test_one_column_needs_no_grid_for_a_separation():
    rows, cols = sample_indices(10, 1, 50, n_cols=784, min_separation=5)
    assert rows.shape == cols.shape == (50, 1)


# -- one index sample per pool (ball centres drawn per image) -----------------------------------------
def test_pooled_indices_draw_distinct_columns_from_each_pool():
    from kag.determinants import sample_pooled_indices

    pools = [torch.arange(10), torch.tensor([3, 5, 7]), torch.arange(700, 784)]
    rows, cols = sample_pooled_indices(8, 3, 500, pools, n_cols=784, seed=1)
    assert rows.shape == (500, 3) and cols.shape == (3, 500, 3)
    for pool, c in zip(pools, cols):
        assert set(c.flatten().tolist()) <= set(pool.tolist())
        assert (c.sort(dim=1).values.diff(dim=1) > 0).all()  # k distinct columns in every sample
    again = sample_pooled_indices(8, 3, 500, pools, n_cols=784, seed=1)
    assert torch.equal(again[0], rows) and torch.equal(again[1], cols)


def test_pooled_indices_are_uniform_over_k_subsets():
    from collections import Counter

    from kag.determinants import sample_pooled_indices

    _, cols = sample_pooled_indices(4, 2, 30_000, [torch.tensor([1, 2, 3, 4])], n_cols=10, seed=0)
    counts = Counter(tuple(sorted(s)) for s in cols[0].tolist())
    assert len(counts) == 6 and max(counts.values()) / min(counts.values()) < 1.1


def test_pooled_indices_reject_impossible_requests():
    from kag.determinants import sample_pooled_indices

    with pytest.raises(ValueError, match="k=3 exceeds the pool of 2 columns"):
        sample_pooled_indices(8, 3, 10, [torch.arange(5), torch.tensor([1, 2])], n_cols=784)
    with pytest.raises(ValueError, match="pools=\\[\\] is not allowed"):
        sample_pooled_indices(8, 2, 10, [], n_cols=784)


def test_minors_per_item_equal_minors_of_each_image_with_its_own_columns():
    from kag.determinants import minors_per_item, sample_pooled_indices

    J = torch.randn(4, 8, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pools = [torch.arange(10), torch.arange(20, 45), torch.arange(50)]
    rows, cols = sample_pooled_indices(8, 3, 200, pools, n_cols=50, seed=2)
    images = torch.tensor([0, 3, 3])
    got = minors_per_item(J, images, rows, cols)
    expected = torch.stack([minors(J[b : b + 1], rows, cols[i])[0] for i, b in enumerate(images.tolist())])
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="do not fit"):
        minors_per_item(J, images[:2], rows, cols)


# -- sampling where a local layer's Jacobian is non-zero (issue 18 item 4) ----------------------------
def test_supported_sampling_gives_each_row_a_column_of_its_own_support():
    from kag.determinants import jacobian_support
    n, d, k = 12, 30, 3
    support = torch.zeros(n, d, dtype=torch.bool)
    for i in range(n):  # a local layer: row i sees the columns 2i .. 2i+4
        support[i, 2 * i : 2 * i + 5] = True
    rows, cols = sample_indices(n, k, 400, n_cols=d, seed=3, support=support)
    assert rows.shape == cols.shape == (400, k)
    assert all(len(set(c.tolist())) == k for c in cols)  # distinct columns
    assert bool(support[rows, cols].all())  # column i lies in row i's support
    again = sample_indices(n, k, 400, n_cols=d, seed=3, support=support)
    assert torch.equal(again[0], rows) and torch.equal(again[1], cols)
    assert torch.equal(rows, sample_indices(n, k, 400, n_cols=d, seed=3)[0])  # rows as without a support
    J = torch.zeros(2, n, d)
    J[0, :, :4] = 1.0
    J[1, 3, 7] = -2.0
    want = torch.zeros(n, d, dtype=torch.bool)
    want[:, :4] = True
    want[3, 7] = True
    assert torch.equal(jacobian_support(J), want) and torch.equal(jacobian_support(J[:1], J[1:]), want)


def test_supported_sampling_rejects_a_bad_support():
    with pytest.raises(ValueError, match=r"support has shape \[3, 3\]: expected \[4, 10\]"):
        sample_indices(4, 2, 10, n_cols=10, support=torch.ones(3, 3, dtype=torch.bool))
    grid = ImageGrid(4, 4)
    with pytest.raises(ValueError, match="support= and min_separation= cannot be combined"):
        sample_indices(4, 2, 10, grid=grid, min_separation=2, support=torch.ones(4, 16, dtype=torch.bool))
