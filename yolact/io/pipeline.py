"""Overlapping the stages of a video run: a stage on its own thread, and stage timings.

A live video run has three stages: reading and decoding (``FrameReader``'s
thread), the network (the main thread), and post-processing, drawing and
encoding (a :class:`StageThread`). Queues between them are bounded, so a slow
stage holds the others back instead of filling memory, and the frame rate
approaches that of the slowest stage rather than the sum of all three.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from yolact.io.images import InputError
from yolact.io.sources import one_line

_END = object()


class StageError(RuntimeError):
    """A stage thread failed with an unexpected error; the message is one line."""


@dataclass
class StageTimes:
    """Seconds spent in each named stage, and the frames that went through.

    Stages may run on different threads; each adds its own time.
    """

    seconds: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name`` (thread-safe)."""
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time the block into stage ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def per_frame_ms(self) -> dict[str, float]:
        """Milliseconds per frame of every stage (empty before the first frame)."""
        if self.frames <= 0:
            return {}
        return {name: 1000.0 * s / self.frames for name, s in self.seconds.items()}

    def summary(self, wall_s: float) -> str:
        """One line: ``stages per frame: read 1.0 ms, network 9.8 ms, ...; 42.1 FPS overall``.

        Args:
            wall_s: the run's wall-clock seconds (the stages overlap, so their sum
                exceeds it when the overlap works).
        """
        parts = ", ".join(f"{name} {ms:.1f} ms" for name, ms in self.per_frame_ms().items())
        fps = self.frames / wall_s if wall_s > 0 and self.frames else 0.0
        return f"stages per frame: {parts or 'none'}; {fps:.1f} FPS overall"


class StageThread:
    """Runs ``fn(item)`` on its own thread for every item put, in the order put.

    At most ``max_queue`` items wait; ``put`` blocks while the queue is full. The
    first exception in ``fn`` stops the stage: the items still queued are
    dropped and the error is raised in the producer by its next ``put``,
    ``check`` or ``finish`` (an :class:`~yolact.io.images.InputError` as it is,
    anything else as a one-line :class:`StageError` naming the stage).

    Args:
        fn: the work for one item.
        name: the stage's name in errors and in the thread's name.
        max_queue: items waiting at most (>= 1).
        context: a factory of a context entered around the thread's whole run
            (``torch.no_grad``: grad mode is per thread).
    """

    def __init__(
        self,
        fn: Callable[[Any], None],
        name: str,
        max_queue: int = 2,
        context: Callable[[], Any] | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.name = name
        self._fn = fn
        self._context = context
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"yolact-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._context is None:
            self._loop()
            return
        with self._context():
            self._loop()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END or self._abort.is_set():
                return
            try:
                self._fn(item)
            except Exception as err:
                if isinstance(err, InputError):
                    self._error = err
                else:
                    self._error = StageError(f"{self.name} failed: {one_line(err)}")
                self._abort.set()
                self._drain()
                return

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def check(self) -> None:
        """Raise the stage's error, if it failed."""
        if self._error is not None:
            raise self._error

    def put(self, item: Any) -> None:
        """Queue ``item``, waiting while the queue is full.

        Raises:
            StageError, InputError: the stage failed (the item is not queued).
        """
        while True:
            self.check()
            if self._abort.is_set():
                self.check()
                return
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self, timeout_s: float | None = None) -> None:
        """Let the stage work through every queued item, then end it.

        Raises:
            StageError, InputError: the stage failed.
        """
        self.put(_END)
        self._thread.join(timeout_s)
        self.check()

    def abort(self, timeout_s: float = 5.0) -> None:
        """End the stage after the item in progress, dropping the rest; waits for it."""
        self._abort.set()
        self._drain()
        with suppress(queue.Full):
            self._queue.put_nowait(_END)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread.is_alive()
