"""The duplicate rule's defaults (``duplicate_iou`` 0.3 with mask IoU, 0.6 with box IoU) on
hand-made frames, and the colour
cue's mask means against a plain reference."""

from __future__ import annotations

import numpy as np
import pytest

from yolact.tracking import Tracker, TrackerOptions
from yolact.tracking.appearance import LabGrid, bgr_to_lab
from yolact.tracking.mask_cost import CroppedMask

H, W = 100, 200
RED, GREY = (0, 0, 255), (128, 128, 128)


def _box(cx: float, size: float = 20.0) -> list[float]:
    return [cx - size / 2, 40.0, cx + size / 2, 40.0 + size]


def _track(options: TrackerOptions, shift: float, mode: str) -> list[int]:
    """A red 20x20 object moving right 2 px a frame, tracked from frame 0; from frame 1 on
    a second detection (another class, score 0.8) lies ``shift`` px to its right: box
    (and filled-mask) IoU (20 - shift) / (20 + shift). The second detection's ids."""
    tracker = Tracker(options)
    got = []
    for f in range(6):
        x = 40.0 + 2 * f
        boxes = [_box(x)] + ([_box(x + shift)] if f else [])
        image = np.full((H, W, 3), GREY, np.uint8)
        masks = np.zeros((len(boxes), H, W), bool)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            image[int(y1) : int(y2), int(x1) : int(x2)] = RED
            masks[i, int(y1) : int(y2), int(x1) : int(x2)] = True
        ids = tracker.update(
            np.array(boxes, np.float32),
            np.array([0.95, 0.8][: len(boxes)], np.float32),
            np.array([0, 1][: len(boxes)], np.int64),
            masks=masks if mode == "mask" else None,
            image_size=(H, W),
            image=image,
        ).tolist()
        assert ids[0] == 1
        if f:
            got.append(ids[1])
    return got


def test_the_defaults_depend_on_the_association_mode() -> None:
    assert TrackerOptions().duplicate_iou is None
    assert TrackerOptions(iou="mask").duplicate_threshold == 0.3
    assert TrackerOptions(iou="box").duplicate_threshold == 0.6
    assert TrackerOptions(iou="mask", duplicate_iou=1.0).duplicate_threshold == 1.0
    with pytest.raises(ValueError, match="duplicate_iou"):
        TrackerOptions(duplicate_iou=1.5)


def test_with_masks_a_second_detection_overlapping_by_0_43_starts_no_track() -> None:
    """8 px to the right: mask IoU 12 / 28 = 0.43, over 0.3; 0.6 (the box default, and
    the mask default before) lets it start a track."""
    assert _track(TrackerOptions(iou="mask"), 8.0, "mask") == [-1] * 5
    assert _track(TrackerOptions(iou="mask", duplicate_iou=0.6), 8.0, "mask") == [-1, 2, 2, 2, 2]


def test_with_boxes_a_detection_overlapping_by_0_43_starts_a_track() -> None:
    """Box IoU 0.43 is under the box default of 0.6: boxes of neighbours overlap."""
    assert _track(TrackerOptions(iou="box"), 8.0, "box") == [-1, 2, 2, 2, 2]
    assert _track(TrackerOptions(iou="box", duplicate_iou=0.3), 8.0, "box") == [-1] * 5


@pytest.mark.parametrize("mode", ["box", "mask"])
def test_a_neighbour_overlapping_by_0_18_still_starts_a_track(mode: str) -> None:
    """14 px to the right: IoU 6 / 34 = 0.18, under 0.3: an object of its own."""
    assert _track(TrackerOptions(iou=mode), 14.0, mode) == [-1, 2, 2, 2, 2]  # type: ignore[arg-type]


def test_mask_means_equal_the_mean_of_the_selected_cells() -> None:
    """The mean over a mask's cells (taken as one product) against a plain selection."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    grid = LabGrid(image, (40, 60))
    crop = rng.random((7, 9)) > 0.4
    crop[0, 0] = True
    mask = CroppedMask(5, 11, crop, int(crop.sum()))
    got = grid.mask_means([mask], np.zeros((1, 4)))
    cells = image[5:12, 11:20][crop].astype(np.float64)
    np.testing.assert_array_equal(got, bgr_to_lab(cells.sum(0, keepdims=True) / crop.sum()))
