"""Mask IoU on cropped masks (issue 18 target: the tracker's mask cost): equal to the
IoU of the full masks, shifted masks included."""

from __future__ import annotations

import numpy as np

from yolact.tracking.mask_cost import CroppedMask, crop_masks, cropped_iou
from yolact.tracking.matching import mask_iou_np, shift_mask


def _blobs(rng: np.random.Generator, n: int, shape: tuple[int, int]) -> np.ndarray:
    """Random filled rectangles with random holes; some empty."""
    h, w = shape
    out = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        if i % 5 == 4:
            continue  # empty
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        out[i, y : y + rng.integers(2, 12), x : x + rng.integers(2, 12)] = True
        out[i] &= rng.random((h, w)) > 0.2
    return out


def test_cropped_iou_equals_the_full_mask_iou():
    rng = np.random.default_rng(0)
    a, b = _blobs(rng, 12, (30, 40)), _blobs(rng, 9, (30, 40))
    ca, cb = crop_masks(a), crop_masks(b)
    assert [m is None for m in ca] == [not m.any() for m in a]
    np.testing.assert_allclose(cropped_iou(ca, cb), mask_iou_np(a, b), rtol=0, atol=1e-12)
    assert cropped_iou(ca, cb).max() > 0.1  # some pairs overlap


def test_box_windows_that_hold_the_masks_give_the_same_iou():
    rng = np.random.default_rng(1)
    a = _blobs(rng, 10, (30, 40))
    windows = np.zeros((10, 4))
    for i, m in enumerate(a):
        ys, xs = np.nonzero(m)
        if len(ys):  # (x1, y1, x2, y2) in cells, a little wider than the mask
            windows[i] = [xs.min() - 0.5, ys.min() - 1.3, xs.max() + 1.2, ys.max() + 2.0]
    got = cropped_iou(crop_masks(a, windows), crop_masks(a))
    np.testing.assert_allclose(got, mask_iou_np(a, a), rtol=0, atol=1e-12)


def test_pairs_limit_what_is_computed():
    a = np.zeros((2, 8, 8), dtype=bool)
    a[:, 2:6, 2:6] = True
    c = crop_masks(a)
    pairs = np.array([[True, False], [False, False]])
    assert cropped_iou(c, c, pairs).tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_a_shifted_mask_equals_shift_mask_at_the_frame_edges():
    rng = np.random.default_rng(2)
    masks = _blobs(rng, 8, (20, 24))
    others = _blobs(rng, 6, (20, 24))
    for dy, dx in [(0, 0), (3, -2), (-7, 9), (15, 0), (0, -30)]:
        moved = [None if m is None else m.shifted(dy, dx, (20, 24)) for m in crop_masks(masks)]
        full = np.stack([shift_mask(m, dy, dx) for m in masks])
        want = mask_iou_np(full, others)
        np.testing.assert_allclose(cropped_iou(moved, crop_masks(others)), want, atol=1e-12)
        for m, f in zip(moved, full):
            assert (m is None) == (not f.any())
            if m is not None:
                assert m.area == f.sum()


def test_a_crop_knows_its_extent():
    m = CroppedMask(2, 3, np.ones((4, 5), dtype=bool), 20)
    assert m.extent == (2, 3, 6, 8)
    assert m.shifted(-10, 0, (20, 20)) is None
