"""The frame reaches each source's tracker, so its colour cue works through
``Predictor.stream`` and ``eval.py --track``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolact.core.structures import Detections
from yolact.inference.tracking import StreamTracker
from yolact.tracking import Tracker, TrackerOptions
from yolact.tracking.appearance import bgr_to_lab


def _detections(x: float) -> Detections:
    box = torch.tensor([[x, 20.0, x + 20.0, 40.0]])
    mask = torch.zeros((1, 60, 80), dtype=torch.bool)
    mask[0, 20:40, int(x) : int(x) + 20] = True
    one = torch.ones(1)
    return Detections(
        boxes=box, labels=torch.zeros(1, dtype=torch.int64), scores=one * 0.9,
        box_scores=one, mask_scores=one, masks=mask, image_size=(60, 80),
        class_names=("thing",),
    )  # fmt: skip


@pytest.mark.parametrize("iou", ["box", "mask"])
def test_a_bgr_frame_gives_the_tracks_their_colour(iou: str) -> None:
    tracker = StreamTracker([], track=True, track_iou=iou)
    tracker.trackers = [Tracker(TrackerOptions(iou=iou))]  # type: ignore[arg-type]  # one source
    image = np.full((60, 80, 3), 128, np.uint8)
    image[20:40, 10:30] = (0, 0, 255)
    out = tracker.apply(0, _detections(10.0), image)
    assert out.track_ids is not None and out.track_ids.tolist() == [1]
    colour = tracker.trackers[0].tracks[0].colour
    assert colour is not None
    assert colour == pytest.approx(bgr_to_lab(np.array([[0.0, 0.0, 255.0]]))[0], abs=1e-6)


def test_without_a_frame_or_with_another_kind_of_array_no_colour_is_read() -> None:
    tracker = StreamTracker([], track=True)
    tracker.trackers = [Tracker(TrackerOptions())]
    tracker.apply(0, _detections(10.0))
    tracker.apply(0, _detections(12.0), np.zeros((60, 80), np.float32))
    assert tracker.trackers[0].tracks[0].colour is None
