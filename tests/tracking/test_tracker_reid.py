"""The tracker's colour cue on hand-made frames: lost tracks re-identified by colour near
where they were, other-looking objects kept apart, duplicates never starting tracks, and
ids never reused."""

from __future__ import annotations

import numpy as np
import pytest

from yolact.tracking import Tracker, TrackerOptions

H, W = 100, 200
GREY, RED, GREEN, BLUE = (128, 128, 128), (0, 0, 255), (0, 255, 0), (255, 0, 0)


def _box(cx: float, cy: float = 50.0, size: float = 20.0) -> list[float]:
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def _frame(objects: list[tuple[list[float], tuple[int, int, int]]]) -> np.ndarray:
    """A grey BGR frame with each box filled with its colour, in order."""
    image = np.full((H, W, 3), GREY, np.uint8)
    for (x1, y1, x2, y2), colour in objects:
        image[int(y1) : int(y2), int(x1) : int(x2)] = colour
    return image


def _step(
    tracker: Tracker,
    objects: list[tuple[list[float], tuple[int, int, int], float]],
    labels: list[int] | None = None,
) -> list[int]:
    """Track one frame of ``objects`` (box, colour, score) drawn in order; their ids."""
    n = len(objects)
    ids = tracker.update(
        np.array([b for b, _, _ in objects], np.float32).reshape(-1, 4),
        np.array([s for _, _, s in objects], np.float32),
        np.array(labels if labels is not None else [0] * n, np.int64),
        image_size=(H, W),
        image=_frame([(b, c) for b, c, _ in objects]),
    )
    return [int(i) for i in ids]


def _hidden_then_back(options: TrackerOptions, colour: tuple[int, int, int]) -> list[list[int]]:
    """A red object moving right 4 px a frame (x = 40..52), seen 4 frames, then hidden
    behind a static blue one (x = 80, twice its size) for 6 frames; it stopped while
    hidden and comes back at x = 60 in ``colour`` with score 0.3: 28 px behind its
    predicted box, which it no longer overlaps."""
    tracker = Tracker(options)
    occluder = (_box(80, size=40), BLUE, 0.9)
    out = []
    for f in range(12):
        if f < 4:
            out.append(_step(tracker, [(_box(40 + 4 * f), RED, 0.9), occluder]))
        elif f < 10:
            out.append(_step(tracker, [occluder]))
        else:
            out.append(_step(tracker, [occluder, (_box(60), colour, 0.3)]))
    return out


def test_a_hidden_object_back_with_a_low_score_keeps_its_id() -> None:
    got = _hidden_then_back(TrackerOptions(), RED)
    assert got == [[1, 2]] * 4 + [[2]] * 6 + [[2, 1]] * 2


def test_without_the_colour_cue_it_stays_untracked() -> None:
    got = _hidden_then_back(TrackerOptions(reid=False), RED)
    assert got == [[1, 2]] * 4 + [[2]] * 6 + [[2, -1]] * 2


def test_an_other_coloured_object_there_is_not_taken_for_it() -> None:
    got = _hidden_then_back(TrackerOptions(), GREEN)
    assert got == [[1, 2]] * 4 + [[2]] * 6 + [[2, -1]] * 2


def _gone_then_other(options: TrackerOptions, colour: tuple[int, int, int]) -> list[list[int]]:
    """A red object moving right 4 px a frame, seen 4 frames, gone 3, then an object of
    ``colour`` (score 0.9) exactly where the red one's track predicts it."""
    tracker = Tracker(options)
    out = []
    for f in range(9):
        if f < 4:
            out.append(_step(tracker, [(_box(40 + 4 * f), RED, 0.9)]))
        elif f < 7:
            out.append(_step(tracker, []))
        else:
            out.append(_step(tracker, [(_box(40 + 4 * f), colour, 0.9)]))
    return out


def test_a_different_looking_object_where_a_lost_track_was_gets_a_new_id() -> None:
    assert _gone_then_other(TrackerOptions(), GREEN) == [[1]] * 4 + [[]] * 3 + [[-1], [2]]


def test_the_same_looking_object_there_continues_the_track() -> None:
    assert _gone_then_other(TrackerOptions(), RED) == [[1]] * 4 + [[]] * 3 + [[1], [1]]


def test_without_the_colour_cue_overlap_alone_decides() -> None:
    got = _gone_then_other(TrackerOptions(reid=False), GREEN)
    assert got == [[1]] * 4 + [[]] * 3 + [[1], [1]]


def test_without_frames_the_colour_cue_is_off() -> None:
    tracker = Tracker(TrackerOptions())
    for f in range(4):
        ids = tracker.update(np.array([_box(40 + 4 * f)]), np.array([0.9]), np.array([0]))
        assert ids.tolist() == [1]
    assert all(t.colour is None for t in tracker.tracks)


@pytest.mark.parametrize(("duplicate_iou", "second"), [(0.6, [-1] * 5), (1.0, [-1, 2, 2, 2, 2])])
def test_a_second_detection_of_a_tracked_object_starts_no_track(
    duplicate_iou: float, second: list[int]
) -> None:
    """YOLACT keeps overlapping detections of other classes: one on the red object,
    shifted 2 px (box IoU 0.82), from frame 1 on."""
    tracker = Tracker(TrackerOptions(duplicate_iou=duplicate_iou))
    assert _step(tracker, [(_box(40), RED, 0.9)]) == [1]
    got = []
    for f in range(1, 6):
        x = 40 + 2 * f
        objects = [(_box(x), RED, 0.95), (_box(x + 2), RED, 0.8)]
        first, dup = _step(tracker, objects, labels=[0, 1])
        assert first == 1
        got.append(dup)
    assert got == second


def test_ids_are_never_reused() -> None:
    """Objects of random colours come and go at random places for 200 frames."""
    rng = np.random.default_rng(5)
    tracker = Tracker(TrackerOptions(buffer_frames=3, min_hits=1))
    alive: dict[int, tuple[float, tuple[int, int, int]]] = {}
    retired: set[int] = set()
    next_object = 0
    for _ in range(200):
        if rng.random() < 0.3 and len(alive) < 4:
            colour = (int(rng.integers(256)), int(rng.integers(256)), int(rng.integers(256)))
            alive[next_object] = (float(rng.uniform(20, 180)), colour)
            next_object += 1
        if alive and rng.random() < 0.15:
            del alive[int(rng.choice(list(alive)))]
        objects = [(_box(x, 50.0), c, float(rng.uniform(0.2, 1.0))) for x, c in alive.values()]
        ids = [i for i in _step(tracker, objects) if i >= 0]
        assert len(ids) == len(set(ids))
        assert not retired & set(ids)
        before = {t.track_id for t in tracker.tracks if t.track_id >= 0}
        retired |= set(range(1, tracker._next_id + 1)) - before
    assert tracker._next_id > 10


@pytest.mark.parametrize("field", ["reid_colour", "reid_radius", "colour_gate"])
def test_negative_colour_settings_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TrackerOptions(**{field: -1.0})  # type: ignore[arg-type]
