"""The colour cue read inside masks against inside boxes, and the colour helpers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from yolact.tracking import Tracker, TrackerOptions
from yolact.tracking.appearance import FrameColours, LabGrid, bgr_to_lab
from yolact.tracking.mask_cost import crop_masks

H, W = 100, 200
RED = (0, 0, 255)


def _disc(cx: int, background: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """A red disc of radius 10 at (cx, 50) on a uniform background: frame, mask, box."""
    image = np.full((H, W, 3), background, np.uint8)
    cv2.circle(image, (cx, 50), 10, RED, -1)
    mask = np.all(image == RED, axis=2)
    ys, xs = np.nonzero(mask)
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    return image, mask, box


def _lit_differently(iou: str) -> list[list[int]]:
    """The disc moves right 4 px a frame on black (x = 40..52), is gone 6 frames, and
    comes back at x = 60 with score 0.3 on white: 28 px behind its prediction. Its box's
    corners are background, so the box's mean colour moved by 38 (Lab); the mask's did
    not move."""
    tracker = Tracker(TrackerOptions(iou=iou))  # type: ignore[arg-type]
    out = []
    for f in range(12):
        if 4 <= f < 10:
            image = np.full((H, W, 3), 0, np.uint8)
            ids = tracker.update(
                np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64),
                masks=np.zeros((0, H, W), bool), image_size=(H, W), image=image,
            )  # fmt: skip
        else:
            image, mask, box = _disc(40 + 4 * f if f < 4 else 60, 0 if f < 4 else 255)
            ids = tracker.update(
                np.array([box]), np.array([0.9 if f < 4 else 0.3]), np.array([0]),
                masks=mask[None], image_size=(H, W), image=image,
            )  # fmt: skip
        out.append([int(i) for i in ids])
    return out


def test_the_mask_colour_recognises_the_object_on_another_background() -> None:
    assert _lit_differently("mask") == [[1]] * 4 + [[]] * 6 + [[1], [1]]


def test_the_box_colour_does_not() -> None:
    assert _lit_differently("box") == [[1]] * 4 + [[]] * 6 + [[-1], [-1]]


def test_lab_of_black_white_and_grey() -> None:
    lab = bgr_to_lab(np.array([[0.0, 0.0, 0.0], [255.0, 255.0, 255.0], [128.0, 128.0, 128.0]]))
    assert lab[0] == pytest.approx([0.0, 128.0, 128.0], abs=0.5)
    assert lab[1] == pytest.approx([255.0, 128.0, 128.0], abs=0.5)
    assert lab[2, 1:] == pytest.approx([128.0, 128.0], abs=0.5)


def test_box_means_are_the_lab_of_the_mean_bgr_inside() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 50, 60], [0, 0, 200, 100], [150, 90, 151, 91]], np.float64)
    got = LabGrid(image, (H, W)).box_means(boxes)
    for (x1, y1, x2, y2), lab in zip(boxes.astype(int), got):
        want = bgr_to_lab(image[y1:y2, x1:x2].reshape(-1, 3).mean(0)[None])[0]
        assert lab == pytest.approx(want, abs=1e-6)


def test_mask_colours_read_only_the_mask_and_are_computed_once() -> None:
    image, mask, box = _disc(60, 255)
    colours = FrameColours(image, np.array([box]), crop_masks(mask[None]), (H, W))
    red = bgr_to_lab(np.array([[0.0, 0.0, 255.0]]))[0]
    assert colours.get([0])[0] == pytest.approx(red, abs=1e-6)
    image[:] = 0  # kept from the first read
    assert colours.get(np.array([0, 0]))[1] == pytest.approx(red, abs=1e-6)


def test_lab_agrees_with_opencv_within_half_a_unit() -> None:
    colours = np.random.default_rng(1).uniform(0, 255, (500, 3))
    unit = (colours / 255.0).astype(np.float32).reshape(-1, 1, 3)
    want = cv2.cvtColor(unit, cv2.COLOR_BGR2Lab).reshape(-1, 3).astype(np.float64)
    want[:, 0] *= 255.0 / 100.0
    want[:, 1:] += 128.0
    assert np.abs(bgr_to_lab(colours) - want).max() < 0.5
