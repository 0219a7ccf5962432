"""Tracking in the streaming API: each drawn object keeps one track id over the frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from yolact import Predictor
from yolact.core.structures import Detections
from yolact.inference import stream
from yolact.inference.sources import open_source
from yolact.inference.tracking import StreamTracker
from yolact.tracking import TrackerOptions

WEIGHTS = "weights/yolact_tiny_synthetic.pth"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.from_checkpoint(WEIGHTS, device="cpu")


def frame(i: int) -> np.ndarray:
    """A circle moving right and a square moving left (the shipped model finds both)."""
    img = np.full((96, 128, 3), 90, np.uint8)
    cv2.circle(img, (30 + 4 * i, 35), 18, (40, 200, 40), -1)
    cv2.rectangle(img, (80 - 3 * i, 55), (110 - 3 * i, 85), (200, 60, 60), -1)
    return img


def ids_by_label(predictor: Predictor, **options: object) -> list[dict[int, int]]:
    """Per frame: label -> track id of the confident detection of that label."""
    out = []
    for r in stream(predictor, [frame(i) for i in range(5)], **options):
        d = r.detections
        assert d.track_ids is not None and d.track_ids.dtype == torch.int64
        assert d.track_ids.shape == d.scores.shape
        keep = d.scores > 0.9
        out.append(dict(zip(d.labels[keep].tolist(), d.track_ids[keep].tolist())))
    return out


@pytest.mark.parametrize("iou", ["box", "mask"])
def test_each_object_keeps_its_track_id(predictor: Predictor, iou: str) -> None:
    frames = ids_by_label(predictor, track=True, track_iou=iou)
    assert frames[0].keys() == {0, 1}  # circle and square both found
    first = frames[0]
    assert first[0] != first[1] and min(first.values()) >= 1
    for ids in frames:
        assert ids == first


def test_tracker_options_are_used(predictor: Predictor) -> None:
    frames = ids_by_label(predictor, track=TrackerOptions(min_hits=1))
    assert all(ids == frames[0] for ids in frames) and len(set(frames[0].values())) == 2


def test_untracked_stream_has_no_track_ids(predictor: Predictor) -> None:
    results = list(stream(predictor, [frame(i) for i in range(2)]))
    assert len(results) == 2 and all(r.detections.track_ids is None for r in results)


def test_predictor_stream_passes_track(predictor: Predictor) -> None:
    results = list(predictor.stream([frame(0), frame(1)], track=True))
    assert all(r.detections.track_ids is not None for r in results)


def test_bad_track_iou_is_refused(predictor: Predictor) -> None:
    with pytest.raises(ValueError, match="track_iou must be 'box' or 'mask', got 'poly'"):
        stream(predictor, [frame(0)], track=True, track_iou="poly")


def test_track_ids_follow_select_and_to() -> None:
    det = Detections(
        boxes=torch.zeros((3, 4)), labels=torch.tensor([0, 1, 2]),
        scores=torch.tensor([0.9, 0.8, 0.7]), box_scores=torch.zeros(3),
        mask_scores=torch.zeros(3), masks=None, image_size=(4, 4), class_names=("a", "b", "c"),
        track_ids=torch.tensor([5, -1, 7]),
    )  # fmt: skip
    picked = det.select(torch.tensor([2, 0])).to("cpu")
    assert picked.track_ids is not None and picked.track_ids.tolist() == [7, 5]
    assert det.select(det.scores > 0.75).track_ids.tolist() == [5, -1]  # type: ignore[union-attr]
    assert Detections.empty((4, 4), ("a",)).track_ids is None


def test_buffer_uses_the_source_frame_rate(tmp_path) -> None:
    path = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (128, 96))
    for i in range(2):
        out.write(frame(i))
    out.release()
    video, frames = open_source(str(path)), open_source([frame(0)])
    try:
        tracker = StreamTracker([video, frames], True, "mask", track_buffer=2.0)
        assert [t.options.buffer_frames for t in tracker.trackers] == [20, 60]  # 10 fps, 30
        assert all(t.options.iou == "mask" for t in tracker.trackers)
    finally:
        video.close()
        frames.close()
