"""Pixel geometry of image grids: balls, patches, centres, channels (SPEC §6)."""

import pytest
import torch

from kag.spatial import ImageGrid

MNIST = ImageGrid(28, 28)
CENTRE = 14 * 28 + 14  # pixel (14, 14)


def test_pixel_coords_are_row_major():
    xy = MNIST.pixel_coords()
    assert xy.shape == (784, 2) and xy.dtype == torch.int64
    assert xy[0].tolist() == [0, 0] and xy[27].tolist() == [0, 27] and xy[28].tolist() == [1, 0]
    assert xy[783].tolist() == [27, 27]


def test_sizes_of_a_grid():
    grid = ImageGrid(32, 24, channels=3)
    assert (grid.n_pixels, grid.n_columns) == (768, 2304)
    assert (MNIST.n_pixels, MNIST.n_columns) == (784, 784)


def test_columns_follow_pytorchs_channel_height_width_layout():
    """Column c*H*W + row*W + col of a flattened [C, H, W] image is channel c of pixel (row, col)."""
    grid = ImageGrid(4, 5, channels=3)
    image = torch.arange(grid.n_columns).reshape(3, 4, 5)  # each entry holds its flat index
    assert torch.equal(grid.column_pixels(), (image % 20).flatten())
    xy = grid.column_coords()
    for c, row, col in [(0, 0, 0), (1, 2, 3), (2, 3, 4)]:
        column = int(image[c, row, col])
        assert xy[column].tolist() == [row, col] and int(grid.column_pixels()[column]) == row * 5 + col
    assert grid.columns([7]).tolist() == [7, 27, 47]


def test_pairwise_distances_are_euclidean_on_the_grid():
    d = MNIST.pairwise_distances(torch.tensor([[0, 27, 783]]))
    assert d.shape == (1, 3, 3)
    assert d[0, 0, 1] == 27 and d[0, 1, 2] == 27 and d[0, 0, 2] == pytest.approx(27 * 2**0.5)


def test_columns_of_one_pixel_are_at_distance_zero():
    grid = ImageGrid(8, 8, channels=3)
    d = grid.pairwise_distances(torch.tensor([9, 64 + 9, 128 + 10]))  # pixel 9 twice, then its neighbour
    assert d[0, 1] == 0 and d[0, 2] == 1 and d[1, 2] == 1


def test_radius_28_ball_covers_the_image():
    assert torch.equal(MNIST.ball(28, (14, 14)), torch.arange(784))


def test_radius_0_ball_is_the_centre_pixel():
    assert MNIST.ball(0, CENTRE).tolist() == [CENTRE]


def test_radius_7_ball_is_a_discrete_disc():
    assert MNIST.ball(7, CENTRE).numel() == 149  # lattice points with dx² + dy² <= 49


def test_pixel_index_and_pair_give_the_same_ball():
    assert torch.equal(MNIST.ball(5, CENTRE), MNIST.ball(5, (14, 14)))


def test_corner_ball_is_clipped():
    pool = MNIST.ball(7, 0)
    xy = MNIST.pixel_coords()[pool]
    assert (xy >= 0).all() and (xy.float().norm(dim=1) <= 7).all()
    assert pool.numel() == 45  # the quarter disc: lattice points with x, y >= 0 and x² + y² <= 49


def test_a_ball_on_three_channels_holds_every_channel_of_its_pixels():
    grid = ImageGrid(28, 28, channels=3)
    pixels = MNIST.ball(7, CENTRE)
    pool = grid.ball(7, CENTRE)
    assert pool.numel() == 3 * 149
    assert torch.equal(pool, torch.cat([pixels, pixels + 784, pixels + 2 * 784]))
    assert torch.equal(grid.column_pixels()[pool].unique(), pixels)


def test_balls_on_a_rectangular_grid():
    grid = ImageGrid(10, 40, channels=2)
    assert torch.equal(grid.ball(50, (5, 20)), torch.arange(800))
    right_end = grid.pixel_coords()[grid.column_pixels()[grid.ball(1, (9, 39))]]
    assert sorted(map(tuple, right_end.tolist())) == [(8, 39), (8, 39), (9, 38), (9, 38), (9, 39), (9, 39)]


def test_mean_ball_size():
    assert MNIST.mean_ball_size(7, [CENTRE, 0]) == pytest.approx((149 + 45) / 2)
    assert MNIST.mean_ball_size(28, torch.tensor([CENTRE])) == 784
    assert ImageGrid(28, 28, channels=3).mean_ball_size(7, [CENTRE, 0]) == pytest.approx((149 + 45) / 2)  # pixels


def test_patches_have_196_pixels_and_quadrants_partition_the_image():
    pools = MNIST.patches()
    assert set(pools) == {"top-left", "top-right", "bottom-left", "bottom-right", "centre"}
    assert all(p.numel() == 196 for p in pools.values())
    quadrants = torch.cat([pools[k] for k in ("top-left", "top-right", "bottom-left", "bottom-right")])
    assert torch.equal(quadrants.sort().values, torch.arange(784))


def test_centre_patch_is_rows_and_cols_7_to_20():
    xy = MNIST.pixel_coords()[MNIST.patches()["centre"]]
    assert xy.min() == 7 and xy.max() == 20
    assert MNIST.pixel_coords()[MNIST.patches()["top-right"]][:, 1].min() == 14
    assert torch.equal(MNIST.patches()["centre"], MNIST.patch(7, 7, 14, 14))


def test_quadrants_of_an_odd_colour_grid_partition_its_columns():
    grid = ImageGrid(7, 9, channels=3)
    pools = grid.patches()
    quadrants = torch.cat([pools[k] for k in ("top-left", "top-right", "bottom-left", "bottom-right")])
    assert torch.equal(quadrants.sort().values, torch.arange(grid.n_columns))
    centre = grid.pixel_coords()[grid.column_pixels()[pools["centre"]]]
    assert pools["centre"].numel() == 3 * 3 * 4
    assert (centre.min(0).values.tolist(), centre.max(0).values.tolist()) == ([2, 2], [4, 5])


def test_random_centres_are_deterministic_pixels():
    a, b = MNIST.random_centres(50, seed=3), MNIST.random_centres(50, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, MNIST.random_centres(50, seed=4))
    assert a.dtype == torch.int64 and 0 <= a.min() and a.max() < 784
    big = ImageGrid(64, 64, channels=3).random_centres(2000, seed=0)
    assert big.max() < 64 * 64 and big.max() >= 784  # pixels, not columns, and not limited to 784


def test_pools_are_pinned_for_mnist():
    """Exact values of the 28×28 pools the committed results were computed with."""
    assert MNIST.random_centres(4, seed=42).tolist() == [470, 163, 60, 110]
    sizes = [MNIST.ball(r, int(c)).numel() for r in (7, 14, 21, 28) for c in MNIST.random_centres(4, seed=42)]
    assert sizes == [141, 124, 94, 76, 431, 314, 260, 227, 686, 574, 499, 452, 784, 762, 734, 709]
    assert int(MNIST.ball(7, 405).sum()) == 60345 and int(MNIST.patches()["centre"].sum()) == 76734


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: MNIST.ball(-1, CENTRE), "radius=-1 is not allowed"),
        (lambda: MNIST.ball(float("nan"), CENTRE), "radius=nan is not allowed"),
        (lambda: MNIST.ball(3, 784), "centre=784 is not a pixel index"),
        (lambda: MNIST.ball(3, (30, 2)), r"centre=\(30, 2\) lies outside the image"),
        (lambda: MNIST.ball(0.2, (3.5, 3.5)), "radius=0.2 around centre .* selects no pixel"),
        (lambda: MNIST.ball(3, "middle"), "centre='middle' is not allowed"),
        (lambda: MNIST.random_centres(0, seed=1), "n=0 is not allowed"),
        (lambda: MNIST.mean_ball_size(3, []), "centres is empty"),
        (lambda: MNIST.mean_ball_size(3, [900]), "centres contains 900"),
        (lambda: ImageGrid(0, 28), "height=0 is not allowed"),
        (lambda: ImageGrid(28, 28, channels=1.5), "channels=1.5 is not allowed"),
        (lambda: MNIST.columns([784]), "pixels contains 784: pixel indices must be in 0..783"),
        (lambda: MNIST.patch(20, 0, 14, 14), "patch rows 20..33, cols 0..13 leave the 28x28 image"),
        (lambda: MNIST.patch(0, 0, 0, 14), "height=0 is not allowed"),
        (lambda: ImageGrid(1, 28).patches(), "patches need an image of at least 2x2 pixels"),
        (lambda: ImageGrid(4, 4, channels=2).pairwise_distances(torch.tensor([32])), "columns contains 32"),
    ],
    ids=["negative-radius", "nan-radius", "centre-index", "centre-pair", "empty-ball", "centre-type",
         "no-centres", "empty-centres", "bad-centre", "zero-height", "float-channels", "bad-pixel",
         "patch-outside", "empty-patch", "tiny-grid", "bad-column"],
)
def test_bad_spatial_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
