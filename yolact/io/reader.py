"""``FrameReader``: a frame source read on its own thread (re-exported by
:mod:`yolact.io.sources`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque

import numpy as np

from yolact.io.images import ClosesOnExit
from yolact.io.source_base import FrameSource, SourceError, one_line

__all__ = ["FrameReader"]


class FrameReader(ClosesOnExit):
    """Reads a ``VideoSource`` on a background thread; iterate for (index, frame).

    ``index`` is the source frame number (0-based, dropped frames counted).
    With ``live=False`` every frame arrives in order: the thread blocks while
    ``max_queue`` frames wait. With ``live=True`` only the newest frame is kept,
    so a slow consumer gets at most one frame behind the source; the frames
    skipped are counted in ``dropped``. Iteration ends when the source ends;
    ``ended_early`` / ``end_message`` tell when a live source dropped. An error
    in the thread is raised in the consumer as a one-line ``SourceError`` after
    the frames read before it. The thread closes the source when it exits;
    ``read_seconds`` is the time it spent reading and decoding.
    Once ``cancel`` is set, iteration ends within half a second, even while a
    live source sends nothing.

    Args:
        source: the source to read (the reader takes ownership).
        live: drop stale frames; defaults to ``source.is_live``.
        max_queue: frames buffered ahead when not live.
        cancel: an event that ends the iteration when set (a stop request).
        cond: the condition the reader notifies when a frame arrives or it ends
            (default: its own); readers that share one can be waited on together
            (see :meth:`take`).
    """

    def __init__(
        self,
        source: FrameSource,
        live: bool | None = None,
        max_queue: int = 16,
        cancel: threading.Event | None = None,
        cond: threading.Condition | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.source = source
        self.live = bool(source.is_live if live is None else live)
        self.max_queue = 1 if self.live else int(max_queue)
        self.frames_read = 0
        self.read_seconds = 0.0
        self.dropped = 0
        self.ended_early = False
        self.end_message: str | None = None
        self._frames: deque[tuple[int, np.ndarray, float]] = deque()  # (index, frame, captured)
        self._cond = cond if cond is not None else threading.Condition()
        self._stopping = False
        self._finished = False
        self._error: str | None = None
        self._cancel = cancel
        self._thread = threading.Thread(target=self._run, name="yolact-frame-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping:
                start = time.perf_counter()
                frame = self.source.read()
                captured = time.monotonic()
                self.read_seconds += time.perf_counter() - start
                with self._cond:
                    if frame is None:
                        if self.live and not self._stopping:
                            self.ended_early = True
                            self.end_message = (
                                f"live source {self.source.name} stopped after "
                                f"{self.frames_read} frames (disconnected or device closed)"
                            )
                        return
                    while len(self._frames) >= self.max_queue and not self.live:
                        if self._stopping:
                            return
                        self._cond.wait(0.5)
                    if self.live and self._frames:
                        self._frames.clear()
                        self.dropped += 1
                    self._frames.append((self.frames_read, frame, captured))
                    self.frames_read += 1
                    self._cond.notify_all()
        except Exception as err:  # handed to the consumer as a SourceError
            if isinstance(err, SourceError):
                message = one_line(err)
            else:
                message = f"error while reading {self.source.name}: {one_line(err)}"
            with self._cond:
                self._error = message
        finally:
            with contextlib.suppress(Exception):
                self.source.close()
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def __iter__(self) -> FrameReader:
        return self

    def __next__(self) -> tuple[int, np.ndarray]:
        """The next (index, frame [H, W, 3] BGR uint8); waits for the thread without spinning."""
        with self._cond:
            while not (self._frames or self._finished or self._stopping or self.cancelled):
                self._cond.wait(0.5)
            if self._stopping or self.cancelled:
                raise StopIteration
            if self._frames:
                index, frame, _ = self._frames.popleft()
                self._cond.notify_all()
                return index, frame
            if self._error is not None:
                message, self._error = self._error, None
                raise SourceError(message)
            raise StopIteration

    def take(self) -> tuple[int, np.ndarray] | None:
        """The next (index, frame) if one waits, else None; never blocks for a frame.

        Raises:
            SourceError: the thread failed (after every frame read before it was taken).
        """
        item = self.take_captured()
        return None if item is None else (item[0], item[1])

    def take_captured(self) -> tuple[int, np.ndarray, float] | None:
        """Like :meth:`take`, with the ``time.monotonic()`` at which the frame was read.

        Raises:
            SourceError: the thread failed (after every frame read before it was taken).
        """
        with self._cond:
            if self._frames:
                item = self._frames.popleft()
                self._cond.notify_all()
                return item
            self._raise_error()
            return None

    def peek(self) -> tuple[int, float] | None:
        """(index, capture time) of the next frame waiting, or None; takes nothing.

        Raises:
            SourceError: the thread failed (after every frame read before it was taken).
        """
        with self._cond:
            if self._frames:
                index, _, captured = self._frames[0]
                return index, captured
            self._raise_error()
            return None

    def _raise_error(self) -> None:
        """Raise the thread's error once it ended with one (``_cond`` held)."""
        if self._finished and self._error is not None:
            message, self._error = self._error, None
            raise SourceError(message)

    @property
    def exhausted(self) -> bool:
        """True once the reader ended (or was stopped) and every frame and error was taken."""
        with self._cond:
            ended = self._finished or self._stopping
            return ended and not self._frames and self._error is None

    @property
    def cancelled(self) -> bool:
        """True once the ``cancel`` event is set."""
        return self._cancel is not None and self._cancel.is_set()

    @property
    def running(self) -> bool:
        """True while the reader thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop reading and wait up to ``timeout_s`` for the thread to close the source.

        A thread blocked inside a stream read finishes within the stream's read
        timeout and then closes the source itself.
        """
        with self._cond:
            self._stopping = True
            self._frames.clear()
            self._cond.notify_all()
        interrupt = getattr(self.source, "interrupt", None)
        if callable(interrupt):  # a source pausing between reconnects ends the pause
            interrupt()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def close(self) -> None:
        self.stop()
