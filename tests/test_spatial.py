"""Pixel geometry of the 28×28 grid: balls, patches, centres (SPEC §6)."""

import pytest
import torch

from kag.spatial import (
    ball_pool,
    mean_ball_size,
    pairwise_distances,
    patch_pools,
    pixel_coords,
    random_centres,
)

CENTRE = 14 * 28 + 14  # pixel (14, 14)


def test_pixel_coords_are_row_major():
    xy = pixel_coords()
    assert xy.shape == (784, 2)
    assert xy[0].tolist() == [0, 0] and xy[27].tolist() == [0, 27] and xy[28].tolist() == [1, 0]
    assert xy[783].tolist() == [27, 27]


def test_pairwise_distances_are_euclidean_on_the_grid():
    d = pairwise_distances(torch.tensor([[0, 27, 783]]))
    assert d.shape == (1, 3, 3)
    assert d[0, 0, 1] == 27 and d[0, 1, 2] == 27 and d[0, 0, 2] == pytest.approx(27 * 2**0.5)


def test_radius_28_ball_covers_the_image():
    assert torch.equal(ball_pool(28, (14, 14)), torch.arange(784))


def test_radius_0_ball_is_the_centre_pixel():
    assert ball_pool(0, CENTRE).tolist() == [CENTRE]


def test_radius_7_ball_is_a_discrete_disc():
    assert ball_pool(7, CENTRE).numel() == 149  # lattice points with dx² + dy² <= 49


def test_pixel_index_and_pair_give_the_same_ball():
    assert torch.equal(ball_pool(5, CENTRE), ball_pool(5, (14, 14)))


def test_corner_ball_is_clipped():
    pool = ball_pool(7, 0)
    xy = pixel_coords()[pool]
    assert (xy >= 0).all() and (xy.float().norm(dim=1) <= 7).all()
    assert pool.numel() == 45  # the quarter disc: lattice points with x, y >= 0 and x² + y² <= 49


def test_mean_ball_size():
    assert mean_ball_size(7, [CENTRE, 0]) == pytest.approx((149 + 45) / 2)
    assert mean_ball_size(28, torch.tensor([CENTRE])) == 784


def test_patches_have_196_pixels_and_quadrants_partition_the_image():
    pools = patch_pools()
    assert set(pools) == {"top-left", "top-right", "bottom-left", "bottom-right", "centre"}
    assert all(p.numel() == 196 for p in pools.values())
    quadrants = torch.cat([pools[k] for k in ("top-left", "top-right", "bottom-left", "bottom-right")])
    assert torch.equal(quadrants.sort().values, torch.arange(784))


def test_centre_patch_is_rows_and_cols_7_to_20():
    xy = pixel_coords()[patch_pools()["centre"]]
    assert xy.min() == 7 and xy.max() == 20
    assert pixel_coords()[patch_pools()["top-right"]][:, 1].min() == 14


def test_random_centres_are_deterministic_pixels():
    a, b = random_centres(50, seed=3), random_centres(50, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, random_centres(50, seed=4))
    assert a.dtype == torch.int64 and 0 <= a.min() and a.max() < 784


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ball_pool(-1, CENTRE), "radius=-1 is not allowed"),
        (lambda: ball_pool(float("nan"), CENTRE), "radius=nan is not allowed"),
        (lambda: ball_pool(3, 784), "centre=784 is not a pixel index"),
        (lambda: ball_pool(3, (30, 2)), r"centre=\(30, 2\) lies outside the image"),
        (lambda: ball_pool(0.2, (3.5, 3.5)), "selects no pixel"),
        (lambda: ball_pool(3, "middle"), "centre='middle' is not allowed"),
        (lambda: random_centres(0, seed=1), "n=0 is not allowed"),
        (lambda: mean_ball_size(3, []), "centres is empty"),
        (lambda: mean_ball_size(3, [900]), "centres contains 900"),
    ],
    ids=["negative-radius", "nan-radius", "centre-index", "centre-pair", "empty-ball", "centre-type",
         "no-centres", "empty-centres", "bad-centre"],
)
def test_bad_spatial_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
