"""The batched shift must be torchvision's RandomAffine(degrees=0, translate=(4/28, 4/28))."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from scipy import stats
from torchvision.transforms import InterpolationMode, RandomAffine

from kag.experiments.augment import (affine_images, affine_matrices, random_affine, random_translate, sample_affine,
                                     sample_shifts, shift_images)


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


# -- rotation and scale (SPEC §8): torchvision RandomAffine(degrees, translate, scale) ------------
def _torchvision_affine(images, angles, shifts, scales):
    """``TF.affine`` image by image, with the parameters as RandomAffine passes them (float, int pair, float)."""
    return torch.cat([
        TF.affine(image[None, None], angle=float(a), translate=[int(dx), int(dy)], scale=float(s), shear=[0.0, 0.0],
                  interpolation=InterpolationMode.NEAREST, fill=0)[0]
        for image, a, (dx, dy), s in zip(images, angles, shifts.tolist(), scales)])


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=["uint8", "float32"])
@pytest.mark.parametrize("degrees, max_shift, scale_range", [(15.0, 4, (0.9, 1.1)), (180.0, 6, (0.5, 2.0))],
                         ids=["sweep-point", "wide"])
def test_batched_affine_equals_torchvision_affine_image_by_image(dtype, degrees, max_shift, scale_range):
    # Exact: our matrices are torchvision's _get_inverse_affine_matrix (float64, identical once cast to
    # float32), the grid is built with the same float32 operations and sampled by the same
    # grid_sample, so every one of the 256 x 784 pixels agrees. (Only an ulp-level difference in the
    # grid could flip a nearest-neighbour choice, and only for a source coordinate within ~1e-6 of a
    # half-pixel; none occurs here.)
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (256, 28, 28), dtype=torch.uint8, generator=g).to(dtype)
    angles, shifts, scales = sample_affine(256, max_shift, degrees, scale_range, g)
    ours = affine_images(images, affine_matrices(angles, shifts, scales))
    assert ours.dtype == dtype
    assert torch.equal(ours, _torchvision_affine(images, angles, shifts, scales))


def test_batched_affine_equals_torchvision_on_mnist_digits(mnist):
    images = mnist.train_images[:64]
    angles = torch.linspace(-15, 15, 64, dtype=torch.float64)
    shifts = torch.stack([torch.arange(64) % 9 - 4, torch.arange(64) // 8 % 9 - 4], dim=1)
    scales = torch.linspace(0.9, 1.1, 64, dtype=torch.float64).flip(0)
    ours = affine_images(images, affine_matrices(angles, shifts, scales))
    assert torch.equal(ours, _torchvision_affine(images, angles, shifts, scales))
    assert not torch.equal(ours, shift_images(images, shifts))  # rotation and scale did something


def test_rotation_zero_and_scale_one_is_the_integer_shift(mnist):
    images = mnist.train_images[:81]
    shifts = torch.tensor([[dx, dy] for dx in range(-4, 5) for dy in range(-4, 5)])
    same = affine_images(images, affine_matrices(torch.zeros(81), shifts, torch.ones(81)))
    assert torch.equal(same, shift_images(images, shifts))


def test_positive_angle_rotates_as_torchvision_does():
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    image[0, 2, 14] = 255  # a pixel above the centre
    ours = affine_images(image, affine_matrices(torch.tensor([90.0]), torch.zeros(1, 2, dtype=torch.long), torch.ones(1)))
    theirs = TF.affine(image[None], angle=90.0, translate=[0, 0], scale=1.0, shear=[0.0, 0.0],
                       interpolation=InterpolationMode.NEAREST, fill=0)[0]
    assert torch.equal(ours, theirs) and ours.sum() == 255  # moved, not lost


def test_affine_parameters_follow_randomaffine_get_params():
    angles, shifts, scales = sample_affine(40_000, 4, 15.0, (0.9, 1.1), torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    theirs = [RandomAffine.get_params([-15.0, 15.0], [4 / 28, 4 / 28], [0.9, 1.1], None, [28, 28]) for _ in range(40_000)]
    their_angles = np.array([p[0] for p in theirs])
    their_shifts = np.array([p[1] for p in theirs])
    their_scales = np.array([p[2] for p in theirs])
    assert angles.abs().max() <= 15.0 and ((scales >= 0.9) & (scales <= 1.1)).all()
    assert shifts.dtype == torch.int64 and set(shifts.flatten().tolist()) == set(range(-4, 5))
    # same laws as torchvision: uniform angle and scale, round(U(-4, 4)) shifts
    assert stats.ks_2samp(angles.numpy(), their_angles).pvalue > 1e-4
    assert stats.ks_2samp(scales.numpy(), their_scales).pvalue > 1e-4
    assert stats.kstest(angles.numpy(), stats.uniform(-15, 30).cdf).pvalue > 1e-4
    assert stats.kstest(scales.numpy(), stats.uniform(0.9, 0.2).cdf).pvalue > 1e-4
    for axis in (0, 1):
        counts = [np.bincount(s[:, axis] + 4, minlength=9) for s in (shifts.numpy(), their_shifts)]
        assert stats.chi2_contingency(np.stack(counts)).pvalue > 1e-4
    # no scale range: every scale is 1, as get_params returns
    assert torch.equal(sample_affine(10, 4, 15.0, None, torch.Generator().manual_seed(0))[2], torch.ones(10, dtype=torch.float64))


def test_affine_draws_the_shifts_of_the_translate_only_stream_first():
    _, shifts, _ = sample_affine(1000, 4, 15.0, (0.9, 1.1), torch.Generator().manual_seed(7))
    assert torch.equal(shifts, sample_shifts(1000, 4, torch.Generator().manual_seed(7)))


def test_random_affine_is_reproducible(mnist):
    images = mnist.train_images[:32]
    a = random_affine(images, 4, 15.0, (0.9, 1.1), torch.Generator().manual_seed(5))
    assert torch.equal(a, random_affine(images, 4, 15.0, (0.9, 1.1), torch.Generator().manual_seed(5)))
    assert not torch.equal(a, random_affine(images, 4, 15.0, (0.9, 1.1), torch.Generator().manual_seed(6)))


def test_bad_affine_shapes_are_rejected_in_one_line():
    with pytest.raises(ValueError, match="do not match 2 images"):
        affine_images(torch.zeros(2, 28, 28, dtype=torch.uint8), torch.zeros(3, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="expected \\[N, 28, 28\\]"):
        affine_images(torch.zeros(2, 784), torch.zeros(2, 2, 3))
