"""The load benchmark's parsing and table (the runs themselves are benchmarks, not tests)."""

from __future__ import annotations

import sys

import cv2
from conftest import REPO

if str(REPO / "tools") not in sys.path:  # the tools are scripts: `python tools/X.py`
    sys.path.insert(0, str(REPO / "tools"))

from load_bench import Run, parse_fps, table, write_video  # noqa: E402


def test_parse_fps_of_both_modes():
    video = "in.mp4: processed 150 frames, 750 detections, 27.0 FPS\nstages per frame: ..."
    bench = "stage  ms/frame\ntotal  22.63\nFPS                  44.19\n"
    assert parse_fps("video", video) == 27.0
    assert parse_fps("benchmark", bench) == 44.19


def test_table_gives_medians_and_the_ratio():
    runs = [
        Run("a", "video", False, 20.0, 10.0, 0.1),
        Run("a", "video", False, 30.0, 8.0, 0.1),
        Run("a", "video", False, 22.0, 9.0, 0.1),
        Run("a", "video", True, 11.0, 20.0, 1.0),
    ]
    assert table(runs).splitlines()[-1] == "| a | video | 22.0 | 11.0 | 50% | 9.0 / 20.0 |"


def test_generated_video_is_640x480(tmp_path):
    path = str(tmp_path / "v.mp4")
    write_video(path, 5)
    capture = cv2.VideoCapture(path)
    sizes = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert sizes == (640, 480) and capture.get(cv2.CAP_PROP_FRAME_COUNT) == 5
    capture.release()
