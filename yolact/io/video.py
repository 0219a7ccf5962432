"""Writing videos with OpenCV, and telling whether a window can be shown."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import tempfile

import cv2
import numpy as np

from yolact.io.images import ClosesOnExit, to_bgr8
from yolact.io.sources import SourceError

# Codec per container; mp4v and MJPG ship with every OpenCV FFmpeg build.
FOURCC_BY_EXTENSION = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".mkv": "mp4v",
    ".avi": "MJPG",
}


class VideoWriter(ClosesOnExit):
    """Write BGR uint8 frames [H, W, 3] of one fixed size to a video file.

    The codec follows the extension (mp4v for .mp4/.m4v/.mov/.mkv, MJPG for
    .avi); parent folders are created. Frames go to a temporary file beside
    ``path`` that ``close`` moves over ``path``, so ``path`` keeps its old
    content while the video is written, and for good when no frame was written.

    Args:
        path: output file.
        fps: frames per second stored in the file (> 0).
        size: (width, height) of every frame.

    Raises:
        SourceError: unknown extension, bad fps/size, or the file cannot be opened.
    """

    def __init__(self, path: str, fps: float, size: tuple[int, int]) -> None:
        ext = os.path.splitext(path)[1].lower()
        if ext not in FOURCC_BY_EXTENSION:
            known = ", ".join(FOURCC_BY_EXTENSION)
            raise SourceError(f"unsupported video extension {ext!r} for {path} (use {known})")
        if not (math.isfinite(fps) and fps > 0):
            raise SourceError(f"video fps must be a positive number, got {fps} for {path}")
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0:
            raise SourceError(f"video size must be positive, got {width}x{height} for {path}")
        if os.path.isdir(path):
            raise SourceError(f"cannot write a video over a folder: {path}")
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=ext,
                                       dir=parent)  # fmt: skip
            os.close(fd)
        except OSError as err:
            raise SourceError(f"cannot create folder {parent}: {err.strerror}") from None
        fourcc = cv2.VideoWriter.fourcc(*FOURCC_BY_EXTENSION[ext])
        writer = cv2.VideoWriter(tmp, fourcc, float(fps), (width, height))
        if not writer.isOpened():
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise SourceError(f"cannot open video for writing: {path}")
        self.path = path
        self.fps = float(fps)
        self.size = (width, height)
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = writer
        self._tmp = tmp

    def write(self, frame: np.ndarray) -> None:
        """Append one frame [H, W, 3] BGR uint8 (gray/BGRA converted, never resized).

        Raises:
            SourceError: the writer is closed or the frame size differs from ``size``.
        """
        if self._writer is None:
            raise SourceError(f"video writer already closed: {self.path}")
        frame = to_bgr8(frame)
        H, W = frame.shape[:2]
        if self.size != (W, H):
            width, height = self.size
            raise SourceError(
                f"frame size {W}x{H} differs from the video size {width}x{height}: {self.path}"
            )
        self._writer.write(frame)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it over ``path`` (removed instead when no frame
        was written); safe to call twice.

        Raises:
            SourceError: the finished video cannot be moved into place; it is kept
                under its temporary name, which the message gives.
        """
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.release()
        if self.frames_written == 0:
            with contextlib.suppress(OSError):
                os.remove(self._tmp)
            return
        try:
            os.chmod(self._tmp, 0o644)  # mkstemp makes it owner-only
            os.replace(self._tmp, self.path)
        except OSError as err:
            raise SourceError(f"cannot write {self.path} ({err.strerror}); the video is "
                              f"kept as {self._tmp}") from None  # fmt: skip


@functools.lru_cache(maxsize=1)
def _opencv_has_gui() -> bool:
    """False for OpenCV builds without a GUI backend (the -headless wheels)."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI":
            return value.strip().upper() not in ("NONE", "NO", "")
    return True


def open_window_possible() -> bool:
    """True only when ``cv2.imshow`` can open a window: a GUI build, and on Linux
    and other X11/Wayland systems a DISPLAY or WAYLAND_DISPLAY to draw on."""
    if not _opencv_has_gui():
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
