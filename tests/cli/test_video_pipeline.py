"""eval.py --video with its stages overlapped: the same drawings as one frame at a time,
in order, every frame; an error in a stage ends the run in one line, without a hang."""

from __future__ import annotations

import re
import threading

import cv2
import numpy as np
import pytest
from conftest import run_main

import yolact.cli.eval_cli as cli
from yolact.cli.eval_args import parse_args
from yolact.io.images import to_bgr8
from yolact.models.yolact.predictor import YolactPredictor


def moving_video(path, n: int, size=(96, 72)) -> None:
    """Frames with a square that moves, so that every frame differs."""
    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 12.0, (w, h))
    for i in range(n):
        frame = np.full((h, w, 3), 40, np.uint8)
        cv2.rectangle(frame, (4 + 5 * i, 10), (34 + 5 * i, 50), (30, 200, 90), -1)
        cv2.circle(frame, (70, 40 + i), 12, (200, 60, 160), -1)
        out.write(frame)
    out.release()


class RecordingWriter:
    """Stands in for VideoWriter: keeps copies of the frames written; may fail on one."""

    made: list[RecordingWriter] = []
    fail_at: int | None = None

    def __init__(self, path, fps, size) -> None:
        self.frames: list[np.ndarray] = []
        self.closed = False
        self.frames_written = 0
        RecordingWriter.made.append(self)

    def write(self, frame: np.ndarray) -> None:
        if RecordingWriter.fail_at is not None and len(self.frames) == RecordingWriter.fail_at:
            raise RuntimeError("encoder gave up\nlibav details")
        self.frames.append(frame.copy())
        self.frames_written += 1

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def recording(monkeypatch):
    RecordingWriter.made, RecordingWriter.fail_at = [], None
    monkeypatch.setattr(cli, "VideoWriter", RecordingWriter)
    return RecordingWriter


@pytest.mark.parametrize("multiframe", [1, 3])
def test_same_drawings_in_order_as_one_frame_at_a_time(tmp_path, capsys, tiny_ckpt, recording,
                                                       multiframe):  # fmt: skip
    src = tmp_path / "in.avi"
    moving_video(src, 8)
    code, out, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--video={src}:{tmp_path}/o.avi",
        f"--video_multiframe={multiframe}",
    )  # fmt: skip
    assert code == 0, err
    assert "processed 8 frames" in out
    drawn = recording.made[0].frames
    assert len(drawn) == 8 and recording.made[0].closed

    predictor = YolactPredictor.from_checkpoint(tiny_ckpt, device="cpu")
    args = parse_args([])
    capture = cv2.VideoCapture(str(src))
    inputs, expected = [], []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        inputs.append(to_bgr8(frame))
        expected.append(cli._draw(inputs[-1], predictor(inputs[-1]), args))
    capture.release()
    assert len(expected) == 8
    assert all(not np.array_equal(a, b) for a, b in zip(inputs, expected))  # something drawn
    for i, (got, want) in enumerate(zip(drawn, expected)):
        assert np.array_equal(got, want), f"frame {i} differs"
    assert any(not np.array_equal(a, b) for a, b in zip(drawn, drawn[1:]))  # frames differ


def test_timings_of_every_stage_are_printed(tmp_path, capsys, tiny_ckpt, recording):
    src = tmp_path / "in.avi"
    moving_video(src, 5)
    code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={src}:o.avi")
    assert code == 0, err
    pattern = (
        r"stages per frame: read \d+\.\d ms, network \d+\.\d ms, post \d+\.\d ms, "
        r"draw\+write \d+\.\d ms; \d+\.\d FPS overall"
    )
    assert re.search(pattern, out), out


def test_network_and_drawing_overlap(tmp_path, capsys, tiny_ckpt, recording, monkeypatch):
    """The network of one frame runs while the previous frame is drawn and written: the
    post-processing of frame i waits until the network of frame i+1 has begun, which a
    run one stage after the other would never do (60 s: only a hang fails)."""
    started = [threading.Event() for _ in range(7)]
    overlapped: list[bool] = []
    real_network, real_post = YolactPredictor.run_network, YolactPredictor.run_post

    def network(self, batch):
        started[sum(e.is_set() for e in started)].set()
        return real_network(self, batch)

    def post(self, raw, sizes):
        i = len(overlapped)
        if i < 5 and all(overlapped):
            overlapped.append(started[i + 1].wait(60))
        else:
            overlapped.append(True)
        return real_post(self, raw, sizes)

    monkeypatch.setattr(YolactPredictor, "run_network", network)
    monkeypatch.setattr(YolactPredictor, "run_post", post)
    src = tmp_path / "in.avi"
    moving_video(src, 6)
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={src}:o.avi")
    assert code == 0, err
    assert sum(e.is_set() for e in started) == len(overlapped) == 6
    assert all(overlapped)


def stage_threads_ended(timeout_s: float = 60.0) -> list[str]:
    """Waits for the stage threads (``yolact-*``) to end; the names of those still
    running after ``timeout_s`` (only a hang leaves any)."""
    for thread in threading.enumerate():
        if thread.name.startswith("yolact-"):
            thread.join(timeout_s)
    return [t.name for t in threading.enumerate() if t.name.startswith("yolact-")]


def test_error_in_the_writing_thread_ends_the_run_in_one_line(tmp_path, capsys, tiny_ckpt,
                                                               recording):  # fmt: skip
    src = tmp_path / "in.avi"
    moving_video(src, 60, size=(64, 48))
    recording.fail_at = 3
    calls = []
    real = YolactPredictor.run_network

    def counting(self, batch):
        calls.append(1)
        return real(self, batch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(YolactPredictor, "run_network", counting)
        code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={src}:o.avi")
    assert code == 1
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert errors == ["error: drawing and writing failed: encoder gave up"], err
    assert "Traceback" not in err
    assert len(calls) < 60  # reading and the network stopped soon after
    assert recording.made[0].closed and len(recording.made[0].frames) == 3
    assert stage_threads_ended() == []


def test_error_in_the_network_keeps_what_was_drawn(tmp_path, capsys, tiny_ckpt, recording):
    """The network fails on the 4th frame: the 3 frames before it are written, the stage
    threads end, and the error is the run's one line."""
    src = tmp_path / "in.avi"
    moving_video(src, 20, size=(64, 48))
    calls = []
    real = YolactPredictor.run_network

    def failing(self, batch):
        calls.append(1)
        if len(calls) == 4:
            raise cli.InputError("network refused the frame")
        return real(self, batch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(YolactPredictor, "run_network", failing)
        code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={src}:o.avi")
    assert code == 1 and "error: network refused the frame" in err and "Traceback" not in err
    assert len(recording.made[0].frames) == 3 and recording.made[0].closed
    assert stage_threads_ended() == []
