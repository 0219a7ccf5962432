"""Video sources: files, webcams and network streams, read on a background thread.

``VideoSource`` wraps a ``cv2.VideoCapture`` (or any object with the same four
methods) and turns every failure into a one-line ``SourceError``.
``FrameReader`` reads a source on its own thread: files are read whole and in
order; live sources keep only the newest frame so a slow consumer never lags.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, get_args
from urllib.parse import urlparse
from urllib.request import url2pathname

import cv2
import numpy as np

from yolact.io.images import ClosesOnExit, to_bgr8
from yolact.io.reader import FrameReader as FrameReader  # re-exported: sources.FrameReader
from yolact.io.redact import redact as redact  # re-exported: sources.redact
from yolact.io.source_base import FrameSource as FrameSource
from yolact.io.source_base import SourceError as SourceError
from yolact.io.source_base import one_line as one_line

DEFAULT_FPS = 30.0
DEFAULT_STREAM_TIMEOUT_S = 10.0
SourceKind = Literal["file", "webcam", "stream"]
KINDS: tuple[SourceKind, ...] = get_args(SourceKind)

# "scheme://" then an optional "user[:password]@", a host (bracketed IPv6 or a
# name) and an optional ":port": no IN/OUT separator can sit inside this prefix.
_URL_PREFIX = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^/@]*@)?(?:\[[^\]/]*\]|[^:/\[\]]*)(?::\d*)?"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")

_OPEN_FAILED = {
    "file": "cannot open video (corrupt or not a video): {name}",
    "webcam": "cannot open {name}",
    "stream": "cannot connect to stream {name} (refused, unreachable or no answer in time)",
}
_NO_FIRST_FRAME = {
    "file": "cannot read a frame from video (corrupt or empty): {name}",
    "webcam": "{name} opened but gave no frame",
    "stream": "stream {name} connected but sent no frame in time",
}


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a ``VideoSource`` uses (fakes implement it in tests)."""

    def isOpened(self) -> bool: ...  # noqa: N802 (OpenCV's name)

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop_id: int) -> float: ...

    def release(self) -> None: ...


def split_in_out(arg: str) -> tuple[str, str | None]:
    """Split an ``IN:OUT`` flag value (``--video=in.mp4:out.mp4``) into IN and OUT.

    The separator is the first colon after any part that may hold colons of its
    own: a URL's ``scheme://user:pass@host:port`` and a Windows drive (``C:\\``).

    Returns:
        (IN, OUT), OUT None when absent or empty.

    Raises:
        SourceError: empty IN.
    """
    match = _URL_PREFIX.match(arg) or _DRIVE.match(arg)
    start = match.end() if match else 0
    sep = arg.find(":", start)
    if sep < 0:
        src, out = arg, None
    else:
        src, out = arg[:sep], arg[sep + 1 :] or None
    if not src:
        raise SourceError(f"missing input before ':' in {arg!r}")
    return src, out


def parse_source(spec: str) -> tuple[SourceKind, str | int]:
    """Classify a source spec.

    Returns:
        ("webcam", index) for digits, ("stream", url) for ``scheme://...``
        (``file://`` URLs become a file path), else ("file", path).

    Raises:
        SourceError: empty spec.
    """
    if not spec.strip():
        raise SourceError("empty video source")
    if spec.isascii() and spec.isdigit():
        return "webcam", int(spec)
    if _SCHEME.match(spec):
        if spec.lower().startswith("file://"):
            return "file", url2pathname(urlparse(spec).path)
        return "stream", spec
    return "file", spec


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings while probing backends; our error says what failed.

    FFmpeg's log lines ("Connection to tcp://... failed") are limited to fatal ones
    unless ``OPENCV_FFMPEG_LOGLEVEL`` is set (OpenCV reads it at the first open)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def _bgr8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    return to_bgr8(frame)


class VideoSource(ClosesOnExit):
    """A video file, webcam or stream that yields BGR uint8 frames [H, W, 3].

    Reads the first frame when built, so a source that opens but gives nothing
    fails here with a clear message; that frame is returned by the first read().

    Args:
        capture: an opened ``cv2.VideoCapture`` or an object with its methods.
        kind: "file", "webcam" or "stream".
        name: what messages call the source (a path, "webcam 0", a URL; a
            URL's credentials are hidden, see ``redact``).

    Raises:
        SourceError: the capture is not open or gives no first frame.
    """

    def __init__(self, capture: Capture, kind: SourceKind = "file", name: str = "video") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.name = redact(name)
        self._lock = threading.Lock()
        self._cap: Capture | None = capture
        try:
            opened = bool(capture.isOpened())
            ok, frame = capture.read() if opened else (False, None)
        except cv2.error:
            opened, ok, frame = False, False, None
        if not opened or not ok or frame is None:
            self.close()
            messages = _NO_FIRST_FRAME if opened else _OPEN_FAILED
            raise SourceError(messages[kind].format(name=self.name))
        self._first: np.ndarray | None = _bgr8(frame)
        self.height, self.width = self._first.shape[:2]
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        ok_count = kind == "file" and math.isfinite(count) and count >= 1
        self.frame_count: int | None = int(count) if ok_count else None
        self.spec: str | None = None  # what ``open`` was given: how to open it again

    @classmethod
    def open(cls, spec: str, timeout_s: float = DEFAULT_STREAM_TIMEOUT_S) -> VideoSource:
        """Open a video file path, a webcam index ("0") or a stream URL.

        Args:
            spec: as classified by ``parse_source``.
            timeout_s: streams only: the most a connect or a single read may wait.

        Raises:
            SourceError: missing file, unopenable source or no first frame.
        """
        kind, target = parse_source(spec)
        with _quiet_opencv():
            if kind == "webcam":
                source = cls(_capture(target), kind, f"webcam {target}")
            elif kind == "stream":
                ms = int(max(timeout_s, 0.001) * 1000)
                params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
                source = cls(_capture(target, cv2.CAP_FFMPEG, params), kind, redact(str(target)))
            else:
                path = os.path.expanduser(str(target))
                if not os.path.exists(path):
                    raise SourceError(f"video file not found: {path}")
                if os.path.isdir(path):
                    raise SourceError(f"expected a video file, got a folder: {path}")
                source = cls(_capture(path), kind, path)
        source.spec = spec
        return source

    @property
    def is_live(self) -> bool:
        """True for webcams and streams (frames keep coming; stale ones may be dropped)."""
        return self.kind != "file"

    def read(self) -> np.ndarray | None:
        """The next frame, BGR uint8 [H, W, 3]; None at the end, on failure or once closed.

        Raises:
            SourceError: the backend raised an error while decoding.
        """
        frame: np.ndarray | None
        with self._lock:
            if self._cap is None:
                return None
            if self._first is not None:
                frame, self._first = self._first, None
                return frame
            try:
                ok, frame = self._cap.read()
            except cv2.error as err:
                raise SourceError(f"error reading {self.name}: {one_line(err)}") from None
        return _bgr8(frame) if ok and frame is not None else None

    def close(self) -> None:
        """Release the capture (waits for a read in progress); safe to call twice."""
        with self._lock:
            cap, self._cap, self._first = self._cap, None, None
        if cap is not None:
            cap.release()


def _capture(target: str | int, api: int | None = None, params: Sequence[int] = ()) -> Capture:
    try:
        if api is None:
            return cv2.VideoCapture(target)
        return cv2.VideoCapture(target, api, params)
    except cv2.error:
        return _ClosedCapture()


class _ClosedCapture:
    """Stands in for a capture whose constructor raised: never open."""

    def isOpened(self) -> bool:  # noqa: N802
        return False

    def read(self) -> tuple[bool, np.ndarray | None]:
        return False, None

    def get(self, prop_id: int) -> float:
        return 0.0

    def release(self) -> None:
        pass
