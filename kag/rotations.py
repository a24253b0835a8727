"""Random rotations of a layer's unit space for the rotation ratio (SPEC §5), dense or structured.

RR compares a layer's largest k-minors with those of ``Q J`` for random rotations ``Q`` of the
``m`` units. Two families:

* ``"haar"``: exact Haar rotations :func:`rotation_matrices` ``[R, m, m]`` (QR of a Gaussian). Memory
  ``8 R m²`` bytes and ``O(m³)`` work each: 21 GB for R = 10 at m = 16,384.
* ``"structured"``: :class:`StructuredRotations`, each the product of :data:`STRUCTURED_ROUNDS`
  rounds ``H D`` (random signs ``D``, then the orthonormal discrete Hartley transform ``H``,
  computed with a real FFT for any m): the structured orthogonal construction ``HD HD HD`` of
  Yu et al. (2016, "Orthogonal random features"), with Hartley in place of Hadamard so that m need
  not be a power of 2. Orthogonal to rounding, stored as ``O(R m)`` signs and applied in
  ``O(m log m)`` per column, so RR of m = 16,384 units needs megabytes, not the 21 GB of Haar.
  Not Haar, but a test pins that RR's statistic (the largest rotated minor, averaged over
  rotations) matches Haar's within sampling error on aligned, isotropic and unevenly scaled
  Jacobians.

``"auto"`` (:func:`rotation_family`) takes Haar up to :data:`HAAR_MAX_UNITS` units and the
structured family beyond, a rule of the width alone, so a result never depends on the memory at hand.
"""

from __future__ import annotations

import math

import torch

from kag.checks import check_int

ROTATIONS = ("auto", "haar", "structured")
# "auto": Haar up to this many units (the paper's widths and beyond; 8 R m² bytes: 84 MB for R = 10 at
# m = 1024); wider, the structured family is also faster (2.6x at 1,568 units: FFTs instead of an m x m matmul)
HAAR_MAX_UNITS = 1024
STRUCTURED_ROUNDS = 3  # H D rounds per structured rotation (SORF uses 3; a test pins RR's statistic)


def rotation_family(rotations: str, m: int) -> str:
    """``"haar"`` or ``"structured"``: what ``rotations`` (one of :data:`ROTATIONS`) means for ``m`` units."""
    if rotations not in ROTATIONS:
        raise ValueError(f"rotations={rotations!r} is not allowed: use {', '.join(map(repr, ROTATIONS))}")
    if rotations == "auto":
        return "haar" if m <= HAAR_MAX_UNITS else "structured"
    return rotations


def rotation_matrices(n: int, n_rotations: int, seed: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Haar-random orthogonal matrices ``[n_rotations, n, n]`` float64 on ``device``.

    QR of a standard Gaussian with the signs of R's diagonal folded into Q (without that
    correction QR is not Haar). The Gaussians come from a CPU generator seeded by ``seed``, so
    every device gets the same rotations up to float rounding, and the first R' of R rotations are
    those of a call with R'.
    """
    n = check_int("n", n, 1)
    n_rotations = check_int("n_rotations", n_rotations, 1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    gauss = torch.randn(n_rotations, n, n, generator=generator, dtype=torch.float64).to(device)
    q, r = torch.linalg.qr(gauss)
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    signs[signs == 0] = 1.0
    return q * signs[:, None, :]


def hartley(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The orthonormal discrete Hartley transform along ``dim``: ``(Re F x - Im F x) / √n``, F the DFT.

    Real, orthogonal and its own inverse, for any length n: one real FFT (``O(n log n)``), the
    upper half of the spectrum from the Hermitian symmetry of a real input's DFT."""
    n = x.shape[dim]
    f = torch.view_as_real(torch.fft.rfft(x, dim=dim) / math.sqrt(n))  # F_0 .. F_{n//2}, [..., 2] (re, im)
    re, im = f.select(-1, 0), f.select(-1, 1)
    out = torch.empty_like(x)
    out.narrow(dim, 0, n // 2 + 1).copy_(re - im)
    # H_k = Re F_{n-k} + Im F_{n-k} for k > n//2 (a real input's spectrum is Hermitian)
    out.narrow(dim, n // 2 + 1, n - n // 2 - 1).copy_((re + im).narrow(dim, 1, n - n // 2 - 1).flip(dim))
    return out


class StructuredRotations:
    """``R`` structured random rotations of ``n`` units: ``Q_q = H D_{q,3} H D_{q,2} H D_{q,1}`` (see the
    module docstring).

    Built from a CPU generator seeded by ``seed`` (the same rotations on every device); the first R'
    of R rotations are those of a call with R' (:meth:`prefix`). Only the signs are stored
    (``[R, rounds, n]`` int8).
    """

    def __init__(self, n: int, n_rotations: int, seed: int, rounds: int = STRUCTURED_ROUNDS) -> None:
        self.n = check_int("n", n, 1)
        n_rotations = check_int("n_rotations", n_rotations, 1)
        rounds = check_int("rounds", rounds, 1)
        generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
        bits = torch.randint(0, 2, (n_rotations, rounds, n), generator=generator)  # rotation-major: prefixes agree
        self.signs = bits.mul(2).sub(1).to(torch.int8)  # [R, rounds, n], ±1

    def __len__(self) -> int:
        return self.signs.shape[0]

    def prefix(self, count: int) -> StructuredRotations:
        """The first ``count`` rotations."""
        out = object.__new__(StructuredRotations)
        out.n, out.signs = self.n, self.signs[:count]
        return out

    def apply(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """``Q_q x`` for rotations ``start..stop``: ``x [B, n, c] -> [B, R', n, c]`` in x's dtype."""
        if x.dim() != 3 or x.shape[1] != self.n:
            raise ValueError(f"x has shape {list(x.shape)}: expected [B, {self.n}, c] (the rotated axis is the second)")
        signs = self.signs[start:stop].to(device=x.device, dtype=x.dtype)
        columns = x.transpose(1, 2).contiguous()  # [B, c, n]: the FFTs run along the last, contiguous axis
        out = []
        for sign in signs:  # a few rotations per call; every operation is over all of x
            y = columns
            for r in range(sign.shape[0]):
                y = hartley(y * sign[r], dim=2)
            out.append(y.transpose(1, 2))
        return torch.stack(out, dim=1)

    def matrices(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The rotations as dense matrices ``[R, n, n]`` (for tests and small n)."""
        eye = torch.eye(self.n, dtype=dtype)[None]
        return self.apply(eye.expand(1, -1, -1).contiguous())[0]


def make_rotations(family: str, n: int, n_rotations: int, seed: int,
                   device: torch.device | str | None = None) -> torch.Tensor | StructuredRotations:
    """``n_rotations`` rotations of ``n`` units of ``family`` (``"haar"`` or ``"structured"``)."""
    if family == "haar":
        return rotation_matrices(n, n_rotations, seed, device)
    if family == "structured":
        return StructuredRotations(n, n_rotations, seed)
    raise ValueError(f"family={family!r} is not allowed: use 'haar' or 'structured'")


def rotations_bytes(family: str, n: int, n_rotations: int) -> int:
    """Bytes the rotations of ``family`` take at once (Haar: float64 ``[R, n, n]``; structured: the
    int8 signs)."""
    return n_rotations * n * n * 8 if family == "haar" else n_rotations * STRUCTURED_ROUNDS * n
