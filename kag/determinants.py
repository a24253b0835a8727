"""k-minors of Jacobians: the index sampler and the batched determinants (SPEC §4, §6).

A k-minor is ``|det J[R, C]|`` for k distinct rows R (hidden units, outputs) and k distinct
columns C (input values: pixels, or a pixel's channels). One index sample ``(rows [S, k], cols
[S, k])`` serves every image and both the trained network and its initialisation, so ratios
compare like with like.

Determinants are computed in float64 from gathered entries: closed forms for k = 1, 2, 3 and
``torch.linalg.det`` beyond. Work is chunked over samples so memory stays bounded whatever S is.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from kag.checks import check_indices, check_int, check_jacobian, chunk_bytes
from kag.spatial import ImageGrid

# Version of the index sampler (its RNG call sequence) and of the determinants: part of every metric
# cache key; bump it when a sample or a minor changes.
MINORS_VERSION = 1

# Working set of one gathered block of entries: small on CPU (stays in cache: measured fastest),
# large on GPUs (few big kernels instead of many launch-bound small ones).
_MINOR_CHUNK_BYTES = {"cpu": 32 * 2**20, "cuda": 512 * 2**20}
_KEY_CHUNK_ELEMENTS = 2**22  # random keys per chunk when sampling subsets without replacement
_SEPARATION_ROUND_ELEMENTS = 2**23  # pairwise-distance entries per rejection round
_SEPARATION_GIVE_UP = 2**20  # draws without a single acceptance before declaring a request impossible
_SEPARATION_MAX_DRAWS = 2**27  # hard cap on draws for feasible but vanishingly rare requests


def check_pool(pool: Sequence[int] | torch.Tensor | None, n_cols: int) -> torch.Tensor:
    """A non-empty 1-D set of distinct column indices in ``0..n_cols-1`` (None = all), as int64 CPU."""
    if pool is None:
        return torch.arange(n_cols)
    pool = torch.as_tensor(pool).detach().cpu()
    if pool.numel() == 0:
        raise ValueError("pool is empty: it must hold at least one column index")
    if pool.dtype.is_floating_point or pool.dtype == torch.bool or pool.is_complex():
        raise ValueError(f"pool has dtype {pool.dtype}: expected integer column indices 0..{n_cols - 1}")
    if pool.dim() != 1:
        raise ValueError(f"pool has shape {list(pool.shape)}: expected a 1-D set of column indices")
    bad = pool[(pool < 0) | (pool >= n_cols)]
    if bad.numel():
        raise ValueError(f"pool contains {int(bad[0])}: column indices must be in 0..{n_cols - 1}")
    if pool.unique().numel() != pool.numel():
        raise ValueError("pool contains duplicate column indices: each column may appear once")
    return pool.to(torch.int64)


# ---------------------------------------------------------------------------------------------
# index sampling


def sample_indices(
    n_rows: int,
    k: int,
    n_samples: int,
    *,
    n_cols: int | None = None,
    grid: ImageGrid | None = None,
    pool: Sequence[int] | torch.Tensor | None = None,
    min_separation: float = 0.0,
    seed: int = 42,
    support: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw S index sets for k-minors of ``J [B, n_rows, n_cols]``: ``-> (rows [S, k], cols [S, k])``, int64 CPU.

    Rows are k distinct values of ``range(n_rows)``, uniform; columns are k distinct values of
    ``pool`` (column indices; default: all ``n_cols``), uniform. ``grid`` (an
    :class:`~kag.spatial.ImageGrid`) sets ``n_cols = grid.n_columns`` and gives the columns their
    pixels: with ``min_separation = d > 0`` the pixels of the k columns of every sample are pairwise
    at least d apart (uniform over such sets, by rejection; two columns of one pixel are at
    distance 0; k = 1 has no pairs, so any d holds). Rows are drawn first, so they do not depend
    on the pool or the separation. An impossible separation raises ValueError.
    Deterministic for a given ``seed``; the global RNG is never touched.

    ``support [n_rows, n_cols]`` (bool: where J can be non-zero, e.g. :func:`jacobian_support`) is
    for local layers (convolutions), whose uniformly drawn minors are nearly all exactly 0: each of a
    sample's k rows then gets one column drawn uniformly from its own support (within the pool),
    the k columns distinct, so the minor's determinant expansion has a non-zero term and the minor
    is generically non-zero. This changes what is measured: a sample of the minors that the layer's
    locality allows, not of all minors; give trained and init the same support (the union of both)
    so that their ratios compare like with like. A row whose support is exhausted takes another
    pool column (that minor may be 0). Not combined with ``min_separation``.
    """
    n_rows = check_int("n_rows", n_rows, 1)
    k = check_int("k", k, 1)
    n_samples = check_int("n_samples", n_samples, 1)
    if grid is not None:
        if not isinstance(grid, ImageGrid):
            raise ValueError(f"grid must be a kag.spatial.ImageGrid, got {type(grid).__name__}")
        if n_cols is not None and check_int("n_cols", n_cols, 1) != grid.n_columns:
            raise ValueError(f"n_cols={n_cols} disagrees with grid={grid}, which has {grid.n_columns} columns")
        n_cols = grid.n_columns
    elif n_cols is None:
        raise ValueError("give n_cols (the Jacobian's number of columns) or grid (an ImageGrid): neither was given")
    n_cols = check_int("n_cols", n_cols, 1)
    pool = check_pool(pool, n_cols)
    if k > n_rows:
        raise ValueError(f"k={k} exceeds n_rows={n_rows}: a k-minor needs k distinct rows")
    if k > pool.numel():
        raise ValueError(f"k={k} exceeds the pool of {pool.numel()} columns")
    if isinstance(min_separation, bool) or not isinstance(min_separation, numbers.Real) or not (
        math.isfinite(min_separation) and min_separation >= 0
    ):
        raise ValueError(f"min_separation={min_separation!r} is not allowed: expected a finite number >= 0")
    separated = min_separation > 0 and k > 1
    if separated and grid is None:
        raise ValueError(f"min_separation={min_separation} needs grid= (an ImageGrid) to place the columns' pixels")
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))

    rows = _random_subsets(n_rows, k, n_samples, generator)
    if support is not None:
        if separated:
            raise ValueError("support= and min_separation= cannot be combined: give one of them")
        return rows, _supported_columns(rows, _check_support(support, n_rows, n_cols), pool, k, generator)
    if separated:
        local = _separated_subsets(grid.column_coords()[pool], k, n_samples, float(min_separation), generator)
    else:
        local = _random_subsets(pool.numel(), k, n_samples, generator)
    return rows, pool[local]


def _check_support(support: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    if not isinstance(support, torch.Tensor) or support.shape != (n_rows, n_cols):
        shape = list(support.shape) if isinstance(support, torch.Tensor) else type(support).__name__
        raise ValueError(f"support has shape {shape}: expected [{n_rows}, {n_cols}] (where J [B, n_rows, n_cols] "
                         "can be non-zero, e.g. kag.determinants.jacobian_support(J))")
    return support.detach().to(device="cpu", dtype=torch.bool)


def jacobian_support(*Js: torch.Tensor) -> torch.Tensor:
    """Where any of the Jacobians ``[B, n, m]`` is non-zero at any image: ``-> [n, m]`` bool CPU (the
    ``support`` of :func:`sample_indices` for local layers; pass both networks' Jacobians)."""
    if not Js:
        raise ValueError("jacobian_support() needs at least one Jacobian")
    out = None
    for J in Js:
        check_jacobian(J)
        here = (J != 0).any(dim=0).cpu()
        if out is not None and here.shape != out.shape:
            raise ValueError(f"the Jacobians have shapes {list(out.shape)} and {list(here.shape)} per image: they must match")
        out = here if out is None else out | here
    return out


# (sample, column) keys alive at once while drawing supported columns
_SUPPORT_CHUNK = 2**24


def _supported_columns(rows: torch.Tensor, support: torch.Tensor, pool: torch.Tensor, k: int,
                       generator: torch.Generator) -> torch.Tensor:
    """Per sample, column i uniform among the pool columns in row i's support, not taken by the
    rows before it (random keys, the largest wins; an exhausted support takes another column)."""
    in_pool = support[:, pool]  # [n_rows, P]
    S, P = rows.shape[0], pool.numel()
    step = max(1, _SUPPORT_CHUNK // (k * P))
    out = []
    for s0 in range(0, S, step):
        r = rows[s0 : s0 + step]
        keys = torch.rand(r.shape[0], k, P, generator=generator, dtype=torch.float64)
        keys = torch.where(in_pool[r], keys + 1.0, keys)  # [s, k, P]: supported columns outrank the others
        taken = torch.zeros(r.shape[0], P, dtype=torch.bool)
        cols = []
        for i in range(k):  # k is small; every sample at once
            pick = keys[:, i].masked_fill(taken, -1.0).argmax(dim=1)
            taken[torch.arange(r.shape[0]), pick] = True
            cols.append(pick)
        out.append(torch.stack(cols, dim=1))
    return pool[torch.cat(out)]


def sample_pooled_indices(
    n_rows: int,
    k: int,
    n_samples: int,
    pools: Sequence[torch.Tensor],
    *,
    n_cols: int,
    seed: int = 42,
    support: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One index sample per pool, all at once: ``-> (rows [S, k], cols [P, S, k])``, int64 CPU.

    Rows (k distinct hidden units, uniform) are shared by every pool; the columns of pool p are k
    distinct members of ``pools[p]``, uniform over its k-subsets (k independent uniform draws,
    with every sample that repeats a column redrawn until none does). For analyses whose pool
    changes with the image, e.g. balls around random centres drawn per image (SPEC §6); pair it
    with :func:`minors_per_item`. Deterministic for ``seed``; the global RNG is never touched.
    ``support`` (local layers): each row's column drawn from its own support within each pool, as in
    :func:`sample_indices` (one pool after the other).
    """
    n_rows = check_int("n_rows", n_rows, 1)
    k = check_int("k", k, 1)
    n_samples = check_int("n_samples", n_samples, 1)
    n_cols = check_int("n_cols", n_cols, 1)
    if k > n_rows:
        raise ValueError(f"k={k} exceeds n_rows={n_rows}: a k-minor needs k distinct rows")
    if not pools:
        raise ValueError("pools=[] is not allowed: give at least one pool of columns")
    checked = [check_pool(p, n_cols) for p in pools]
    sizes = torch.tensor([p.numel() for p in checked])
    if int(sizes.min()) < k:
        raise ValueError(f"k={k} exceeds the pool of {int(sizes.min())} columns")
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    rows = _random_subsets(n_rows, k, n_samples, generator)
    if support is not None:
        support = _check_support(support, n_rows, n_cols)
        return rows, torch.stack([_supported_columns(rows, support, p, k, generator) for p in checked])
    table = torch.zeros(len(checked), int(sizes.max()), dtype=torch.int64)  # pools side by side, zero-padded
    for i, p in enumerate(checked):
        table[i, : p.numel()] = p
    scale = sizes.to(torch.float64)[:, None, None]
    local = (torch.rand(len(checked), n_samples, k, generator=generator, dtype=torch.float64) * scale).long()
    repeated = _has_repeats(local)
    while repeated.any():  # P(repeat) <= k^2 / 2 |pool|: few rounds
        redraw = torch.rand(int(repeated.sum()), k, generator=generator, dtype=torch.float64)
        local[repeated] = (redraw * scale.expand(-1, n_samples, 1)[repeated]).long()
        repeated = _has_repeats(local)
    return rows, table.gather(1, local.view(len(checked), -1)).view(len(checked), n_samples, k)


def _has_repeats(local: torch.Tensor) -> torch.Tensor:
    """``[..., k] -> [...]``: whether a sample holds some value twice."""
    k = local.shape[-1]
    same = local[..., :, None] == local[..., None, :]
    return (same & ~torch.eye(k, dtype=torch.bool)).flatten(-2).any(-1)


def _random_subsets(n: int, k: int, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """``[S, k]`` rows of k distinct values of ``range(n)``: the top-k of i.i.d. uniform keys."""
    chunk = max(1, _KEY_CHUNK_ELEMENTS // n)
    parts = [
        torch.rand(min(chunk, n_samples - s0), n, generator=generator).topk(k, dim=1).indices
        for s0 in range(0, n_samples, chunk)
    ]
    return torch.cat(parts)


def _separated_subsets(
    xy: torch.Tensor, k: int, n_samples: int, d: float, generator: torch.Generator
) -> torch.Tensor:
    """``[S, k]`` positions into a pool whose pixels ``xy [P, 2]`` are pairwise >= d apart, by vectorised rejection.

    Candidates are k independent uniform draws; repeated pixels are at distance 0 < d, so they
    are rejected along with close pairs, and the accepted sets are uniform over valid k-sets.
    ``xy`` are integer grid coordinates, so squared distances are exact.
    """
    d2 = d * d
    largest = _diameter(xy)
    if largest < d:
        raise ValueError(
            f"no {k} pixels of the pool are pairwise >= {d} px apart (its largest distance is {largest:.1f} px)"
        )
    max_round = max(1024, _SEPARATION_ROUND_ELEMENTS // (k * k))
    off_diagonal = ~torch.eye(k, dtype=torch.bool)
    kept, n_kept, n_drawn = [], 0, 0
    while n_kept < n_samples:
        rate = n_kept / n_drawn if n_kept else 0.0
        wanted = 2 * n_samples if n_drawn == 0 else (max_round if rate == 0 else 1.2 * (n_samples - n_kept) / rate)
        size = int(min(max_round, max(1024, wanted)))
        cand = torch.randint(0, xy.shape[0], (size, k), generator=generator)
        c = xy[cand]  # [size, k, 2]
        sq = ((c[:, :, None, :] - c[:, None, :, :]) ** 2).sum(-1)  # [size, k, k]
        ok = ((sq >= d2) | ~off_diagonal).all(dim=2).all(dim=1)
        kept.append(cand[ok])
        n_kept += int(ok.sum())
        n_drawn += size
        if n_kept == 0 and n_drawn >= _SEPARATION_GIVE_UP:
            raise ValueError(
                f"no {k} pixels of the pool are pairwise >= {d} px apart (0 of {n_drawn} random draws were)"
            )
        if n_kept < n_samples and n_drawn >= _SEPARATION_MAX_DRAWS:
            raise ValueError(
                f"min_separation={d} is too rare for k={k} in this pool: only {n_kept} of {n_drawn} random draws "
                f"qualified, {n_samples} needed; lower n_samples or min_separation"
            )
    return torch.cat(kept)[:n_samples]


def _diameter(xy: torch.Tensor) -> float:
    """Largest Euclidean distance between integer points ``xy [P, 2]``.

    The farthest pair lies on the convex hull, whose vertices are among each row's leftmost and
    rightmost points: O(P + rows²) instead of O(P²), and exact (squared distances are integers).
    """
    rows, cols = xy.unbind(dim=1)
    n = int(rows.max()) + 1
    left = torch.full((n,), torch.iinfo(torch.int64).max).scatter_reduce(0, rows, cols, "amin")
    right = torch.full((n,), -1, dtype=torch.int64).scatter_reduce(0, rows, cols, "amax")
    present = right >= 0
    r = torch.arange(n)[present]
    ends = torch.cat((torch.stack((r, left[present]), 1), torch.stack((r, right[present]), 1)))
    return math.sqrt(float(((ends[:, None, :] - ends[None, :, :]) ** 2).sum(-1).max()))


# ---------------------------------------------------------------------------------------------
# minors


def minors(J: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Absolute k-minors ``|det J[b, rows[s], cols[s]]|``: ``J [B, n, m], rows/cols [S, k] -> [B, S]`` float64.

    Runs on J's device (indices are moved there); determinants accumulate in float64. Chunked
    over samples (32 MB blocks on CPU, 512 MB on CUDA), so memory beyond J and the output stays
    small; a J whose last two axes are not contiguous is copied once.
    """
    check_jacobian(J)
    rows, cols = check_indices(rows, cols, J.shape[1], J.shape[2])
    return minors_unchecked(J, rows.to(J.device), cols.to(J.device))


def entry_major_index(rows: torch.Tensor, cols: torch.Tensor, n_cols: int) -> torch.Tensor:
    """Where the k×k entries of every sampled minor lie in ``J.reshape(B, n * n_cols)``: ``rows/cols
    [S, k] -> [k, k, S]`` int64, entry-major and contiguous (the layout :func:`minors_unchecked` gathers).

    A caller that takes the same index sample's minors of many Jacobians (the rotation ratio) builds
    it once instead of once per call."""
    return (rows[:, :, None] * n_cols + cols[:, None, :]).permute(1, 2, 0).contiguous()


def minors_unchecked(J: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                     entries: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`minors` without validation, for callers that already checked (e.g. the rotation ratio);
    ``entries``: :func:`entry_major_index` of (rows, cols), if the caller has it."""
    B, n, m = J.shape
    S, k = rows.shape
    flat_J = J.reshape(B, n * m)
    if entries is None:
        entries = entry_major_index(rows, cols, m)  # [k, k, S]
    per_sample = B * k * k * (8 + J.element_size())
    chunk = max(1, chunk_bytes(_MINOR_CHUNK_BYTES, J.device) // per_sample)
    out = torch.empty(B, S, dtype=torch.float64, device=J.device)
    for s0 in range(0, S, chunk):
        idx = entries[:, :, s0 : s0 + chunk].reshape(1, -1)  # [1, k*k*s]: a view when one chunk holds all S
        block = flat_J.gather(1, idx.expand(B, -1))  # gather beats index_select here (measured 1.5×)
        out[:, s0 : s0 + chunk] = _abs_det(block.to(torch.float64).view(B, k, k, -1))  # [B, k, k, s]
    return out


def minors_per_item(J: torch.Tensor, images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Minors with an index sample of their own per item: ``J [B, n, m], images [P], rows [S, k],
    cols [P, S, k] -> [P, S]`` float64, item p taken from image ``images[p]`` with columns ``cols[p]``.

    The batched form of calling :func:`minors` once per (image, pool) pair, for pools that change
    with the image; chunked over items to bound memory.
    """
    check_jacobian(J)
    B, n, m = J.shape
    images = torch.as_tensor(images, dtype=torch.int64)
    if images.dim() != 1 or cols.dim() != 3 or cols.shape[0] != images.numel() or cols.shape[1:] != rows.shape:
        raise ValueError(f"images {list(images.shape)}, rows {list(rows.shape)} and cols {list(cols.shape)} do not "
                         "fit: expected images [P], rows [S, k], cols [P, S, k]")
    if images.numel() and (int(images.min()) < 0 or int(images.max()) >= B):
        raise ValueError(f"images holds indices outside 0..{B - 1}")
    check_indices(rows, cols[0], n, m)
    S, k = rows.shape
    flat_J = J.reshape(B, n * m)
    rows, cols, images = rows.to(J.device), cols.to(J.device), images.to(J.device)
    per_item = S * k * k * (8 + J.element_size())
    chunk = max(1, chunk_bytes(_MINOR_CHUNK_BYTES, J.device) // per_item)
    out = torch.empty(images.numel(), S, dtype=torch.float64, device=J.device)
    for p0 in range(0, images.numel(), chunk):
        c = cols[p0 : p0 + chunk]  # [p, S, k]
        idx = rows[None, :, :, None] * m + c[:, :, None, :]  # [p, S, k, k]
        block = flat_J[images[p0 : p0 + chunk]].gather(1, idx.permute(0, 2, 3, 1).reshape(c.shape[0], -1))
        out[p0 : p0 + chunk] = _abs_det(block.to(torch.float64).view(c.shape[0], k, k, S))
    return out


def _abs_det(a: torch.Tensor) -> torch.Tensor:
    """``|det|`` of ``a [B, k, k, s]`` (matrix axes first, for contiguous closed forms) ``-> [B, s]``."""
    k = a.shape[1]
    if k == 1:
        return a[:, 0, 0].abs()
    if k == 2:
        return (a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]).abs()
    if k == 3:  # cofactor expansion along the first row, in place to spare temporaries
        (p, q, r), (s, t, u), (v, w, x) = a[:, 0].unbind(1), a[:, 1].unbind(1), a[:, 2].unbind(1)
        det = (t * x).sub_(u * w).mul_(p)
        det.sub_((s * x).sub_(u * v).mul_(q))
        return det.add_((s * w).sub_(t * v).mul_(r)).abs_()
    return torch.linalg.det(a.permute(0, 3, 1, 2)).abs()
