"""An existing ``--video`` OUT keeps its bytes until the new video is finished, and for
good when no frame could be processed (written beside it, then moved into place)."""

from __future__ import annotations

import os

import cv2
import numpy as np
from conftest import REPO

import yolact.cli.eval_cli as cli
from yolact.io.video import VideoWriter
from yolact.models.yolact.predictor import YolactPredictor

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
OLD = b"an earlier video the user keeps"


def write_video(path, frames: int = 3) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (96, 72))
    for _ in range(frames):
        writer.write(np.full((72, 96, 3), 90, np.uint8))
    writer.release()


def test_writer_keeps_the_old_file_until_closed(tmp_path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD)
    writer = VideoWriter(str(out), 10.0, (96, 72))
    writer.write(np.zeros((72, 96, 3), np.uint8))
    assert out.read_bytes() == OLD  # the frames go beside it
    writer.close()
    assert os.listdir(tmp_path) == ["out.mp4"]
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 1
    cap.release()
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)


def test_writer_without_frames_leaves_the_old_file(tmp_path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(OLD)
    VideoWriter(str(out), 10.0, (96, 72)).close()
    assert out.read_bytes() == OLD
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_network_failing_at_the_first_frame_leaves_the_old_video(tmp_path, capsys, monkeypatch):
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_video(src)
    out.write_bytes(OLD)

    def failing(self, batch):
        raise cli.InputError("network refused the frame")

    monkeypatch.setattr(YolactPredictor, "run_network", failing)
    code = cli.main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}",
                     f"--video={src}:{out}"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == ["error: network refused the frame"]
    assert out.read_bytes() == OLD
    assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]
