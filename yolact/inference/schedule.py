"""Which frames of which live sources go into the network's next batch.

The network never waits for every stream: :meth:`Scheduler.gather` takes every
source that has a new frame; once the first frame is ready it waits at most
``batch_wait`` for frames of other sources to join (never longer, so a stalled or
slow source cannot hold the others back), then returns at most one frame per
source and at most ``max_batch`` frames. When more sources are ready than fit,
those served least recently go first, so under overload every source gets the
same share. A ``detect_fps`` cap drops a live source's frames that come sooner
than its rate allows (see :class:`RateCap`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from yolact.inference.clock import Clock

__all__ = ["POLL_S", "RateCap", "Scheduler", "Slot", "Taken"]

POLL_S = 0.5  # the longest a wait for frames goes without checking for a stop


class Taken(NamedTuple):
    """A frame taken from a source for the network."""

    source_index: int
    frame_index: int
    image: Any
    captured: float


class Slot(Protocol):
    """A source's waiting frames as the scheduler sees them
    (:class:`~yolact.io.sources.FrameReader` is one)."""

    @property
    def live(self) -> bool:
        """Whether stale frames are dropped (only the newest waits)."""
        ...

    @property
    def exhausted(self) -> bool:
        """Whether the source ended and everything it gave was taken."""
        ...

    def peek(self) -> tuple[int, float] | None:
        """(frame index, capture time) of the next frame waiting, or None."""
        ...

    def take_captured(self) -> tuple[int, Any, float] | None:
        """The next (frame index, frame, capture time), or None if none waits."""
        ...


class RateCap:
    """At most ``fps`` frames per second of one source, by capture time.

    Time is cut into slots of ``1 / fps`` seconds starting at the first frame
    processed; a frame is processed only if it falls in a later slot than the last
    frame processed. A camera at exactly the cap so keeps its whole rate despite
    jitter in when frames are read, and a faster one is thinned to ``fps`` on average.

    Args:
        fps: the cap (> 0).
    """

    def __init__(self, fps: float) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"detect_fps must be a positive number, got {fps!r}")
        self.fps = float(fps)
        self._anchor: float | None = None
        self._last = 0

    def _slot(self, captured: float) -> int:
        assert self._anchor is not None
        return math.floor((captured - self._anchor) * self.fps + 1e-9)

    def allows(self, captured: float) -> bool:
        """Whether a frame captured at ``captured`` may be processed."""
        return self._anchor is None or self._slot(captured) > self._last

    def used(self, captured: float) -> None:
        """Record that the frame captured at ``captured`` is processed."""
        if self._anchor is None:
            self._anchor, self._last = captured, 0
        else:
            self._last = self._slot(captured)


class Scheduler:
    """Gathers the network's batches from live (and file) sources.

    Args:
        slots: the sources' waiting frames, in source order.
        clock: the clock every wait goes through.
        batch_wait: seconds to wait after the first ready frame for other sources'
            frames to join the batch (0: take what is ready now).
        max_batch: most frames per batch (None: one per source).
        detect_fps: per live source, the most frames processed per second (None: no cap).
        on_capped: called with the source index of each frame the cap drops.

    Raises:
        ValueError: a negative ``batch_wait``, ``max_batch`` < 1 or ``detect_fps`` <= 0.
    """

    def __init__(
        self,
        slots: Sequence[Slot],
        clock: Clock,
        batch_wait: float = 0.005,
        max_batch: int | None = None,
        detect_fps: float | None = None,
        on_capped: Callable[[int], None] | None = None,
    ) -> None:
        check_options(batch_wait, max_batch, detect_fps)
        self.slots = list(slots)
        self.clock = clock
        self.batch_wait = float(batch_wait)
        self.max_batch = len(self.slots) if max_batch is None else int(max_batch)
        self.caps = [
            RateCap(detect_fps) if detect_fps is not None and slot.live else None
            for slot in self.slots
        ]
        self.on_capped = on_capped
        # when each source was last served: a stamp per frame taken (-1: never), so
        # sources served in the same batch still have an order and turns rotate
        self._served = [-1] * len(self.slots)
        self._stamp = 0
        self.batches = 0

    def _ready(self) -> list[int]:
        """The sources with a frame the cap allows; the frames it refuses are dropped."""
        ready = []
        for i, slot in enumerate(self.slots):
            head = slot.peek()
            cap = self.caps[i]
            while head is not None and cap is not None and not cap.allows(head[1]):
                slot.take_captured()
                if self.on_capped is not None:
                    self.on_capped(i)
                head = slot.peek()
            if head is not None:
                ready.append(i)
        return ready

    def _active(self) -> int:
        return sum(not slot.exhausted for slot in self.slots)

    def gather(self, cond: threading.Condition, stopping: Callable[[], bool]) -> list[Taken]:
        """The next batch: one frame of each chosen source; empty once every source
        ended or ``stopping()`` is true.

        Args:
            cond: the condition the sources notify when a frame arrives or they end.
            stopping: whether to stop now (checked at every wake-up).
        """
        with cond:
            while True:
                batch = self._gather_once(cond, stopping)
                if batch is not None:
                    return batch

    def _gather_once(
        self, cond: threading.Condition, stopping: Callable[[], bool]
    ) -> list[Taken] | None:
        """One try of :meth:`gather` (``cond`` held); None when the frames chosen were
        gone by the time they were taken (the caller tries again)."""
        while True:
            if stopping():
                return []
            ready = self._ready()
            if ready:
                break
            if all(slot.exhausted for slot in self.slots):
                return []
            self.clock.wait(cond, POLL_S)
        deadline = self.clock.now() + self.batch_wait
        while len(ready) < min(self.max_batch, self._active()) and not stopping():
            left = deadline - self.clock.now()
            if left <= 0:
                break
            self.clock.wait(cond, left)
            ready = self._ready()
        chosen = sorted(ready, key=lambda i: (self._served[i], i))[: self.max_batch]
        batch = []
        for i in chosen:  # least recently served first: each gets the next stamp
            item = self.slots[i].take_captured()
            if item is None:
                continue
            cap = self.caps[i]
            if cap is not None:
                cap.used(item[2])
            self._served[i] = self._stamp
            self._stamp += 1
            batch.append(Taken(i, *item))
        self.batches += 1
        return sorted(batch) or None


def check_options(batch_wait: float, max_batch: int | None, detect_fps: float | None) -> None:
    """Refuse scheduler options that cannot work.

    Raises:
        ValueError: a negative ``batch_wait``, ``max_batch`` < 1 or ``detect_fps`` <= 0.
    """
    if not (math.isfinite(batch_wait) and batch_wait >= 0):
        raise ValueError(f"batch_wait must be >= 0 seconds, got {batch_wait!r}")
    if max_batch is not None and (isinstance(max_batch, bool) or int(max_batch) < 1):
        raise ValueError(f"max_batch must be >= 1, got {max_batch!r}")
    if detect_fps is not None:
        RateCap(detect_fps)
