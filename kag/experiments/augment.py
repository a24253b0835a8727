"""Batched, on-device random translation (SPEC §2), rotation and scale (SPEC §8), with torchvision
``RandomAffine`` semantics.

``RandomAffine(degrees=0, translate=(t, t))`` on a 28×28 image draws, per image,
``dx = round(U(-28t, 28t))`` and ``dy`` likewise, shifts the image by whole pixels (right by dx,
down by dy) and fills the vacated pixels with 0. With t = 4/28 the shifts are integers in
[-4, 4], the end points half as likely as the inner values. Here the same thing is done for a
whole batch with one gather, on whatever device the images live on.

With rotation and scale (the assumption sweep) the images are warped as
``torchvision.transforms.functional.affine`` warps a tensor: torchvision's inverse affine matrix,
its sampling grid and one nearest-neighbour ``grid_sample`` for the whole batch
(:func:`affine_images`). Parameters are drawn on the CPU, so a seed means the same on every device.
"""

from __future__ import annotations

import math

import torch

# Version of the augmentation (shift distribution, fill, rounding): part of every model cache key.
# Still 1 after rotation and scale were added: the translate-only path is unchanged (see below).
AUGMENT_VERSION = 1
SIDE = 28


def sample_shifts(n: int, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` integer shifts ``[n, 2]`` (dx, dy), each ``round(U(-max_shift, max_shift))``.

    Drawn on the CPU so that a seed gives the same stream on every device.
    """
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    # torch.round and Python's round both round half to even; ties have probability zero anyway.
    return torch.round((2.0 * u - 1.0) * max_shift).to(torch.int64)


def shift_images(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Translate each image by whole pixels, filling with 0: ``[N, 28, 28], [N, 2] -> [N, 28, 28]``.

    ``out[i, y, x] = images[i, y - dy_i, x - dx_i]`` where that pixel exists, else 0.
    """
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"images of shape {tuple(images.shape)} are not allowed: expected [N, 28, 28]")
    if shifts.shape != (images.shape[0], 2):
        raise ValueError(f"shifts of shape {tuple(shifts.shape)} do not match {images.shape[0]} images: expected [N, 2]")
    pad = int(shifts.abs().max().item()) if shifts.numel() else 0
    pad = min(pad, SIDE)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))  # zero fill
    wide = SIDE + 2 * pad
    shifts = shifts.to(images.device).clamp(-pad, pad)
    grid = torch.arange(SIDE, device=images.device)
    src_y = grid.view(1, SIDE, 1) - shifts[:, 1].view(-1, 1, 1) + pad  # [N, 28, 1]
    src_x = grid.view(1, 1, SIDE) - shifts[:, 0].view(-1, 1, 1) + pad  # [N, 1, 28]
    flat_index = (src_y * wide + src_x).reshape(images.shape[0], -1)
    return padded.reshape(images.shape[0], -1).gather(1, flat_index).view(-1, SIDE, SIDE)


def random_translate(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``RandomAffine(degrees=0, translate=(max_shift/28,)*2)`` on a batch ``[N, 28, 28]``."""
    return shift_images(images, sample_shifts(images.shape[0], max_shift, generator))


# -- rotation and scale (the assumption sweep, SPEC §8) ------------------------------------------
# The translate-only path above is untouched by what follows, so AUGMENT_VERSION stays 1: a model
# trained without rotation or scale is computed exactly as before, and a model trained with them
# has a different cache key anyway (its TrainConfig fields differ from their NEUTRAL values).


def sample_affine(
    n: int,
    max_shift: int,
    max_degrees: float,
    scale_range: tuple[float, float] | None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``RandomAffine(degrees=(-r, r), translate=(t, t), scale=(lo, hi)).get_params`` for ``n`` images.

    Returns ``angles [n]`` (degrees, ``U(-max_degrees, max_degrees)``), ``shifts [n, 2]`` (integer
    ``dx, dy``, exactly :func:`sample_shifts`) and ``scales [n]`` (``U(lo, hi)``, all 1 when
    ``scale_range`` is None), float64 and int64 on the CPU. The shifts are drawn first, so the same
    generator state gives the same shifts as :func:`sample_shifts`; angles and scales follow.
    """
    shifts = sample_shifts(n, max_shift, generator)
    angles = (2.0 * torch.rand(n, generator=generator, dtype=torch.float64) - 1.0) * max_degrees
    if scale_range is None:
        scales = torch.ones(n, dtype=torch.float64)
    else:
        lo, hi = scale_range
        scales = lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)
    return angles, shifts, scales


def affine_matrices(angles: torch.Tensor, shifts: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The inverse affine matrices torchvision samples with: ``[N], [N, 2], [N] -> [N, 2, 3]`` float64.

    ``torchvision.transforms.functional._get_inverse_affine_matrix`` for a tensor image (centre
    (0, 0) = the image centre, no shear), step for step in float64 so that, cast to float32, the
    matrices are torchvision's. They map an output pixel (centred coordinates) to its source pixel.
    """
    rot = angles.to(torch.float64) * (math.pi / 180.0)  # math.radians
    cos, sin = torch.cos(rot), torch.sin(rot)
    scales = scales.to(torch.float64)
    tx, ty = shifts[:, 0].to(torch.float64), shifts[:, 1].to(torch.float64)
    # with no shear, torchvision's (a, b, c, d) are (cos, -sin, sin, cos); the inverse is [d, -b; -c, a] / scale
    m0, m1, m3, m4 = cos / scales, sin / scales, -sin / scales, cos / scales
    m2 = m0 * -tx + m1 * -ty
    m5 = m3 * -tx + m4 * -ty
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=1).view(-1, 2, 3)


def _sampling_grid(theta: torch.Tensor) -> torch.Tensor:
    """torchvision's ``_gen_affine_grid`` for a batch: ``theta [N, 2, 3] -> grid [N, 28, 28, 2]``.

    Pixel centres in coordinates centred on the image, mapped by ``theta``, then normalised for
    ``grid_sample(align_corners=False)``; the same float operations as torchvision's.
    """
    d = 0.5
    base = torch.empty(1, SIDE, SIDE, 3, dtype=theta.dtype, device=theta.device)
    base[..., 0].copy_(torch.linspace(-SIDE * 0.5 + d, SIDE * 0.5 + d - 1, steps=SIDE, device=theta.device))
    base[..., 1].copy_(torch.linspace(-SIDE * 0.5 + d, SIDE * 0.5 + d - 1, steps=SIDE, device=theta.device).unsqueeze_(-1))
    base[..., 2].fill_(1)
    rescaled = theta.transpose(1, 2) / torch.tensor([0.5 * SIDE, 0.5 * SIDE], dtype=theta.dtype, device=theta.device)
    n = theta.shape[0]
    return base.view(1, SIDE * SIDE, 3).expand(n, -1, -1).bmm(rescaled).view(n, SIDE, SIDE, 2)


def affine_images(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Warp each image by its inverse affine matrix, nearest neighbour, fill 0: ``[N, 28, 28], [N, 2, 3] -> [N, 28, 28]``.

    ``torchvision.transforms.functional.affine(image, angle, [dx, dy], scale, shear=[0, 0],
    interpolation=NEAREST, fill=0)`` on each image, done for the batch with one ``grid_sample`` on
    the images' device; ``matrices`` come from :func:`affine_matrices`. Integer images are warped in
    float32 and rounded back, as torchvision does. (torchvision samples a mask channel to apply
    ``fill``; with nearest neighbour and zero padding that mask is 0 exactly where the sample already
    is 0, so fill 0 needs no mask.)
    """
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"images of shape {tuple(images.shape)} are not allowed: expected [N, 28, 28]")
    if matrices.shape != (images.shape[0], 2, 3):
        raise ValueError(f"matrices of shape {tuple(matrices.shape)} do not match {images.shape[0]} images: expected [N, 2, 3]")
    dtype = images.dtype if images.is_floating_point() else torch.float32
    grid = _sampling_grid(matrices.to(device=images.device, dtype=dtype))
    out = torch.nn.functional.grid_sample(images.unsqueeze(1).to(dtype), grid, mode="nearest", padding_mode="zeros",
                                          align_corners=False).squeeze(1)
    if images.is_floating_point():
        return out
    return torch.round(out).to(images.dtype)


def random_affine(
    images: torch.Tensor,
    max_shift: int,
    max_degrees: float,
    scale_range: tuple[float, float] | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``RandomAffine(degrees=(-r, r), translate=(max_shift/28,)*2, scale=scale_range)`` on a batch ``[N, 28, 28]``."""
    angles, shifts, scales = sample_affine(images.shape[0], max_shift, max_degrees, scale_range, generator)
    return affine_images(images, affine_matrices(angles, shifts, scales))
