"""Batched, on-device random translation with torchvision ``RandomAffine`` semantics (SPEC §2).

``RandomAffine(degrees=0, translate=(t, t))`` on a 28×28 image draws, per image,
``dx = round(U(-28t, 28t))`` and ``dy`` likewise, shifts the image by whole pixels (right by dx,
down by dy) and fills the vacated pixels with 0. With t = 4/28 the shifts are integers in
[-4, 4], the end points half as likely as the inner values. Here the same thing is done for a
whole batch with one gather, on whatever device the images live on.
"""

from __future__ import annotations

import torch

# Version of the augmentation (shift distribution, fill, rounding): part of every model cache key.
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
