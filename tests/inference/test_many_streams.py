"""Many live sources through one model, end to end on real threads: loopback MJPEG
streams, batches of one frame per source with a tracker per source, reconnecting a
dropped stream while another source goes on, and the per-source figures adding up."""

from __future__ import annotations

import importlib
import threading

import cv2
import numpy as np
import pytest

from tests.conftest import SteppedCamera
from yolact import Predictor
from yolact.inference import SourceStats, stream
from yolact.io.sources import SourceError, VideoSource

WEIGHTS = "weights/yolact_tiny_synthetic.pth"
JOIN_S = 60.0  # only a hang waits this long


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.from_checkpoint(WEIGHTS, device="cpu")


def frame(i: int, mirror: bool = False) -> np.ndarray:
    """A circle moving right and a square moving left (the shipped model finds both)."""
    img = np.full((96, 128, 3), 90, np.uint8)
    cv2.circle(img, (30 + 4 * i, 35), 18, (40, 200, 40), -1)
    cv2.rectangle(img, (80 - 3 * i, 55), (110 - 3 * i, 85), (200, 60, 60), -1)
    return img[:, ::-1].copy() if mirror else img


def assert_adds_up(stats: list[SourceStats], results: list, names: list[str]) -> None:
    """After the run: each source's processed count is its results, and every frame
    delivered was either processed or dropped."""
    assert [s.source_index for s in stats] == list(range(len(names)))
    assert [s.name for s in stats] == names
    for s in stats:
        assert s.processed == sum(r.source_index == s.source_index for r in results)
        assert s.delivered == s.processed + s.dropped
        if s.processed:
            assert s.latency_p50_ms is not None and s.latency_p95_ms is not None
            assert 0 <= s.latency_p50_ms <= s.latency_p95_ms and s.fps > 0


def test_two_live_loopback_streams(predictor: Predictor, mjpeg_server) -> None:
    servers = [mjpeg_server(6, make_frame=frame), mjpeg_server(6, make_frame=frame)]
    urls = [s.url for s in servers]
    s = predictor.stream(urls)
    results = list(s)
    assert results and {r.source_index for r in results} <= {0, 1}
    for r in results:
        assert r.source == urls[r.source_index] and 0 <= r.frame_index < 6
        assert r.captured > 0 and r.detections.image_size == (96, 128)
    for i in (0, 1):
        indices = [r.frame_index for r in results if r.source_index == i]
        assert indices == sorted(set(indices))
    stats = s.source_stats()
    assert_adds_up(stats, results, urls)
    assert all(1 <= st.delivered <= 6 for st in stats) and s.ended_early
    assert [src.spec for src in s.sources] == urls  # type: ignore[attr-defined]


def test_a_stalled_stream_never_holds_the_others(predictor: Predictor, mjpeg_server) -> None:
    """Stream 1 sends two frames and goes silent (connected); stream 0 keeps getting
    results meanwhile."""
    live = mjpeg_server(100000, make_frame=frame)
    silent = mjpeg_server(2, then="stall", make_frame=frame)
    s = predictor.stream([live.url, silent.url])
    while_silent: list[int] = []

    def consume() -> None:
        for r in s:
            if r.source_index == 0 and silent.stalled.is_set():
                while_silent.append(r.frame_index)
                if len(while_silent) == 10:
                    return

    consumer = threading.Thread(target=consume)
    consumer.start()
    consumer.join(JOIN_S)
    assert not consumer.is_alive() and not silent.stall_ended.is_set()
    assert len(while_silent) == 10 and while_silent == sorted(set(while_silent))
    s.close()


class Recording:
    """The shipped model, stepping both cameras by one frame at each batch and
    recording which frames each batch held."""

    def __init__(self, predictor: Predictor, cameras: list[SteppedCamera]) -> None:
        self.predictor, self.cameras = predictor, cameras
        self.class_names = predictor.class_names
        self.batches: list[int] = []

    def run_pre(self, images):
        self.batches.append(len(images))
        for camera in self.cameras:
            camera.step(1)
        return self.predictor.run_pre(images)

    def run_network(self, batch):
        return self.predictor.run_network(batch)

    def run_post(self, raw, sizes):
        return self.predictor.run_post(raw, sizes)


def test_batches_of_two_sources_keep_a_tracker_each(predictor: Predictor) -> None:
    """Two cameras, one frame each per batch: every batch holds both; each source's
    objects keep their ids, and each source has its own tracker (both number from 1)."""
    cameras = [SteppedCamera(5, frame), SteppedCamera(5, lambda i: frame(i + 1, mirror=True))]
    model = Recording(predictor, cameras)
    sources = [VideoSource(c, "webcam", f"webcam {k}") for k, c in enumerate(cameras)]
    s = stream(model, sources, track=True, batch_wait=JOIN_S)
    results = list(s)
    assert model.batches == [2] * 5
    for i in (0, 1):
        mine = [r for r in results if r.source_index == i]
        assert [r.frame_index for r in mine] == list(range(5))
        ids = []
        for r in mine:
            d = r.detections
            keep = d.scores > 0.9
            assert d.track_ids is not None
            ids.append(dict(zip(d.labels[keep].tolist(), d.track_ids[keep].tolist())))
        assert ids[0].keys() == {0, 1} and all(x and x.items() <= ids[0].items() for x in ids)
        assert sorted(ids[0].values()) == [1, 2]
    stats = s.source_stats()
    assert [(st.delivered, st.processed, st.dropped) for st in stats] == [(5, 5, 0)] * 2


class Quick:
    """A live capture that gives ``n`` frames at once, then ends (a stream that drops)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def isOpened(self) -> bool:  # noqa: N802
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, frame(self.left)

    def get(self, prop_id: int) -> float:
        return 15.0 if prop_id == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        pass


@pytest.mark.parametrize("given", ["url", "opened"])
def test_a_dropped_stream_reconnects_while_another_source_goes_on(
    predictor: Predictor, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """The stream drops after 3 frames each time; it reopens twice (the frame numbers
    go on: 9 frames in all), then cannot, and gives up; the list of frames beside it
    gives every frame. Given as a URL or as a VideoSource that knows its spec."""
    reconnect = importlib.import_module("yolact.inference.reconnect")
    stream_module = importlib.import_module("yolact.inference.stream")
    monkeypatch.setattr(reconnect, "BACKOFF_START_S", 0.0)
    opens: list[str] = []
    real_open = stream_module.open_source

    def fake_open(spec):
        if spec != "rtsp://cam/1":
            return real_open(spec)
        opens.append(spec)
        if len(opens) > 3:
            raise SourceError("cannot connect to stream rtsp://cam/1")
        return VideoSource(Quick(3), "stream", spec)

    monkeypatch.setattr(stream_module, "open_source", fake_open)
    events: list[tuple[int, str]] = []
    lock = threading.Lock()

    def on_event(index: int, message: str) -> None:
        with lock:
            events.append((index, message))

    others = [frame(i) for i in range(4)]
    first: object = "rtsp://cam/1"
    if given == "opened":
        first = fake_open("rtsp://cam/1")
        first.spec = "rtsp://cam/1"  # as VideoSource.open sets it
    s = stream(predictor, [first, others], reconnect=1, on_event=on_event)
    results = list(s)
    cam = [r.frame_index for r in results if r.source_index == 0]
    assert cam == sorted(set(cam)) and all(0 <= i < 9 for i in cam)
    assert [r.frame_index for r in results if r.source_index == 1] == [0, 1, 2, 3]
    stats = s.source_stats()
    assert_adds_up(stats, results, ["rtsp://cam/1", "frames"])
    assert (stats[0].delivered, stats[0].reconnects) == (9, 2)
    assert (stats[1].delivered, stats[1].dropped, stats[1].reconnects) == (4, 0, 0)
    assert s.ended_early and len(opens) == 4
    again = "rtsp://cam/1 ended; reconnecting in 0 s (attempt 1 of 1)"
    assert events == [
        (0, again),
        (0, "rtsp://cam/1 reconnected (attempt 1)"),
        (0, again),
        (0, "rtsp://cam/1 reconnected (attempt 1)"),
        (0, again),
        (0, "rtsp://cam/1 did not reopen (cannot connect to stream rtsp://cam/1); "
            "giving up after 1 attempt"),
    ]  # fmt: skip


def test_bad_scheduler_options_are_refused(predictor: Predictor) -> None:
    for options, message in [
        ({"detect_fps": 0}, "detect_fps must be a positive number"),
        ({"batch_wait": -0.1}, "batch_wait must be >= 0 seconds"),
        ({"max_batch": 0}, "max_batch must be >= 1"),
        ({"reconnect": -2}, "reconnect must be >= 0, got -2"),
    ]:
        with pytest.raises(ValueError, match=message):
            predictor.stream([frame(0)], **options)
