"""The tracking benchmark (issue 18, item 2): box against mask association."""

from __future__ import annotations

import os

import numpy as np
import pytest

from yolact.bench.tracking import bench_clips, format_report, main, track_benchmark
from yolact.data.clips import ClipOptions, Track, make_clip
from yolact.data.scenes import Shape

WEIGHTS = os.path.join(
    os.path.dirname(__file__), "..", "..", "weights", "yolact_tiny_synthetic.pth"
)


@pytest.fixture(scope="module")
def predictor():  # noqa: ANN201
    from yolact import Predictor

    return Predictor.from_checkpoint(WEIGHTS, device="cpu")


def _separate_clip(frames: int) -> object:
    """Two objects that move side by side in their own halves and never meet."""
    options = ClipOptions(frames=frames, size=(160, 160), fps=15.0, seed=3)
    tracks = [
        Track(1, Shape(0, (30.0, 40.0), 18.0, colour=(40, 200, 40)), (2.0, 0.0), 0, frames),
        Track(2, Shape(2, (30.0, 120.0), 18.0, colour=(200, 40, 200)), (2.0, 0.0), 0, frames),
    ]
    return make_clip(options, tracks)


def test_model_detects_clip_objects(predictor) -> None:  # noqa: ANN001
    clips = bench_clips(1, 12, seed=0)
    report = track_benchmark(predictor, clips, synthetic_detections=0)
    assert report.recall > 0.3


def test_report_has_both_modes_on_the_same_detections(predictor) -> None:  # noqa: ANN001
    clips = bench_clips(2, 12, seed=0)
    report = track_benchmark(predictor, clips, synthetic_frames=5)
    assert [m.mode for m in report.modes] == ["box", "mask"]
    assert report.frames == 24 and report.clips == 2
    box, mask = report.modes
    assert box.detections == mask.detections > 0
    for m in report.modes:
        assert 0.0 <= m.hota <= 1.0
        assert 0.0 <= m.idf1 <= 1.0
        assert m.mota <= 1.0
        assert m.id_switches >= 0
        assert m.tracker_ms >= 0.0
    assert 0.0 <= report.recall <= 1.0
    assert set(report.synthetic_ms) == {"box", "mask"}
    assert all(v > 0 for v in report.synthetic_ms.values())


def test_oracle_detector_tracks_separate_objects_perfectly() -> None:
    clip = _separate_clip(24)
    assert all(len(t.ids) == 2 for t in clip.truth)
    report = track_benchmark(None, [clip], oracle=True, synthetic_detections=0)
    assert report.recall == 1.0
    assert report.synthetic_ms == {}
    for m in report.modes:
        assert m.hota >= 0.95, m
        assert m.idf1 >= 0.95, m
        assert m.id_switches == 0, m
        assert m.detections == 48


def test_format_report_rows() -> None:
    report = track_benchmark(None, [_separate_clip(6)], oracle=True, synthetic_detections=0)
    lines = format_report(report).splitlines()
    assert lines[1].split() == ["mode", "HOTA", "IDF1", "MOTA", "IDsw", "ms/frame"]
    assert lines[2].split()[0] == "box" and lines[3].split()[0] == "mask"
    assert lines[4].startswith("detector recall @ IoU 0.5 (per frame): 1.000")


def test_cli_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            f"--trained_model={WEIGHTS}",
            "--clips=1",
            "--frames=12",
            "--seed=1",
            "--synthetic_frames=3",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[0] == "tracking benchmark: 1 clips, 12 frames"
    assert out[1].split() == ["mode", "HOTA", "IDF1", "MOTA", "IDsw", "ms/frame"]
    for line, mode in zip(out[2:4], ("box", "mask")):
        cells = line.split()
        assert cells[0] == mode and len(cells) == 6
        assert 0.0 <= float(cells[1]) <= 1.0 and 0.0 <= float(cells[2]) <= 1.0
    assert out[4].startswith("detector recall @ IoU 0.5 (per frame): ")
    assert out[5].startswith("tracker cost, 50 detections/frame, 1 thread, box: ")
    assert out[6].startswith("tracker cost, 50 detections/frame, 1 thread, mask: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clips=0"], "error: --clips and --frames must be >= 1"),
        (["--trained_model=/nonexistent/w.pth"], "error: checkpoint not found: /nonexistent/w.pth"),
        (["--frames=x"], "error: argument --frames: invalid int value: 'x'"),
    ],
)
def test_cli_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    assert captured.err == message + "\n"


def test_mask_masks_are_prototype_sized() -> None:
    from yolact.bench.tracking import _downsample

    masks = np.zeros((1, 160, 160), bool)
    masks[0, 40:80, 40:80] = True
    small = _downsample(masks, 4)
    assert small.shape == (1, 40, 40)
    assert small[0].sum() == 100 and small[0, 10:20, 10:20].all()
