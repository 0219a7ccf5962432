"""The tracker on hand-made scenes whose identities are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolact.tracking import Tracker, TrackerOptions


def _box(cx: float, cy: float, size: float = 20.0) -> list[float]:
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def _frame(
    tracker: Tracker,
    boxes: list[list[float]],
    scores: list[float] | None = None,
    labels: list[int] | None = None,
    masks: np.ndarray | None = None,
) -> list[int]:
    n = len(boxes)
    ids = tracker.update(
        np.array(boxes, dtype=np.float32).reshape(-1, 4),
        np.array(scores if scores is not None else [0.9] * n, dtype=np.float32),
        np.array(labels if labels is not None else [0] * n, dtype=np.int64),
        masks,
    )
    assert ids.dtype == torch.int64 and ids.shape == (n,)
    return [int(i) for i in ids]


def test_two_objects_moving_steadily_keep_their_ids_for_20_frames() -> None:
    tracker = Tracker(TrackerOptions())
    for f in range(20):
        assert _frame(tracker, [_box(20 + 3 * f, 30), _box(200 - 2 * f, 120)]) == [1, 2]


def test_detection_order_does_not_change_ids() -> None:
    tracker = Tracker(TrackerOptions())
    for f in range(10):
        a, b = _box(20 + 3 * f, 30), _box(200 - 2 * f, 120)
        expected = [1, 2] if f % 2 == 0 else [2, 1]
        assert _frame(tracker, [a, b] if f % 2 == 0 else [b, a]) == expected


def test_crossing_objects_keep_their_ids_with_constant_velocity() -> None:
    # Same row, opposite directions, 6 px/frame each: the 20 px boxes overlap for several
    # frames mid-way (IoU 0.82 at frame 9), then separate with their ids unswapped; without
    # motion prediction frame 9 swaps them.
    tracker = Tracker(TrackerOptions())
    overlapped = False
    for f in range(20):
        xa, xb = 47 + 6 * f, 153 - 6 * f
        overlapped |= abs(xa - xb) < 20
        ids = _frame(tracker, [_box(xa, 50), _box(xb, 50)])
        assert ids == [1, 2], f"frame {f}"
    assert overlapped


def test_occluded_object_returns_with_its_old_id_within_the_buffer() -> None:
    tracker = Tracker(TrackerOptions(buffer_frames=5))
    for f in range(5):
        assert _frame(tracker, [_box(20 + 4 * f, 30), _box(150, 150)]) == [1, 2]
    for _ in range(5, 10):  # object 1 hidden for 5 frames (== buffer) while still moving
        assert _frame(tracker, [_box(150, 150)]) == [2]
    assert _frame(tracker, [_box(20 + 4 * 10, 30), _box(150, 150)]) == [1, 2]


def test_object_missing_longer_than_the_buffer_gets_a_new_id_never_a_reused_one() -> None:
    tracker = Tracker(TrackerOptions(buffer_frames=3, min_hits=2))
    for _ in range(3):
        assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [1, 2]
    for _ in range(4):  # 4 > buffer: track 1 is removed
        assert _frame(tracker, [_box(150, 150)]) == [2]
    # Back at the same place: a tentative track first (-1), then a brand-new id.
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [-1, 2]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [3, 2]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [3, 2]
    # Track 2 leaves for good; a third object appearing where it was gets id 4, not 2.
    for _ in range(4):
        assert _frame(tracker, [_box(30, 30)]) == [3]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [3, -1]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [3, 4]


def test_new_objects_after_the_first_frame_need_min_hits_consecutive_matches() -> None:
    tracker = Tracker(TrackerOptions(min_hits=3))
    assert _frame(tracker, [_box(30, 30)]) == [1]  # first frame of the run: at once
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [1, -1]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [1, -1]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [1, 2]


def test_tentative_track_missed_once_starts_over() -> None:
    tracker = Tracker(TrackerOptions(min_hits=2))
    assert _frame(tracker, [_box(30, 30)]) == [1]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [1, -1]
    assert _frame(tracker, [_box(30, 30)]) == [1]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [1, -1]
    assert _frame(tracker, [_box(30, 30), _box(150, 150)]) == [1, 2]


def test_low_score_detections_extend_a_track_but_never_start_one() -> None:
    tracker = Tracker(TrackerOptions())
    assert _frame(tracker, [_box(30, 30)], [0.9]) == [1]
    for f in range(1, 6):  # confidence dips below high_thresh: still track 1
        assert _frame(tracker, [_box(30 + 2 * f, 30)], [0.3]) == [1]
    assert _frame(tracker, [_box(42, 30)], [0.9]) == [1]
    # A low-score object alone never becomes a track, however long it stays.
    for _ in range(5):
        assert _frame(tracker, [_box(42, 30), _box(150, 150)], [0.9, 0.4]) == [1, -1]
    # Below low_thresh a detection is ignored even where a track is.
    assert _frame(tracker, [_box(42, 30)], [0.05]) == [-1]


def test_high_score_below_new_track_thresh_does_not_start_a_track() -> None:
    tracker = Tracker(TrackerOptions())
    for _ in range(3):
        assert _frame(tracker, [_box(30, 30)], [0.55]) == [-1]


def test_different_labels_never_associate_when_kept_apart() -> None:
    tracker = Tracker(TrackerOptions(class_cost=1.0))
    assert _frame(tracker, [_box(30, 30)], labels=[0]) == [1]
    assert _frame(tracker, [_box(30, 30)], labels=[1]) == [-1]
    assert _frame(tracker, [_box(30, 30)], labels=[1]) == [2]
    # Two objects at the same place with different classes keep separate tracks.
    assert _frame(tracker, [_box(30, 30), _box(30, 30)], labels=[1, 0]) == [2, 1]


def test_empty_frames_work_and_age_the_tracks() -> None:
    tracker = Tracker(TrackerOptions(buffer_frames=2))
    assert _frame(tracker, []) == []
    assert _frame(tracker, [_box(30, 30)]) == [-1]  # not the run's first frame: tentative
    assert _frame(tracker, [_box(30, 30)]) == [1]
    assert _frame(tracker, []) == []
    assert _frame(tracker, []) == []
    assert _frame(tracker, [_box(30, 30)]) == [1]  # 2 frames missing == buffer: kept
    for _ in range(3):
        assert _frame(tracker, []) == []
    assert _frame(tracker, [_box(30, 30)]) == [-1]  # 3 > buffer: gone, a new one starts
    assert _frame(tracker, [_box(30, 30)]) == [2]


def test_options_from_seconds_use_the_source_frame_rate() -> None:
    assert TrackerOptions().buffer_frames == 30
    assert TrackerOptions.from_seconds(buffer_s=1.0, fps=25.0).buffer_frames == 25
    assert TrackerOptions.from_seconds(buffer_s=2.0, fps=12.5).buffer_frames == 25
    assert TrackerOptions.from_seconds(buffer_s=0.5, fps=29.97).buffer_frames == 15
    assert TrackerOptions.from_seconds(buffer_s=0.01, fps=5.0).buffer_frames == 1
    opts = TrackerOptions.from_seconds(buffer_s=1.0, fps=10.0, iou="mask", high_thresh=0.6)
    assert (opts.buffer_frames, opts.iou, opts.high_thresh) == (10, "mask", 0.6)


def test_options_defaults() -> None:
    o = TrackerOptions()
    assert (o.high_thresh, o.low_thresh, o.new_track_thresh, o.match_thresh, o.iou) == (
        0.5, 0.1, 0.6, 0.8, "box",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 0.0}, "tracker needs a positive frame rate, got 0.0"),
        ({"fps": float("nan")}, "tracker needs a positive frame rate, got nan"),
        ({"buffer_s": -1.0}, "tracker buffer must be >= 0 seconds, got -1.0"),
        ({"iou": "poly"}, "tracker iou must be 'box' or 'mask', got 'poly'"),
        (
            {"low_thresh": 0.7},
            "tracker thresholds need 0 <= low_thresh <= high_thresh, got 0.7 and 0.5",
        ),
    ],
)
def test_bad_options_are_one_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as err:
        TrackerOptions.from_seconds(**kwargs)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_mask_iou_without_masks_is_an_error() -> None:
    tracker = Tracker(TrackerOptions(iou="mask"))
    with pytest.raises(ValueError, match="^tracker iou='mask' needs the detections' masks$"):
        _frame(tracker, [_box(30, 30)])


def test_torch_inputs_give_the_same_ids_as_numpy() -> None:
    tracker = Tracker(TrackerOptions())
    for f in range(3):
        boxes = torch.tensor([_box(20 + 3 * f, 30), _box(90, 90)])
        ids = tracker.update(boxes, torch.tensor([0.9, 0.7]), torch.tensor([2, 2]))
        assert ids.tolist() == [1, 2]


def test_mismatched_inputs_are_one_clear_error() -> None:
    tracker = Tracker(TrackerOptions())
    with pytest.raises(ValueError) as err:
        tracker.update(np.zeros((2, 4)), np.zeros(3), np.zeros(2))
    assert str(err.value) == "tracker got 2 boxes, 3 scores and 2 labels"
    with pytest.raises(ValueError) as err:
        tracker.update(np.zeros((2, 4)), np.zeros(2), np.zeros(2), np.zeros((1, 8, 8)))
    assert str(err.value) == "tracker masks must be [2, h, w], got [1, 8, 8]"
    assert tracker.frame_count == 0 and tracker.tracks == []


def test_a_class_flip_keeps_the_track_by_default() -> None:
    """A detector calls a partly hidden object by another class for a frame: with the
    default class_cost (0.1) the track follows it and keeps its first class."""
    tracker = Tracker(TrackerOptions())
    assert _frame(tracker, [_box(30, 30)], labels=[0]) == [1]
    assert _frame(tracker, [_box(31, 30)], labels=[2]) == [1]
    assert _frame(tracker, [_box(32, 30)], labels=[0]) == [1]
    assert tracker.tracks[0].label == 0


def test_own_class_wins_over_a_slightly_better_overlap() -> None:
    """Box IoU 0.8 of the own class (cost 0.2) beats IoU 0.85 of another (0.15 + 0.1)."""
    tracker = Tracker(TrackerOptions())
    assert _frame(tracker, [[0, 0, 100, 100]], labels=[0]) == [1]
    # [0, 0, 100, 85] has IoU 0.85 with the track, [0, 0, 100, 80] IoU 0.80.
    ids = _frame(tracker, [[0, 0, 100, 85], [0, 0, 100, 80]], labels=[1, 0], scores=[0.9, 0.9])
    assert ids[1] == 1 and ids[0] != 1


def test_class_cost_must_be_a_number_at_least_zero() -> None:
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="class_cost"):
            TrackerOptions(class_cost=bad)
