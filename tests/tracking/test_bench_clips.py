"""The tracking benchmark's clips: demo-like and small objects, and the crossing subset."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from yolact.bench.tracking import main
from yolact.bench.tracking_clips import bench_clips, crossing_clips
from yolact.data.scenes import shape_mask


@pytest.mark.parametrize(
    ("style", "radii", "objects"),
    [("demo", (0.14, 0.3), {2, 3}), ("small", (0.08, 0.2), {3, 4, 5})],
)
def test_styles_draw_their_sizes_and_counts(style, radii, objects):
    clips = bench_clips(3, 4, seed=5, style=style)
    assert [c.fps for c in clips] == [10.0, 15.0, 25.0]
    assert {len(c.tracks) for c in clips} == objects
    for c in clips:
        for t in c.tracks:
            assert radii[0] * 160 - 1e-9 <= t.shape.radius <= radii[1] * 160 + 1e-9


def test_crossing_objects_meet_at_one_point_in_the_middle_frame():
    frames = 40
    for clip in crossing_clips(4, frames, seed=3):
        middle = frames // 2
        centres = [s.center for s in clip.shapes[middle].values()]
        assert len(centres) == len(clip.tracks) in (2, 3)
        for c in centres[1:]:
            assert math.dist(c, centres[0]) < 1e-6
        starts = {t.start for t in clip.tracks}
        assert len(starts) == 1 and starts.pop() <= middle - 6
        assert all(t.end == frames for t in clip.tracks)
        # At the meeting point all but the top object are hidden in part or whole.
        size = clip.options.size
        full = {i: int(shape_mask(s, size).sum()) for i, s in clip.shapes[middle].items()}
        truth = clip.truth[middle]
        visible = dict(zip(truth.ids.tolist(), truth.masks.sum(axis=(1, 2)).tolist()))
        hidden = [i for i in full if visible.get(i, 0) < 0.8 * full[i]]
        assert len(hidden) >= len(full) - 1
        H, W = clip.options.size
        for t in clip.tracks:  # every object starts inside the frame
            x, y = t.shape.center
            r = t.shape.radius
            assert r - 1e-6 <= x <= W - r + 1e-6 and r - 1e-6 <= y <= H - r + 1e-6


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="clip style must be one of demo, small, got 'big'"):
        bench_clips(1, 2, style="big")


def test_cli_names_the_clip_set(capsys):
    argv = ["--oracle", "--clips=1", "--frames=14", "--synthetic_frames=0", "--crossing"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "tracking benchmark: 1 clips, 14 frames"
    assert out[-1] == "clips: demo objects, crossing"
    assert main(["--oracle", "--clips=1", "--frames=5", "--synthetic_frames=0",
                 "--clip_style=small"]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[-1] == "clips: small objects"


def test_perfect_association_of_the_truth_scores_one():
    from yolact.bench.tracking import _oracle, perfect_association

    clips = bench_clips(2, 6, seed=1)
    dets = [_oracle(c) for c in clips]
    assert perfect_association(clips, dets) == (pytest.approx(1.0), pytest.approx(1.0))
    # Detections that miss every object (masks moved off them) are left untracked.
    moved = [[replace(d, masks=np.roll(d.masks, 80, axis=2)) for d in frames] for frames in dets]
    hota, idf1 = perfect_association(clips, moved)
    assert hota < 0.5 and idf1 < 0.5
