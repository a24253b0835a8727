"""The batched shift must be torchvision's RandomAffine(degrees=0, translate=(4/28, 4/28))."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from scipy import stats
from torchvision.transforms import InterpolationMode, RandomAffine

from kag.augment import random_translate, sample_shifts, shift_images


def test_shift_matches_torchvision_affine_for_every_integer_shift(mnist):
    images = mnist.train_images[:9]
    for dx in range(-4, 5):
        for dy in range(-4, 5):
            shifts = torch.tensor([[dx, dy]] * len(images))
            ours = shift_images(images, shifts)
            theirs = TF.affine(images.unsqueeze(1), angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0, 0.0],
                               interpolation=InterpolationMode.NEAREST, fill=0).squeeze(1)
            assert torch.equal(ours, theirs), (dx, dy)


def test_positive_dx_moves_the_image_right_and_fills_with_black():
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    image[0, 10, 0] = 200
    image[0, :, 27] = 255
    out = shift_images(image, torch.tensor([[3, 2]]))
    assert out[0, 12, 3] == 200
    assert out[0, :, :3].sum() == 0 and out[0, :2, :].sum() == 0  # vacated pixels are 0
    assert out.sum() == 200  # the right column left the frame


def test_shift_distribution_matches_randomaffine_sampling():
    ours = sample_shifts(40_000, 4, torch.Generator().manual_seed(0)).numpy()
    torch.manual_seed(1)
    params = [RandomAffine.get_params([0.0, 0.0], [4 / 28, 4 / 28], None, None, [28, 28])[1] for _ in range(40_000)]
    theirs = np.array(params)
    values = np.arange(-4, 5)
    expected = np.array([0.5, 1, 1, 1, 1, 1, 1, 1, 0.5]) / 8.0
    for axis in (0, 1):
        ours_counts = np.array([(ours[:, axis] == v).sum() for v in values])
        theirs_counts = np.array([(theirs[:, axis] == v).sum() for v in values])
        assert ours_counts.sum() == theirs_counts.sum() == 40_000
        # both follow round(U(-4, 4)): end points half as likely as inner values
        assert stats.chisquare(ours_counts, expected * 40_000).pvalue > 1e-4
        assert stats.chisquare(theirs_counts, expected * 40_000).pvalue > 1e-4
        assert stats.chi2_contingency(np.stack([ours_counts, theirs_counts])).pvalue > 1e-4


def test_random_translate_is_reproducible_and_per_image(mnist):
    images = mnist.train_images[:64]
    a = random_translate(images, 4, torch.Generator().manual_seed(5))
    b = random_translate(images, 4, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    # the shift differs between images: not all images moved the same way
    shifts = sample_shifts(64, 4, torch.Generator().manual_seed(5))
    assert len({tuple(s) for s in shifts.tolist()}) > 10


def test_bad_shapes_are_rejected_in_one_line():
    with pytest.raises(ValueError, match="expected \\[N, 28, 28\\]"):
        shift_images(torch.zeros(2, 784, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="do not match 2 images"):
        shift_images(torch.zeros(2, 28, 28, dtype=torch.uint8), torch.zeros(3, 2, dtype=torch.long))
