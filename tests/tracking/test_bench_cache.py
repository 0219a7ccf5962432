"""The tracking benchmark's detections cache and its errors per ground-truth object."""

from __future__ import annotations

import os

import numpy as np
import torch

from yolact.bench.tracking import FrameDetections, track_benchmark
from yolact.bench.tracking_clips import bench_clips
from yolact.bench.tracking_errors import error_breakdown
from yolact.core.structures import Detections
from yolact.data.clips import Clip, FrameTruth


class _TruthPredictor:
    """Returns each frame's ground truth as detections (score 0.9), counting frames."""

    def __init__(self, clips: list[Clip]) -> None:
        self.truth = {id(f): t for c in clips for f, t in zip(c.frames, c.truth)}
        self.frames = 0

    def __call__(self, frames: list[np.ndarray]) -> list[Detections]:
        out = []
        for f in frames:
            self.frames += 1
            t = self.truth[id(f)]
            n = len(t.ids)
            one = torch.ones(n)
            out.append(
                Detections(
                    boxes=torch.from_numpy(t.boxes.astype(np.float32)),
                    labels=torch.from_numpy(t.labels.astype(np.int64)),
                    scores=one * 0.9,
                    box_scores=one,
                    mask_scores=one,
                    masks=torch.from_numpy(t.masks),
                    image_size=f.shape[:2],
                    class_names=("a", "b", "c", "d", "e"),
                )  # fmt: skip
            )
        return out


def test_the_cache_skips_the_network_and_gives_the_same_scores(tmp_path) -> None:
    clips = bench_clips(2, 6, seed=3, size=(48, 48))
    predictor = _TruthPredictor(clips)
    kwargs = dict(synthetic_detections=0, detections_cache=str(tmp_path), model_digest="ab" * 32)
    first = track_benchmark(predictor, clips, **kwargs)  # type: ignore[arg-type]
    assert predictor.frames == 12 and len(os.listdir(tmp_path)) == 2
    second = track_benchmark(predictor, clips, **kwargs)  # type: ignore[arg-type]
    assert predictor.frames == 12
    assert [(m.hota, m.idf1, m.id_switches) for m in first.modes] == [
        (m.hota, m.idf1, m.id_switches) for m in second.modes
    ]
    assert first.recall == second.recall == 1.0
    other = dict(kwargs, model_digest="cd" * 32)  # another model misses the cache
    track_benchmark(predictor, clips, **other)  # type: ignore[arg-type]
    assert predictor.frames == 24


def test_an_unreadable_entry_is_computed_again(tmp_path) -> None:
    clips = bench_clips(1, 4, seed=3, size=(48, 48))
    predictor = _TruthPredictor(clips)
    kwargs = dict(synthetic_detections=0, detections_cache=str(tmp_path), model_digest="ab" * 32)
    track_benchmark(predictor, clips, **kwargs)  # type: ignore[arg-type]
    (entry,) = os.listdir(tmp_path)
    (tmp_path / entry).write_bytes(b"not an npz")
    report = track_benchmark(predictor, clips, **kwargs)  # type: ignore[arg-type]
    assert predictor.frames == 8 and report.recall == 1.0
    assert os.listdir(tmp_path) == [entry]


def _square(x: int) -> np.ndarray:
    m = np.zeros((20, 40), bool)
    m[5:15, x : x + 10] = True
    return m


def test_errors_per_object_on_a_hand_made_run() -> None:
    """One object over 6 frames: tracked as 1, as 1, missed, untracked, as 2, as 2;
    plus a tracked detection of nothing in frame 0."""
    masks = [_square(2 + 3 * f) for f in range(6)]
    truth = [FrameTruth(np.array([7]), np.array([0]), np.zeros((1, 4)), m[None]) for m in masks]
    ghost = _square(28)
    det_masks = [np.stack([masks[0], ghost])] + [m[None] for m in masks[1:]]
    det_masks[2] = np.zeros((0, 20, 40), bool)
    det_ids = [np.array([1, 5]), np.array([1]), np.zeros(0, np.int64), np.array([-1])]
    det_ids += [np.array([2]), np.array([2])]
    tracked = []
    for m, i in zip(det_masks, det_ids):
        keep = i >= 0
        tracked.append(
            FrameTruth(i[keep], np.zeros(keep.sum(), np.int64), np.zeros((keep.sum(), 4)), m[keep])
        )
    b = error_breakdown([truth], [tracked], [det_masks], [det_ids])
    assert (b.tracked, b.missed, b.birth, b.untracked, b.false) == (4, 1, 0, 1, 1)
    assert (b.after_gap, b.direct, b.to_new, b.gaps) == (1, 0, 1, [2])


def test_frame_detections_round_trip_through_the_cache_format(tmp_path) -> None:
    from yolact.bench.tracking_cache import _load, _save

    masks = np.zeros((2, 5, 7), bool)
    masks[0, 1:3, 2:6] = True
    masks[1, 4, 6] = True
    d = FrameDetections(
        boxes=np.arange(8, dtype=np.float32).reshape(2, 4),
        scores=np.array([0.5, 0.25], np.float32),
        labels=np.array([3, 1], np.int64),
        masks=masks,
    )
    empty = FrameDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                            np.zeros(0, np.int64), np.zeros((0, 5, 7), bool))  # fmt: skip
    path = str(tmp_path / "entry.npz")
    _save(path, [d, empty])
    back = _load(path, FrameDetections)
    assert back is not None and len(back) == 2
    for a, b in zip([d, empty], back):
        for field in ("boxes", "scores", "labels", "masks"):
            assert np.array_equal(getattr(a, field), getattr(b, field))
            assert getattr(a, field).dtype == getattr(b, field).dtype


def test_a_file_as_the_cache_folder_is_refused_in_one_line(tmp_path, capsys) -> None:
    from yolact.bench.tracking import main

    target = tmp_path / "cache"
    target.write_bytes(b"mine")
    assert main(["--oracle", "--clips=1", "--frames=2", f"--detections_cache={target}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a folder" in err and "Traceback" not in err
    assert target.read_bytes() == b"mine"
