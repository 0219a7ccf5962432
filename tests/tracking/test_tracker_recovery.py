"""Low-score detections recover lost tracks (ByteTrack's second stage, widened to the
tracks lost within the buffer): an object that comes back from an occlusion with a low
score keeps its id."""

from __future__ import annotations

import numpy as np
import pytest

from yolact.tracking import Tracker, TrackerOptions


def _box(cx: float, cy: float, size: float = 20.0) -> list[float]:
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def _step(tracker: Tracker, boxes: list[list[float]], scores: list[float]) -> list[int]:
    n = len(boxes)
    ids = tracker.update(
        np.array(boxes, dtype=np.float32).reshape(-1, 4),
        np.array(scores, dtype=np.float32),
        np.zeros(n, dtype=np.int64),
    )
    return [int(i) for i in ids]


def _occluded_then_faint(options: TrackerOptions) -> list[list[int]]:
    """An object moving right 4 px a frame: seen 3 frames, hidden 2, back at score 0.3."""
    tracker = Tracker(options)
    out = []
    for f in range(8):
        if f in (3, 4):
            out.append(_step(tracker, [], []))
            continue
        out.append(_step(tracker, [_box(40 + 4 * f, 50)], [0.9 if f < 3 else 0.3]))
    return out


def test_a_low_score_detection_recovers_a_lost_track() -> None:
    assert _occluded_then_faint(TrackerOptions()) == [[1], [1], [1], [], [], [1], [1], [1]]


def test_without_recovery_the_faint_object_stays_untracked() -> None:
    got = _occluded_then_faint(TrackerOptions(low_recovers_lost=False))
    assert got == [[1], [1], [1], [], [], [-1], [-1], [-1]]


@pytest.mark.parametrize("recover", [True, False])
def test_a_low_score_detection_never_starts_a_track(recover: bool) -> None:
    tracker = Tracker(TrackerOptions(low_recovers_lost=recover))
    assert _step(tracker, [_box(40, 50)], [0.9]) == [1]
    for _ in range(3):
        assert _step(tracker, [_box(40, 50), _box(120, 50)], [0.9, 0.4]) == [1, -1]


def test_a_lost_track_past_its_buffer_is_not_recovered() -> None:
    tracker = Tracker(TrackerOptions(buffer_frames=2))
    assert _step(tracker, [_box(40, 50)], [0.9]) == [1]
    for _ in range(3):
        assert _step(tracker, [], []) == []
    assert _step(tracker, [_box(40, 50)], [0.3]) == [-1]
