"""Shared test fixtures and helpers (``from conftest import REPO, free_port``).

Helpers that several test files use live here once: import them by name
(``from conftest import iou, make_det, run_main``); the fixtures here (``tiny_ckpt``)
are seen by every test.
"""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yolact.core.structures import Detections

# The repository root (eval.py, train.py, weights/).
REPO = Path(__file__).resolve().parents[1]


def make_detections(
    boxes: list[list[float]],
    labels: list[int],
    scores: list[float],
    masks: torch.Tensor | None,
    *,
    image_size: tuple[int, int],
    class_names: tuple[str, ...],
    box_score_scale: float = 1.0,
    mask_score_scale: float = 1.0,
) -> Detections:
    """Detections from plain lists (boxes xyxy pixels); box and mask scores are the
    scores times the given scales, so tests can tell the three apart."""
    s = torch.tensor(scores, dtype=torch.float32)
    return Detections(
        boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.int64),
        scores=s,
        box_scores=s * box_score_scale,
        mask_scores=s * mask_score_scale,
        masks=masks,
        image_size=image_size,
        class_names=class_names,
    )


# The image size and class names ``make_det`` gives by default.
DET_SIZE = (40, 60)
DET_NAMES = ("cat", "dog", "bird")


def make_det(
    boxes: list[list[float]],
    labels: list[int],
    scores: list[float],
    masks: torch.Tensor | None,
    image_size: tuple[int, int] = DET_SIZE,
    class_names: tuple[str, ...] = DET_NAMES,
    *,
    box_score_scale: float = 1.0,
    mask_score_scale: float = 1.0,
) -> Detections:
    """:func:`make_detections` of a ``DET_SIZE`` image of the ``DET_NAMES`` classes."""
    return make_detections(boxes, labels, scores, masks, image_size=image_size,
                           class_names=class_names, box_score_scale=box_score_scale,
                           mask_score_scale=mask_score_scale)  # fmt: skip


def iou(a: list[float], b: list[float]) -> float:
    """IoU of two xyxy boxes in plain Python (0 where both are empty)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N, H, W] bool pairs -> [N] IoU."""
    return (a & b).sum((1, 2)).float() / (a | b).sum((1, 2)).clamp(min=1).float()


def demo_scene(seed: int) -> np.ndarray:
    """A 160x120 image of the demo model's shapes (seeds 1 and 6: 4 and 3 detections)."""
    from yolact.data.scenes import make_scene

    return make_scene(np.random.default_rng(seed), size=(120, 160), max_objects=5)["image"]


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for exactly this message."""
    return f"^{re.escape(message)}$"


def one_line(err: str) -> str:
    """The one line of ``err``; fails the test on more lines or a traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def digest(path: str | Path) -> str:
    """The SHA-256 of a file, or of every file in a folder (names and bytes)."""
    h = hashlib.sha256()
    path = Path(path)
    for f in [path] if path.is_file() else sorted(path.rglob("*")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links followed) by relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``eval.py --no_bar --cuda=False *argv`` in-process: (exit code, stdout, stderr)."""
    from yolact.cli import eval_cli

    code = eval_cli.main(["--no_bar", "--cuda=False", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A yolact_tiny checkpoint in the original layout (a plain state dict)."""
    from yolact.models.yolact.model import build_model
    from yolact.registry import get_config

    torch.manual_seed(0)
    model = build_model(get_config("yolact_tiny"))
    path = tmp_path_factory.mktemp("w") / "yolact_tiny_1_10.pth"
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The demo model (``weights/yolact_tiny_synthetic.pth``) exported as ONNX and as
    OpenVINO, unchecked: ``{"onnx": file, "openvino": folder}``."""
    from yolact.export import export

    demo = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
    root = tmp_path_factory.mktemp("exported")
    return {
        kind: export(demo, str(root / "m"), kind, check=False, log=False)
        for kind in ("onnx", "openvino")
    }


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a process group's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def kept_signal_handlers() -> Iterator[None]:
    """Put back every signal handler as it was on entry (``ray.init`` installs its own
    SIGTERM handler in this process and ``ray.shutdown`` leaves it there)."""
    saved = {}
    for sig in signal.valid_signals():
        try:
            saved[sig] = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def pinned_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs with one torch thread, whatever ran before it.

    Entry points called in-process (``eval_cli.main``, ``train_cli.main``, the demo,
    ``Predictor.from_checkpoint``) size the pools from ``/proc/stat`` at that moment;
    ``OMP_NUM_THREADS=1`` is the setting that sizing honours, so they keep one torch
    thread and sample nothing. Torch's and OpenCV's pools and the remembered plan are
    put back after the test, so a test that sizes them itself changes no later test.
    """
    from yolact.runtime import threads

    monkeypatch.setenv(threads.OMP_ENV, "1")
    monkeypatch.setattr(threads, "_current", threads._current)
    torch_threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv_threads)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Run a test's small CPU convolutions on one thread: on a 2-core machine shared
    with other processes, several OpenMP threads are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class SteppedCamera:
    """A fake live camera (the four methods of ``cv2.VideoCapture`` that a
    ``VideoSource`` uses) that gives a frame only when the test lets it.

    The first frame (read when the source opens) comes at once, every later one
    after :meth:`step`; after ``total`` frames (None: never) reads give nothing.
    ``make_frame(index)`` draws frame ``index``. ``latest`` is the index of the
    newest frame given, ``released`` tells whether the capture was released.
    """

    def __init__(
        self, total: int | None, make_frame: Callable[[int], np.ndarray], fps: float = 30.0
    ) -> None:
        self.total, self.make_frame, self.fps = total, make_frame, fps
        self.produced = 0  # frames given (the index of the next one)
        self.asked = 0  # read() calls begun
        self.latest = -1
        self.released = False
        self._permits = threading.Semaphore(0)
        self._cond = threading.Condition()

    def isOpened(self) -> bool:
        return not self.released

    def get(self, prop_id: int) -> float:
        return self.fps if prop_id == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.released = True

    def read(self) -> tuple[bool, np.ndarray | None]:
        with self._cond:
            self.asked += 1
            self._cond.notify_all()
            if self.total is not None and self.produced >= self.total:
                return False, None
            first = self.produced == 0
        if not first and not self._permits.acquire(timeout=60):
            return False, None  # never stepped: the test is gone
        frame = self.make_frame(self.produced)
        with self._cond:
            self.latest = self.produced
            self.produced += 1
            self._cond.notify_all()
        return True, frame

    def step(self, frames: int = 1) -> None:
        """Let ``frames`` more frames through, then wait until the reader has taken
        them all and asks for the next one (or the camera has ended)."""
        with self._cond:
            assert self._cond.wait_for(lambda: self.asked > self.produced, 60), "no reader"
            goal = self.produced + frames
            if self.total is not None:
                goal = min(goal, self.total)
        for _ in range(frames):
            self._permits.release()
        with self._cond:
            done = self._cond.wait_for(
                lambda: self.produced >= goal and self.asked > self.produced, 60
            )
            assert done, "the reader did not take the frames"


class MjpegServer:
    """Serves ``n_frames`` JPEG parts over multipart/x-mixed-replace on 127.0.0.1, as
    fast as the client takes them, then closes the connection (``then="close"``) or
    goes silent (``then="stall"``) until :meth:`close`. ``stalled`` is set when it
    goes silent, ``stall_ended`` when it stops being silent (at :meth:`close`, or
    after 60 s)."""

    def __init__(
        self,
        n_frames: int,
        then: str = "close",
        make_frame: Callable[[int], np.ndarray] | None = None,
    ) -> None:
        make_frame = make_frame or (lambda i: np.full((48, 64, 3), (i * 8) % 256, np.uint8))
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.stall_ended = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for i in range(n_frames):
                        jpeg = cv2.imencode(".jpg", make_frame(i))[1].tobytes()
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                        self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        self.wfile.flush()
                except OSError:
                    return
                if then == "stall":
                    server.stalled.set()
                    server.release.wait(60)
                    server.stall_ended.set()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mjpeg_server() -> Iterator:
    servers: list[MjpegServer] = []

    def start(n_frames: int, then: str = "close", make_frame=None) -> MjpegServer:
        servers.append(MjpegServer(n_frames, then, make_frame))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
