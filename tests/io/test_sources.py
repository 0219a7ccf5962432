"""Video input/output: IN:OUT parsing, files, fake live sources, HTTP streams, errors."""

from __future__ import annotations

import os
import re
import socket
import threading
from typing import get_args

import cv2
import numpy as np
import pytest
from conftest import SteppedCamera, free_port

from yolact.io import video as video_mod
from yolact.io.images import InputError
from yolact.io.sources import (
    KINDS,
    FrameReader,
    SourceError,
    SourceKind,
    VideoSource,
    parse_source,
    split_in_out,
)
from yolact.io.video import VideoWriter, open_window_possible

W, H = 64, 48
GRAY_STEP = 12  # gray level per frame index: wide enough to survive mp4v compression


def gray_frame(index: int, step: int = GRAY_STEP) -> np.ndarray:
    return np.full((H, W, 3), step * index, np.uint8)


def gray_index(frame: np.ndarray, step: int = GRAY_STEP) -> int:
    return int(round(float(frame.mean()) / step))


def make_video(path: str, n: int, fps: float = 25.0) -> None:
    fourcc = "MJPG" if path.endswith(".avi") else "mp4v"
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(gray_frame(i))
    writer.release()


# ---------------------------------------------------------------- argument parsing


@pytest.mark.parametrize(
    "arg, expected",
    [
        ("in.mp4:out.mp4", ("in.mp4", "out.mp4")),
        ("in.mp4", ("in.mp4", None)),
        ("in.mp4:", ("in.mp4", None)),
        ("0:out.mp4", ("0", "out.mp4")),
        ("0", ("0", None)),
        ("a.jpg:b.png", ("a.jpg", "b.png")),
        ("dir/a b.jpg:out dir/b.png", ("dir/a b.jpg", "out dir/b.png")),
        ("rtsp://cam:554/live", ("rtsp://cam:554/live", None)),
        ("rtsp://cam:554", ("rtsp://cam:554", None)),
        ("rtsp://cam:554:out.mp4", ("rtsp://cam:554", "out.mp4")),
        ("rtsp://user:pa55@cam:554/live:o.avi", ("rtsp://user:pa55@cam:554/live", "o.avi")),
        ("http://localhost:8080/s.mjpg:out.mp4", ("http://localhost:8080/s.mjpg", "out.mp4")),
        ("http://[::1]:8080/s.mjpg:out.mp4", ("http://[::1]:8080/s.mjpg", "out.mp4")),
        ("https://example.com/v.mp4", ("https://example.com/v.mp4", None)),
        ("udp://@:1234:out.mp4", ("udp://@:1234", "out.mp4")),
        ("C:\\x.mp4", ("C:\\x.mp4", None)),
        ("C:\\x.mp4:D:\\y.mp4", ("C:\\x.mp4", "D:\\y.mp4")),
        ("C:/videos/x.mp4:out.mp4", ("C:/videos/x.mp4", "out.mp4")),
        ("in.mp4:C:\\out.mp4", ("in.mp4", "C:\\out.mp4")),
    ],
)
def test_split_in_out(arg: str, expected: tuple[str, str | None]) -> None:
    assert split_in_out(arg) == expected


@pytest.mark.parametrize("arg", ["", ":out.mp4"])
def test_split_in_out_missing_input(arg: str) -> None:
    with pytest.raises(SourceError, match="missing input"):
        split_in_out(arg)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("0", ("webcam", 0)),
        ("12", ("webcam", 12)),
        ("rtsp://cam:554/live", ("stream", "rtsp://cam:554/live")),
        ("rtmp://host/app/key", ("stream", "rtmp://host/app/key")),
        ("http://127.0.0.1:8000/s.mjpg", ("stream", "http://127.0.0.1:8000/s.mjpg")),
        ("HTTPS://host/v.m3u8", ("stream", "HTTPS://host/v.m3u8")),
        ("udp://@:1234", ("stream", "udp://@:1234")),
        ("tcp://10.0.0.2:5000", ("stream", "tcp://10.0.0.2:5000")),
        ("file:///tmp/a%20b.mp4", ("file", "/tmp/a b.mp4")),
        ("video.mp4", ("file", "video.mp4")),
        ("0.mp4", ("file", "0.mp4")),
        ("/data/12", ("file", "/data/12")),
        ("C:\\x.mp4", ("file", "C:\\x.mp4")),
        ("-1", ("file", "-1")),
    ],
)
def test_parse_source(spec: str, expected: tuple[str, str | int]) -> None:
    assert parse_source(spec) == expected


def test_source_error_is_an_input_error() -> None:
    assert issubclass(SourceError, InputError)
    with pytest.raises(SourceError, match="empty"):
        parse_source("  ")


# ---------------------------------------------------------------- files


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_file_read_in_order_and_written_back(tmp_path, ext: str) -> None:
    src_path = str(tmp_path / f"in{ext}")
    make_video(src_path, 20, fps=25.0)
    source = VideoSource.open(src_path)
    assert (source.kind, source.is_live) == ("file", False)
    assert (source.width, source.height, source.fps, source.frame_count) == (W, H, 25.0, 20)

    out_path = str(tmp_path / "nested" / "out" / f"result{ext}")
    indices, contents, written = [], [], []
    with FrameReader(source) as reader, VideoWriter(out_path, source.fps, (W, H)) as writer:
        for index, frame in reader:
            assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
            indices.append(index)
            contents.append(gray_index(frame))
            writer.write(frame)
            written.append(float(frame.mean()))
    assert indices == list(range(20))
    assert contents == list(range(20))
    assert (reader.dropped, reader.ended_early, writer.frames_written) == (0, False, 20)

    cap = cv2.VideoCapture(out_path)
    assert cap.isOpened()
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (W, H)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    decoded = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(float(frame.mean()))
    cap.release()
    # Re-encoding shifts gray levels by a few units; each frame stays nearest its original.
    assert len(decoded) == 20
    assert np.abs(np.array(decoded) - np.array(written)).max() < GRAY_STEP / 2


def test_file_reader_blocks_when_queue_full_and_stop_closes(tmp_path) -> None:
    path = str(tmp_path / "in.mp4")
    make_video(path, 20)
    source = VideoSource.open(path)
    real_read, queued, fourth, readers = source.read, [], threading.Event(), []

    def read() -> np.ndarray | None:  # records the frames waiting at every read
        queued.append(len(readers[0]._frames) if readers else 0)
        frame = real_read()
        if len(queued) == 4:
            fourth.set()
        return frame

    source.read = read  # type: ignore[method-assign]
    reader = FrameReader(source, max_queue=3)
    readers.append(reader)
    assert fourth.wait(60)
    assert reader.frames_read == 3  # the queue is full; the 4th frame waits in the thread
    assert [next(reader)[0] for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.stop(timeout_s=60)
    assert max(queued) <= 3  # never more than max_queue frames waiting
    assert not reader.running
    assert source.read() is None  # closed by the reader
    assert list(reader) == []


def test_source_read_returns_first_frame_then_none_at_end(tmp_path) -> None:
    path = str(tmp_path / "in.avi")
    make_video(path, 3)
    with VideoSource.open(path) as source:
        got = [gray_index(source.read()) for _ in range(3)]
        assert got == [0, 1, 2]
        assert source.read() is None
    assert source.read() is None


# ---------------------------------------------------------------- fake live source


def encode_index(index: int) -> np.ndarray:
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[..., 0], frame[..., 1] = index % 256, index // 256
    return frame


def decode_index(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


class FakeLiveCapture:
    """A camera producing ``total`` frames (or endless), as fast as they are read."""

    def __init__(self, total: int | None, fail_at: int | None = None) -> None:
        self.total, self.fail_at = total, fail_at
        self.next_index = 0
        self.latest = -1  # index of the newest frame produced
        self.released = False

    def isOpened(self) -> bool:
        return not self.released

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.next_index == self.fail_at:
            raise RuntimeError("camera unplugged\nsecond line of detail")
        if self.total is not None and self.next_index >= self.total:
            return False, None
        index = self.next_index
        self.next_index += 1
        self.latest = index
        return True, encode_index(index)

    def get(self, prop_id: int) -> float:
        return 500.0 if prop_id == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.released = True


def test_live_reader_drops_stale_frames_and_never_lags() -> None:
    camera = SteppedCamera(12, encode_index, fps=500.0)
    source = VideoSource(camera, kind="webcam", name="webcam 7")
    assert source.is_live and source.frame_count is None and source.fps == 500.0
    with FrameReader(source) as reader:
        assert reader.live
        camera.step(4)  # frames 1..4 arrive while the consumer is busy elsewhere
        index, frame = next(reader)
        assert (index, decode_index(frame)) == (4, 4)  # the newest; 0..3 were dropped
        assert reader.dropped == 4
        received = [index]
        for _ in range(7):  # a consumer as fast as the camera: each frame is the newest
            camera.step()
            index, frame = next(reader)
            assert index == camera.latest == decode_index(frame)
            received.append(index)
        assert next(reader, None) is None  # the camera gave its 12 frames and ended
        reader.stop(timeout_s=60)
    assert received == list(range(4, 12))
    assert reader.frames_read == 12 and reader.dropped == 4
    assert reader.ended_early and "webcam 7" in reader.end_message
    assert camera.released and not reader.running


def test_stop_ends_endless_live_source_promptly() -> None:
    fake = FakeLiveCapture(None)  # endless: only the stop can end the thread
    reader = FrameReader(VideoSource(fake, kind="stream", name="rtsp://cam/live"))
    got = [next(reader)[0] for _ in range(3)]
    assert got == sorted(got)
    reader.stop(timeout_s=60)
    assert fake.released and not reader.running and not reader.ended_early
    assert next(reader, None) is None


def test_reader_thread_error_becomes_one_line_source_error() -> None:
    fake = FakeLiveCapture(None, fail_at=4)
    reader = FrameReader(VideoSource(fake, kind="file", name="cam.mp4"))
    got = []
    with pytest.raises(SourceError) as info:
        for index, _ in reader:
            got.append(index)
    assert got == [0, 1, 2, 3]
    assert str(info.value) == "error while reading cam.mp4: camera unplugged"
    assert fake.released and next(reader, None) is None


def test_fake_capture_that_never_opens_or_gives_nothing() -> None:
    closed = FakeLiveCapture(0)
    closed.released = True
    with pytest.raises(SourceError, match="^cannot open webcam 5$"):
        VideoSource(closed, kind="webcam", name="webcam 5")
    with pytest.raises(SourceError, match="gave no frame"):
        VideoSource(FakeLiveCapture(0), kind="webcam", name="webcam 5")


# ---------------------------------------------------------------- HTTP MJPEG streams


def read_live(source: VideoSource) -> tuple[FrameReader, list[tuple[int, int]]]:
    got = []
    with FrameReader(source, live=True) as reader:
        for index, frame in reader:
            assert frame.shape == (H, W, 3)
            got.append((index, gray_index(frame, step=8)))
    return reader, got


def test_http_mjpeg_stream_frames_arrive_and_drop_ends_cleanly(mjpeg_server) -> None:
    server = mjpeg_server(30, then="close")
    source = VideoSource.open(server.url, timeout_s=3.0)
    assert (source.kind, source.is_live, source.frame_count) == ("stream", True, None)
    assert (source.width, source.height) == (W, H) and source.fps > 0
    reader, got = read_live(source)
    assert got  # the newest frame at least (how many more depends on the scheduler)
    assert all(index == content for index, content in got)  # no frame lost before the reader
    assert [i for i, _ in got] == sorted({i for i, _ in got})
    assert got[-1][0] == 29
    assert reader.frames_read == 30 and reader.dropped == 30 - len(got)
    assert reader.ended_early and server.url in reader.end_message


def test_http_stream_that_goes_silent_ends_after_read_timeout(mjpeg_server) -> None:
    server = mjpeg_server(5, then="stall")
    reader, got = read_live(VideoSource.open(server.url, timeout_s=1.0))
    # Ended by the read timeout, while the server still held the connection open.
    assert server.stalled.is_set() and not server.stall_ended.is_set()
    assert got and got[-1] == (4, 4)
    assert reader.ended_early


# ---------------------------------------------------------------- bad input


def assert_fails_fast(spec: str, pattern: str, timeout_s: float = 10.0) -> str:
    """Opens ``spec`` on a thread that must end (60 s: only a hang fails) with a
    one-line SourceError matching ``pattern``; returns the message."""
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            VideoSource.open(spec, timeout_s=timeout_s).close()
        except BaseException as err:  # noqa: BLE001 (handed to the test)
            errors.append(err)

    opener = threading.Thread(target=open_it, daemon=True)
    opener.start()
    opener.join(60)
    assert not opener.is_alive(), f"opening {spec} hung"
    assert len(errors) == 1 and isinstance(errors[0], SourceError), errors
    message = str(errors[0])
    assert re.search(pattern, message), message
    assert "\n" not in message and message
    return message


def test_missing_file(tmp_path) -> None:
    path = str(tmp_path / "nope.mp4")
    assert assert_fails_fast(path, "video file not found") == f"video file not found: {path}"


def test_folder_instead_of_file(tmp_path) -> None:
    assert_fails_fast(str(tmp_path), "got a folder")


@pytest.mark.parametrize("content", [np.random.default_rng(0).bytes(4096), b""])
def test_corrupt_file(tmp_path, content: bytes) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    message = assert_fails_fast(str(path), "corrupt")
    assert str(path) in message


def test_webcam_that_does_not_open() -> None:
    assert assert_fails_fast("99", "cannot open webcam") == "cannot open webcam 99"


def test_unreachable_stream() -> None:
    url = f"http://127.0.0.1:{free_port()}/live.mjpg"
    assert url in assert_fails_fast(url, "cannot connect to stream")


def test_stream_server_that_never_answers(monkeypatch) -> None:
    from yolact.io import sources

    params: list[list[int]] = []
    real = sources._capture

    def capture(target, api=None, given=()):
        params.append(list(given))
        return real(target, api, given)

    monkeypatch.setattr(sources, "_capture", capture)
    with socket.socket() as sock:  # accepts connections (backlog) but never replies
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        url = f"http://user:secret@127.0.0.1:{sock.getsockname()[1]}/live"
        message = assert_fails_fast(url, "cannot connect to stream", timeout_s=1.0)
    # OpenCV is told the time limit (what ended the wait) for connecting and for reads.
    ms = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 1000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 1000]
    assert params == [ms]
    assert "secret" not in message and "user:***@" in message


# ---------------------------------------------------------------- writer and display


def test_writer_errors(tmp_path) -> None:
    with pytest.raises(SourceError, match="unsupported video extension"):
        VideoWriter(str(tmp_path / "out.xyz"), 25.0, (W, H))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SourceError, match="cannot create folder"):
        VideoWriter(str(blocker / "out.mp4"), 25.0, (W, H))
    with pytest.raises(SourceError, match="fps"):
        VideoWriter(str(tmp_path / "out.mp4"), 0.0, (W, H))
    writer = VideoWriter(str(tmp_path / "out.mp4"), 25.0, (W, H))
    with pytest.raises(SourceError, match="frame size 32x24 differs from the video size 64x48"):
        writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.write(np.zeros((H, W), np.uint8))  # grayscale is converted, not rejected
    writer.close()
    assert writer.frames_written == 1 and os.path.getsize(tmp_path / "out.mp4") > 0
    with pytest.raises(SourceError, match="closed"):
        writer.write(gray_frame(0))


def test_open_window_possible(monkeypatch) -> None:
    monkeypatch.setattr(video_mod, "_opencv_has_gui", lambda: True)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(video_mod.sys, "platform", "linux")
    assert open_window_possible() is False
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert open_window_possible() is True
    monkeypatch.delenv("WAYLAND_DISPLAY")
    monkeypatch.setenv("DISPLAY", ":0")
    assert open_window_possible() is True
    monkeypatch.setattr(video_mod, "_opencv_has_gui", lambda: False)
    assert open_window_possible() is False
    monkeypatch.setattr(video_mod, "_opencv_has_gui", lambda: True)
    monkeypatch.delenv("DISPLAY")
    for platform in ("win32", "darwin"):
        monkeypatch.setattr(video_mod.sys, "platform", platform)
        assert open_window_possible() is True


# ---- stopping on SIGINT / SIGTERM ------------------------------------------------------


def test_stop_signals_request_a_stop_while_polling_and_interrupt_otherwise() -> None:
    import signal

    from yolact.io.stop import StopSignals

    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        with pytest.raises(KeyboardInterrupt):  # no loop is polling: stop at once
            signal.raise_signal(signal.SIGINT)
        assert not stop.requested and stop.exit_code == 130
    with StopSignals() as stop:
        with stop.polling():
            signal.raise_signal(signal.SIGTERM)
            assert stop.requested and stop.event.is_set()
            assert (stop.name, stop.exit_code) == ("SIGTERM", 143)
            with pytest.raises(KeyboardInterrupt):  # a second signal does not wait
                signal.raise_signal(signal.SIGINT)
        assert stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_cancel_ends_iteration_while_a_live_source_is_silent() -> None:
    """A stop request ends the wait for a frame that does not come: iteration ends
    while the source is still silent."""
    silent, wake = threading.Event(), threading.Event()

    class SilentCamera(FakeLiveCapture):
        def read(self) -> tuple[bool, np.ndarray | None]:
            if self.next_index == 0:
                return super().read()
            silent.set()
            wake.wait(60)  # a stream that stopped sending, until its read timeout
            return False, None

    cancel = threading.Event()
    source = VideoSource(SilentCamera(None), kind="stream", name="http://cam")
    with FrameReader(source, cancel=cancel) as reader:
        assert decode_index(next(reader)[1]) == 0
        canceller = threading.Thread(target=lambda: silent.wait(60) and cancel.set())
        canceller.start()
        assert next(reader, None) is None
        assert reader.cancelled and silent.is_set() and not wake.is_set()
        canceller.join(60)
        wake.set()


def test_source_kind_is_checked_when_built() -> None:
    assert KINDS == get_args(SourceKind) == ("file", "webcam", "stream")
    fake = FakeLiveCapture(1)
    with pytest.raises(
        ValueError, match=r"^kind must be one of \('file', 'webcam', 'stream'\), got 'camera'$"
    ):
        VideoSource(fake, kind="camera")  # type: ignore[arg-type]
    assert not fake.released and fake.next_index == 0
