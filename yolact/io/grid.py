"""Tiling the newest drawing of several sources into one window-sized image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

# The most a grid of several sources may measure, (width, height) pixels.
MAX_GRID_SIZE = (1920, 1080)


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of a grid of ``count`` tiles: as square as can be, wider than tall.

    Raises:
        ValueError: ``count`` < 1.
    """
    if count < 1:
        raise ValueError(f"a grid needs at least one tile, got {count}")
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def tile_size(
    sizes: Sequence[tuple[int, int]], max_size: tuple[int, int] = MAX_GRID_SIZE
) -> tuple[int, int]:
    """The (width, height) of each tile of a grid of sources of these (width, height).

    One source keeps its own size. Several get the largest width and the largest
    height among them, shrunk (aspect kept) so the whole grid fits ``max_size``.
    """
    if len(sizes) == 1:
        return int(sizes[0][0]), int(sizes[0][1])
    width, height = max(int(w) for w, _ in sizes), max(int(h) for _, h in sizes)
    rows, cols = grid_shape(len(sizes))
    scale = min(1.0, max_size[0] / (cols * width), max_size[1] / (rows * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def fit_tile(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled (aspect kept) to fit ``size`` = (width, height), centred on black.

    An image of exactly ``size`` is returned as a copy of itself; a shrunk one is
    resampled by pixel area, an enlarged one bilinearly.
    """
    tw, th = size
    tile = np.zeros((th, tw, 3), np.uint8)
    h, w = image.shape[:2]
    scale = min(tw / w, th / h)
    nw, nh = max(1, min(tw, round(w * scale))), max(1, min(th, round(h * scale)))
    if (nw, nh) != (w, h):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (nw, nh), interpolation=interp)
    y, x = (th - nh) // 2, (tw - nw) // 2
    tile[y : y + nh, x : x + nw] = image
    return tile


def tile_grid(images: Sequence[np.ndarray | None], size: tuple[int, int]) -> np.ndarray:
    """One image of ``images`` in a grid (row by row, see ``grid_shape``).

    Args:
        images: BGR uint8 [H, W, 3] images, one per source; None for a source with
            nothing to show yet (a black tile).
        size: (width, height) of each tile (see ``tile_size``).

    Returns:
        [rows * height, cols * width, 3] uint8; tiles past the last image are black.
    """
    rows, cols = grid_shape(len(images))
    tw, th = size
    grid = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for k, image in enumerate(images):
        if image is None:
            continue
        r, c = divmod(k, cols)
        grid[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = fit_tile(image, size)
    return grid
