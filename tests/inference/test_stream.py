"""The streaming API: every kind of source gives what per-frame calls give, and every
thread ends on break, on close and on a signal."""

from __future__ import annotations

import os
import signal
import threading

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import SteppedCamera
from yolact import Predictor
from yolact.inference import StreamResult, stream
from yolact.inference.sources import Skipped
from yolact.io.images import InputError
from yolact.io.sources import VideoSource
from yolact.io.stop import StopSignals
from yolact.models.yolact.model import build_model
from yolact.models.yolact.predictor import YolactPredictor
from yolact.registry import get_config

JOIN_S = 60.0  # only a hang waits this long


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> YolactPredictor:
    """A random yolact_tiny: it finds many (meaningless) instances in any picture."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "yolact_tiny_1_10.pth"
    torch.save(build_model(get_config("yolact_tiny")).state_dict(), path)
    p = Predictor.from_checkpoint(str(path), device="cpu")
    assert isinstance(p, Predictor) and isinstance(p, YolactPredictor)
    return p


def scene(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(i)
    img = np.full((h, w, 3), 60, np.uint8)
    x = 4 + (3 * i) % 24
    cv2.rectangle(img, (x, 6), (x + 24, 30), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    cv2.circle(img, (44, 32), 10, tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    return img


def write_video(path, n: int) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
    for i in range(n):
        out.write(scene(i))
    out.release()


def assert_same_as_per_frame(predictor, results: list[StreamResult], images=None) -> None:
    """Each result equals ``predictor(image)``: boxes, labels, scores and masks."""
    assert results
    for k, r in enumerate(results):
        image = r.image if images is None else images[k]
        assert np.array_equal(r.image, image)
        want = predictor(image)
        got = r.detections
        assert len(got) == len(want) > 0
        assert torch.equal(got.boxes, want.boxes)
        assert torch.equal(got.labels, want.labels)
        assert torch.equal(got.scores, want.scores)
        assert torch.equal(got.masks, want.masks)


def new_threads_end(before: list[threading.Thread]) -> list[str]:
    """Waits for the threads started since ``before``; the names of those left."""
    for thread in threading.enumerate():
        if thread not in before:
            thread.join(JOIN_S)
    return [t.name for t in threading.enumerate() if t not in before]


def test_video_file_every_frame_in_order(predictor, tmp_path):
    src = tmp_path / "in.avi"
    write_video(src, 6)
    capture = cv2.VideoCapture(str(src))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    before = threading.enumerate()
    results = list(predictor.stream(str(src)))
    assert [r.frame_index for r in results] == list(range(6))
    assert {r.source for r in results} == {str(src)} and {r.source_index for r in results} == {0}
    assert_same_as_per_frame(predictor, results, frames)
    assert new_threads_end(before) == []


def test_folder_in_name_order_with_unreadable_image_skipped(predictor, tmp_path):
    for i in (0, 1, 3):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), scene(i))
    (tmp_path / "img2.png").write_bytes(b"not a png")
    skipped: list[tuple[str, str]] = []
    results = list(predictor.stream(tmp_path, on_skip=lambda p, e: skipped.append((p, str(e)))))
    assert [r.frame_index for r in results] == [0, 1, 3]  # places in the listing
    assert [r.source for r in results] == [str(tmp_path / f"img{i}.png") for i in (0, 1, 3)]
    assert [p for p, _ in skipped] == [str(tmp_path / "img2.png")]
    assert_same_as_per_frame(predictor, results, [scene(i) for i in (0, 1, 3)])


def test_iterable_of_frames_batched_and_several_sources(predictor, tmp_path):
    frames = [scene(i) for i in range(5)]
    results = list(predictor.stream(f for f in frames))
    assert [r.frame_index for r in results] == list(range(5))
    assert_same_as_per_frame(predictor, results, frames)

    cv2.imwrite(str(tmp_path / "a.png"), scene(7))
    both = list(predictor.stream([str(tmp_path / "a.png"), frames[:2]]))
    by_source = {i: [(r.frame_index, r.image) for r in both if r.source_index == i] for i in (0, 1)}
    assert [i for i, _ in by_source[0]] == [0] and [i for i, _ in by_source[1]] == [0, 1]
    assert np.array_equal(by_source[0][0][1], scene(7))
    assert_same_as_per_frame(predictor, both)


def test_bad_frame_fails_after_the_frames_before_it(predictor):
    frames = [scene(0), scene(1), np.zeros((4, 4, 5), np.uint8)]
    got = []
    with pytest.raises(InputError, match=r"frames\[2\] must have 1, 3 or 4 channels"):
        for r in predictor.stream(frames):
            got.append(r.frame_index)
    assert got == [0, 1]


def test_missing_source_fails_at_once_in_one_line(predictor, tmp_path):
    with pytest.raises(InputError, match="video file not found"):
        predictor.stream(str(tmp_path / "missing.mp4"))
    with pytest.raises(InputError, match="no images in"):
        predictor.stream(tmp_path)


def test_live_loopback_stream(predictor, mjpeg_server):
    server = mjpeg_server(5, make_frame=scene)
    before = threading.enumerate()
    s = predictor.stream(server.url)
    results = list(s)
    assert 1 <= len(results) <= 5 and s.ended_early
    indices = [r.frame_index for r in results]
    assert indices == sorted(set(indices)) and indices[-1] <= 4
    assert {r.source for r in results} == {server.url}
    assert_same_as_per_frame(predictor, results)
    assert new_threads_end(before) == []


def test_live_source_gives_the_newest_frame(predictor):
    """The camera gives 3 frames while the model handles one: each frame processed is
    the newest; the stale ones are dropped."""
    camera = SteppedCamera(13, scene)
    real_pre = YolactPredictor.run_pre
    lags = []

    class Slow:
        class_names = predictor.class_names

        def run_pre(self, images):
            for image in images:
                index = next(i for i in range(13) if np.array_equal(image, scene(i)))
                lags.append(camera.latest - index)
            camera.step(3)
            return real_pre(predictor, images)

        run_network = predictor.run_network
        run_post = predictor.run_post

    s = stream(Slow(), VideoSource(camera, "webcam", "webcam 0"))
    results = list(s)
    assert [r.frame_index for r in results] == [0, 3, 6, 9, 12]
    assert lags == [0] * 5 and s.dropped == 8
    assert_same_as_per_frame(predictor, results, [scene(i) for i in (0, 3, 6, 9, 12)])


@pytest.mark.parametrize("kind", ["video", "live"])
def test_break_ends_every_thread(predictor, tmp_path, mjpeg_server, kind):
    if kind == "video":
        source = str(tmp_path / "in.avi")
        write_video(source, 40)
    else:
        source = mjpeg_server(100000, make_frame=scene).url
    before = threading.enumerate()
    seen = 0
    for _ in predictor.stream(source, batch_size=2):
        seen += 1
        if seen == 3:
            break
    assert seen == 3
    assert new_threads_end(before) == []


def test_close_before_reading_closes_the_source(predictor):
    camera = SteppedCamera(None, scene)
    s = predictor.stream(VideoSource(camera, "webcam", "webcam 0"))
    s.close()
    s.close()  # a second close does nothing
    assert camera.released and list(s) == []


def test_signal_stops_reading_and_every_thread(predictor, mjpeg_server):
    """SIGINT under StopSignals: reading ends, the frames read are still returned (each
    as a per-frame call gives it), the loop ends on its own and every thread ends."""
    server = mjpeg_server(100000, make_frame=scene)
    before = threading.enumerate()
    results = []
    with StopSignals() as stop, stop.polling():
        s = predictor.stream(server.url, stop=stop.event)
        for r in s:
            results.append(r)
            if len(results) == 3:
                os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and s.stopped
    assert 3 <= len(results) < 100
    assert_same_as_per_frame(predictor, results)
    s.close()
    assert new_threads_end(before) == []


def test_keyboard_interrupt_ends_every_thread(predictor, tmp_path):
    source = tmp_path / "in.avi"
    write_video(source, 40)
    before = threading.enumerate()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    seen = []
    try:
        with pytest.raises(KeyboardInterrupt), predictor.stream(str(source)) as s:
            for r in s:
                seen.append(r.frame_index)
                if len(seen) == 2:
                    signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [0, 1]
    assert new_threads_end(before) == []


def test_skipped_marker_carries_the_error(tmp_path):
    assert Skipped("a.png", InputError("bad")).path == "a.png"


def test_frame_limit_counts_every_source_together(predictor, tmp_path):
    src = tmp_path / "in.avi"
    write_video(src, 6)
    s = predictor.stream(str(src), batch_size=2, max_frames=3)
    assert [r.frame_index for r in s] == [0, 1, 2] and s.processed == 3
    both = list(predictor.stream([[scene(0)] * 4, [scene(1)] * 4], max_frames=5))
    assert len(both) == 5
    for i in (0, 1):  # each source's frames in order from its first (turns depend on timing)
        indices = [r.frame_index for r in both if r.source_index == i]
        assert indices == list(range(len(indices)))
