"""Synthetic video clips with ground-truth identities (issue 18, item 2)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolact.data.clips import (
    Clip,
    ClipOptions,
    Track,
    make_clip,
    read_mots,
    track_shapes,
    write_clip,
)
from yolact.data.scenes import Shape, shape_mask, tight_boxes

SIZE = (96, 128)
OPTS = ClipOptions(
    frames=20, size=SIZE, fps=12.0, objects=6, seed=5, late_entry=0.5, early_exit=0.5
)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return make_clip(OPTS)


def test_deterministic_for_a_seed(clip: Clip) -> None:
    again = make_clip(OPTS)
    assert all(np.array_equal(a, b) for a, b in zip(clip.frames, again.frames))
    for a, b in zip(clip.truth, again.truth):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.masks, b.masks)
    other = make_clip(ClipOptions(**{**asdict(OPTS), "seed": 6}))
    assert not all(np.array_equal(a, b) for a, b in zip(clip.frames, other.frames))


def test_truth_shapes_and_boxes(clip: Clip) -> None:
    assert len(clip.frames) == len(clip.truth) == 20 and clip.fps == 12.0
    for frame, truth in zip(clip.frames, clip.truth):
        assert frame.shape == (*SIZE, 3) and frame.dtype == np.uint8
        n = len(truth.ids)
        assert truth.masks.shape == (n, *SIZE) and truth.masks.dtype == bool
        assert truth.labels.shape == (n,) and truth.boxes.shape == (n, 4)
        assert np.array_equal(truth.boxes, tight_boxes(truth.masks))
        assert (truth.masks.sum(axis=0) <= 1).all()  # disjoint
        assert (truth.masks.sum(axis=(1, 2)) >= OPTS.min_pixels).all()


def test_ids_stable_and_never_reused(clip: Clip) -> None:
    label_of: dict[int, int] = {}
    frames_of: dict[int, list[int]] = {}
    for f, truth in enumerate(clip.truth):
        assert len(set(truth.ids.tolist())) == len(truth.ids)
        for i, label in zip(truth.ids.tolist(), truth.labels.tolist()):
            assert label_of.setdefault(i, label) == label  # one object per id
            frames_of.setdefault(i, []).append(f)
    by_id = {t.object_id: t for t in clip.tracks}
    assert set(frames_of) <= set(by_id)
    assert len(by_id) == len(clip.tracks) == 6
    for i, frames in frames_of.items():
        assert all(by_id[i].start <= f < by_id[i].end for f in frames)


def test_late_entry_and_early_exit_only_in_range(clip: Clip) -> None:
    assert any(t.start > 0 for t in clip.tracks)
    assert any(t.end < 20 for t in clip.tracks)
    for t in clip.tracks:
        for f in range(20):
            present = t.object_id in clip.shapes[f]
            assert present == (t.start <= f < t.end)
            if not present:
                assert t.object_id not in clip.truth[f].ids


def test_speeds_and_sizes_vary(clip: Clip) -> None:
    speeds = {round(float(np.hypot(*t.velocity)), 6) for t in clip.tracks}
    radii = {round(t.shape.radius, 6) for t in clip.tracks}
    assert len(speeds) == 6 and len(radii) == 6
    side = min(SIZE)
    lo, hi = OPTS.speed_range
    for s in speeds:
        assert lo * side / OPTS.fps <= s <= hi * side / OPTS.fps


def test_bounce_keeps_objects_inside() -> None:
    H, W = SIZE
    fast = Track(1, Shape(0, (64.0, 48.0), 10.0), (23.0, -17.0), 0, 200)
    shapes = track_shapes(fast, SIZE, 200)
    xs = [s.center[0] for s in shapes if s is not None]
    ys = [s.center[1] for s in shapes if s is not None]
    assert min(xs) >= 10 and max(xs) <= W - 10 and min(ys) >= 10 and max(ys) <= H - 10
    vx = np.sign(np.diff(xs))
    assert (vx > 0).any() and (vx < 0).any()  # it turned around
    # the full shape stays in the frame: its mask area never shrinks at an edge
    area = shape_mask(shapes[0], SIZE).sum()  # type: ignore[arg-type]
    for s in shapes[:40]:
        assert abs(int(shape_mask(s, SIZE).sum()) - int(area)) <= 0.05 * area  # type: ignore[arg-type]
    # random clips too
    for opts in (OPTS, ClipOptions(frames=40, objects=5, speed_range=(2.0, 3.0), seed=1)):
        c = make_clip(opts)
        h, w = opts.size
        for shapes_f in c.shapes:
            for s in shapes_f.values():
                (x, y), r = s.center, s.radius
                assert r <= x <= w - r and r <= y <= h - r


def test_visible_mask_is_shape_minus_shapes_drawn_over() -> None:
    low = Shape(1, (50.0, 48.0), 24.0, 0.3, (0, 0, 255))  # square
    high = Shape(0, (74.0, 48.0), 20.0, 0.0, (255, 0, 0))  # circle, drawn on top
    tracks = [Track(7, low, (0.0, 0.0), 0, 3), Track(3, high, (0.0, 0.0), 0, 3)]
    c = make_clip(ClipOptions(frames=3, size=SIZE, seed=0), tracks)
    truth = c.truth[0]
    assert truth.ids.tolist() == [7, 3] and truth.labels.tolist() == [1, 0]
    a, b = shape_mask(low, SIZE), shape_mask(high, SIZE)
    assert (a & b).sum() > 100  # they overlap
    assert np.array_equal(truth.masks[0], a & ~b)
    assert np.array_equal(truth.masks[1], b)
    assert np.array_equal(c.frames[0][b][:, 0] > 150, np.ones(b.sum(), bool))  # blue on top


def test_crossing_objects_swap_depth_only_by_draw_order() -> None:
    left = Shape(0, (20.0, 48.0), 12.0)
    right = Shape(2, (108.0, 48.0), 12.0)
    tracks = [Track(1, left, (8.0, 0.0), 0, 12), Track(2, right, (-8.0, 0.0), 0, 12)]
    c = make_clip(ClipOptions(frames=12, size=SIZE, seed=0), tracks)
    for f in range(12):
        a = shape_mask(c.shapes[f][1], SIZE)
        b = shape_mask(c.shapes[f][2], SIZE)
        assert np.array_equal(c.truth[f].masks[-1], b)
        assert np.array_equal(c.truth[f].masks[0], a & ~b)
    assert any((shape_mask(s[1], SIZE) & shape_mask(s[2], SIZE)).any() for s in c.shapes)


def test_fully_occluded_object_is_absent() -> None:
    small = Shape(0, (60.0, 48.0), 8.0)
    big = Shape(1, (60.0, 48.0), 30.0)
    # the small one is hidden under the big one in frames 0-1, then moves out
    tracks = [Track(1, small, (0.0, 0.0), 0, 2), Track(2, big, (0.0, 0.0), 0, 4)]
    tracks.append(Track(3, Shape(0, (15.0, 15.0), 8.0), (0.0, 0.0), 2, 4))
    c = make_clip(ClipOptions(frames=4, size=SIZE, seed=0), tracks)
    assert [t.ids.tolist() for t in c.truth] == [[2], [2], [2, 3], [2, 3]]
    assert 1 in c.shapes[0]  # drawn, but hidden


def test_write_and_read_mots_round_trip(clip: Clip, tmp_path: Path) -> None:
    paths = write_clip(clip, str(tmp_path / "out"))
    assert sorted(Path(p).name for p in paths.values()) == ["clip.avi", "clip.json", "gt.txt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "clip.avi",
        "clip.json",
        "gt.txt",
    ]
    back = read_mots(paths["gt"], frames=20)
    assert len(back) == 20
    for a, b in zip(clip.truth, back):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.boxes, b.boxes)
        assert b.masks.dtype == bool and np.array_equal(a.masks, b.masks)
    lines = Path(paths["gt"]).read_text().splitlines()
    assert len(lines) == sum(len(t.ids) for t in clip.truth)
    first = lines[0].split(" ")
    assert len(first) == 6 and first[0] == "0" and first[3:5] == ["96", "128"]
    assert int(first[2]) == clip.truth[0].labels[0] + 1
    info = json.loads(Path(paths["info"]).read_text())
    assert info["fps"] == 12.0 and info["options"]["seed"] == 5
    assert info["options"]["size"] == [96, 128]


def test_video_frame_count_and_fps(clip: Clip, tmp_path: Path) -> None:
    paths = write_clip(clip, str(tmp_path))
    cap = cv2.VideoCapture(paths["video"])
    try:
        assert cap.isOpened()
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (*SIZE, 3)
            # MJPG is lossy: frames are close to the drawn ones
            assert np.abs(frame.astype(int) - clip.frames[count].astype(int)).mean() < 12
            count += 1
    finally:
        cap.release()
    assert count == 20


def test_read_mots_empty_frames_and_bad_line(tmp_path: Path) -> None:
    c = make_clip(ClipOptions(frames=5, objects=0, seed=0))
    paths = write_clip(c, str(tmp_path))
    assert Path(paths["gt"]).read_text() == ""
    assert [len(t.ids) for t in read_mots(paths["gt"], frames=5)] == [0] * 5
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1 1 96 128\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: expected 6 fields, got 5"):
        read_mots(str(bad))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"frames": 0}, "frames must be >= 1, got 0"),
        ({"fps": 0.0}, "fps must be > 0, got 0.0"),
        ({"radius_range": (0.1, 0.6)}, "radius_range must satisfy 0 < low <= high <= 0.5"),
        ({"late_entry": 1.5}, "late_entry is a probability in [0, 1], got 1.5"),
    ],
)
def test_bad_options_raise_one_line(change: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        make_clip(ClipOptions(**{**asdict(OPTS), **change}))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_duplicate_track_ids_rejected() -> None:
    s = Shape(0, (40.0, 40.0), 8.0)
    with pytest.raises(ValueError, match="track object ids must be unique"):
        make_clip(ClipOptions(frames=2), [Track(1, s, (0, 0), 0, 2), Track(1, s, (0, 0), 0, 2)])
