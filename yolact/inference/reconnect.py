"""A live source that reopens itself when it drops, with exponential backoff.

:class:`ReconnectingSource` wraps an opened webcam or stream and a way to open it
again. When a read ends or fails it waits 0.5 s, 1 s, 2 s, ... (at most 8 s) and
reopens, up to ``retries`` times in a row; a frame read resets the count. The
frames keep their numbering across reconnections (the reader counts them), the
other sources of a stream go on meanwhile, and each drop, attempt and outcome is
reported through ``on_event``. Once the tries are used up, reading ends as a
dropped live source does without reconnecting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from yolact.inference.clock import Clock, RealClock
from yolact.io.images import InputError
from yolact.io.sources import FrameSource, one_line

__all__ = ["BACKOFF_MAX_S", "BACKOFF_START_S", "ReconnectingSource", "backoff_s"]

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 8.0


def backoff_s(attempt: int) -> float:
    """Seconds to wait before reconnection ``attempt`` (1-based): 0.5, 1, 2, 4, 8, 8, ..."""
    return min(BACKOFF_START_S * 2.0 ** max(attempt - 1, 0), BACKOFF_MAX_S)


class ReconnectingSource:
    """A live frame source that reopens itself when its stream drops.

    Args:
        source: the opened live source.
        reopen: opens the same source again (raises
            :class:`~yolact.io.images.InputError` when it cannot).
        retries: reconnection attempts in a row before giving up (>= 0).
        clock: what the pauses between attempts run on.
        on_event: called with one line for each drop, attempt and outcome.

    Attributes:
        reconnects: successful reconnections so far.
        attempts: reconnection attempts since the last frame read.
    """

    def __init__(
        self,
        source: FrameSource,
        reopen: Callable[[], FrameSource],
        retries: int,
        clock: Clock | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError(f"reconnect must be >= 0, got {retries}")
        self._source: FrameSource | None = source
        self._last: FrameSource = source
        self._reopen = reopen
        self.retries = int(retries)
        self.clock: Clock = clock if clock is not None else RealClock()
        self._on_event = on_event
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.name = source.name
        self.reconnects = 0
        self.attempts = 0

    @property
    def is_live(self) -> bool:
        """Always True: only live sources reconnect."""
        return True

    def __getattr__(self, attr: str) -> Any:
        """The wrapped source's other attributes (``fps``, ``kind``, ``width``...)."""
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self._last, attr)

    def _event(self, message: str) -> None:
        if self._on_event is not None:
            self._on_event(message)

    def read(self) -> Any:
        """The next frame; after a drop, the first frame of the reopened source; None
        once the tries are used up or the source is closed."""
        while not self._halt.is_set():
            source = self._source
            why = "ended"
            if source is not None:
                try:
                    frame = source.read()
                except InputError as err:
                    frame, why = None, f"failed ({one_line(err)})"
                if frame is not None:
                    self.attempts = 0
                    return frame
                self._drop(source)
            if self._halt.is_set() or not self._reconnect(why):
                return None
        return None

    def _drop(self, source: FrameSource) -> None:
        with self._lock:
            if self._source is source:
                self._source = None
        with suppress(Exception):
            source.close()

    def _reconnect(self, why: str) -> bool:
        """Reopen with backoff; True once reopened, False when out of tries or halted."""
        while self.attempts < self.retries:
            self.attempts += 1
            delay = backoff_s(self.attempts)
            self._event(
                f"{self.name} {why}; reconnecting in {delay:g} s "
                f"(attempt {self.attempts} of {self.retries})"
            )
            if self.clock.sleep(delay, self._halt):
                return False
            try:
                source = self._reopen()
            except InputError as err:
                why = f"did not reopen ({one_line(err)})"
                continue
            with self._lock:
                if self._halt.is_set():
                    source.close()
                    return False
                self._source = self._last = source
            self.reconnects += 1
            self._event(f"{self.name} reconnected (attempt {self.attempts})")
            return True
        if self.retries:
            plural = "" if self.retries == 1 else "s"
            self._event(f"{self.name} {why}; giving up after {self.retries} attempt{plural}")
        return False

    def interrupt(self) -> None:
        """End a pause between attempts now; reading then ends."""
        self._halt.set()

    def close(self) -> None:
        """Stop reconnecting and close the current source; safe to call twice."""
        self._halt.set()
        with self._lock:
            source, self._source = self._source, None
        if source is not None:
            source.close()
