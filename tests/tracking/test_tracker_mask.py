"""Mask-IoU association: objects whose boxes overlap but whose masks do not."""

from __future__ import annotations

import numpy as np

from yolact.tracking import Tracker, TrackerOptions


def _l_shape(x: int, y: int, size: int, arm: int, shape: tuple[int, int]) -> np.ndarray:
    """An L: a vertical arm on the left and a horizontal arm at the bottom."""
    m = np.zeros(shape, dtype=bool)
    m[y : y + size, x : x + arm] = True
    m[y + size - arm : y + size, x : x + size] = True
    return m


def _square(x: int, y: int, size: int, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[y : y + size, x : x + size] = True
    return m


def _box(mask: np.ndarray, scale: float = 1.0) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [xs.min() * scale, ys.min() * scale, (xs.max() + 1) * scale, (ys.max() + 1) * scale]


def _run(kind: str, frames: list[list[np.ndarray]], shape: tuple[int, int]) -> list[list[int]]:
    tracker = Tracker(TrackerOptions(iou=kind))  # type: ignore[arg-type]
    out = []
    for masks in frames:
        n = len(masks)
        ids = tracker.update(
            np.array([_box(m) for m in masks], dtype=np.float32).reshape(-1, 4),
            np.full(n, 0.9, dtype=np.float32),
            np.zeros(n, dtype=np.int64),
            np.stack(masks) if masks else np.zeros((0, *shape), dtype=bool),
        )
        out.append([int(i) for i in ids])
    return out


def test_mask_iou_keeps_a_square_inside_an_l_shapes_box_from_taking_its_id() -> None:
    # The L's box is [0, 0, 40, 40]; the square [16, 0, 40, 24] lies in its empty corner:
    # box IoU 0.36 (a match), mask IoU 0. In frame 3 the L is missed while the square
    # appears; box IoU hands the L's id to the square, mask IoU starts a new track.
    shape = (64, 64)
    el, sq = _l_shape(0, 0, 40, 10, shape), _square(16, 0, 24, shape)
    assert not (el & sq).any()
    frames = [[el], [el], [sq], [el, sq], [el, sq], [el, sq]]
    assert _run("box", frames, shape) == [[1], [1], [1], [-1, 1], [2, 1], [2, 1]]
    assert _run("mask", frames, shape) == [[1], [1], [-1], [1, 2], [1, 2], [1, 2]]


def _accelerating_square(image_size: tuple[int, int] | None) -> list[list[int]]:
    # Image 128x320, masks 64x160 (half resolution). A 16-cell square moves right 6 cells
    # in its first step, then 12 cells per frame: unshifted, its last mask overlaps the
    # new one with IoU 0.14 (< 0.2, no match); shifted by the predicted motion, scaled
    # from pixels to mask cells, it overlaps with IoU >= 0.45. An L stands still below it.
    shape = (64, 160)
    el = _l_shape(100, 30, 30, 6, shape)
    tracker = Tracker(TrackerOptions(iou="mask"))
    out = []
    for x in [0, 6, 18, 30, 42, 54, 66, 78, 90, 102]:
        sq = _square(x, 4, 16, shape)
        assert not (sq & el).any()
        ids = tracker.update(
            np.array([_box(sq, 2.0), _box(el, 2.0)], dtype=np.float32),
            np.array([0.9, 0.8], dtype=np.float32),
            np.array([3, 3], dtype=np.int64),
            np.stack([sq, el]).astype(np.float32),
            image_size=image_size,
        )
        out.append([int(i) for i in ids])
    return out


def test_mask_iou_shifts_the_last_mask_by_the_predicted_motion_at_mask_scale() -> None:
    assert _accelerating_square((128, 320)) == [[1, 2]] * 10


def test_mask_motion_is_scaled_from_pixels_to_mask_cells() -> None:
    # Taking the masks to be at pixel resolution doubles the shift and loses the square.
    assert _accelerating_square(None) == [[1, 2]] * 6 + [[-1, 2]] * 4


def test_mask_iou_matches_a_direct_count() -> None:
    from yolact.tracking.matching import mask_iou_np

    rng = np.random.default_rng(1)
    a, b = rng.random((7, 20, 20)) > 0.6, rng.random((5, 20, 20)) > 0.5
    b[0] = False  # an empty mask has IoU 0 with everything
    expected = np.array([[(x & y).sum() / max((x | y).sum(), 1) for y in b] for x in a])
    np.testing.assert_allclose(mask_iou_np(a, b), expected, rtol=0, atol=1e-12)
