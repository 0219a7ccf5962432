"""The window grid of several sources: its shape, tile size and exact pixels."""

from __future__ import annotations

import numpy as np
import pytest

from yolact.io.grid import fit_tile, grid_shape, tile_grid, tile_size


def solid(h: int, w: int, bgr: tuple[int, int, int]) -> np.ndarray:
    return np.full((h, w, 3), bgr, np.uint8)


@pytest.mark.parametrize(
    ("count", "shape"),
    [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)), (5, (2, 3)), (7, (3, 3)), (10, (3, 4))],
)
def test_grid_shape(count: int, shape: tuple[int, int]) -> None:
    assert grid_shape(count) == shape


def test_grid_shape_needs_a_tile() -> None:
    with pytest.raises(ValueError, match="at least one tile"):
        grid_shape(0)


def test_tile_size_one_source_keeps_its_size() -> None:
    assert tile_size([(3840, 2160)]) == (3840, 2160)


def test_tile_size_largest_sides_shrunk_to_fit() -> None:
    assert tile_size([(64, 48), (32, 60)]) == (64, 60)
    # 2 x 2 tiles of 1280 x 720 would be 2560 x 1440: shrunk by 0.75 to 1920 x 1080.
    assert tile_size([(1280, 720)] * 4) == (960, 540)
    # Three make a 2 x 2 grid: 300 / (2 * 200) = 0.75 by the width limit, aspect kept.
    assert tile_size([(200, 100)] * 3, max_size=(300, 1000)) == (150, 75)
    # Four under a 1000 x 120 limit: 120 / (2 * 100) = 0.6 by the height limit.
    assert tile_size([(200, 100)] * 4, max_size=(1000, 120)) == (120, 60)


def test_three_images_fill_a_two_by_two_grid_row_by_row() -> None:
    a, b, c = solid(2, 3, (1, 2, 3)), solid(2, 3, (4, 5, 6)), solid(2, 3, (7, 8, 9))
    a[0, 0] = (200, 201, 202)  # a marked pixel must land in the top-left corner
    grid = tile_grid([a, b, c], (3, 2))
    assert grid.shape == (4, 6, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[0:2, 0:3], a)
    np.testing.assert_array_equal(grid[0:2, 3:6], b)
    np.testing.assert_array_equal(grid[2:4, 0:3], c)
    np.testing.assert_array_equal(grid[2:4, 3:6], 0)  # no fourth source: black


def test_a_source_without_a_frame_yet_is_black() -> None:
    b = solid(2, 2, (9, 9, 9))
    grid = tile_grid([None, b], (2, 2))
    np.testing.assert_array_equal(grid[:, 0:2], 0)
    np.testing.assert_array_equal(grid[:, 2:4], 9)


def test_a_larger_image_is_shrunk_by_pixel_area() -> None:
    # 4 x 4 made of 2 x 2 blocks, each the mean of its four pixels after shrinking.
    big = np.zeros((4, 4, 3), np.uint8)
    big[0:2, 0:2] = [[(10, 10, 10), (30, 30, 30)], [(50, 50, 50), (70, 70, 70)]]  # mean 40
    big[0:2, 2:4] = 100
    big[2:4, 0:2] = 0
    big[2:4, 2:4] = 250
    tile = fit_tile(big, (2, 2))
    expected = np.array([[40, 100], [0, 250]], np.uint8)[..., None].repeat(3, axis=2)
    np.testing.assert_array_equal(tile, expected)


def test_another_aspect_is_centred_with_black_bars() -> None:
    wide = solid(2, 8, (5, 6, 7))  # 8 x 2 into 4 x 4: shrunk to 4 x 1, one row
    tile = fit_tile(wide, (4, 4))
    assert tile.shape == (4, 4, 3)
    np.testing.assert_array_equal(tile[1], np.full((4, 3), (5, 6, 7)))  # row (4 - 1) // 2
    np.testing.assert_array_equal(tile[[0, 2, 3]], 0)
    tall = solid(4, 2, (3, 3, 3))  # 2 x 4 into 4 x 4: kept, columns 1 and 2
    tile = fit_tile(tall, (4, 4))
    np.testing.assert_array_equal(tile[:, 1:3], 3)
    np.testing.assert_array_equal(tile[:, [0, 3]], 0)


def test_a_smaller_image_is_enlarged() -> None:
    tile = fit_tile(solid(1, 2, (8, 16, 32)), (4, 2))
    np.testing.assert_array_equal(tile, solid(2, 4, (8, 16, 32)))  # a flat colour stays flat


def test_an_image_of_the_tile_size_is_copied() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    tile = fit_tile(image, (3, 2))
    np.testing.assert_array_equal(tile, image)
    assert tile is not image
