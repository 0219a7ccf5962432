"""The clocks the stream scheduler runs on: real time, or virtual time for tests.

Every wait of the scheduler (the short wait for more frames to join a batch, the
``detect_fps`` cap) and every pause of a reconnecting source goes through a
:class:`Clock`, so the same code runs on :class:`RealClock` in a stream and on
:class:`VirtualClock` in a simulation where time moves only when the code waits.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock(Protocol):
    """What the scheduler and a reconnecting source need of time."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def wait(self, cond: threading.Condition, timeout: float) -> None:
        """Wait on ``cond`` (held by the caller) until notified or ``timeout`` seconds
        pass; callers check their condition again (a wake-up may be early)."""
        ...

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        """Pause ``seconds``; True when ``stop`` was set (the pause then ends at once)."""
        ...


class RealClock:
    """Wall time: ``time.monotonic``, ``Condition.wait``, ``Event.wait``."""

    def now(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def wait(self, cond: threading.Condition, timeout: float) -> None:
        """``cond.wait(timeout)``."""
        cond.wait(max(timeout, 0.0))

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        """``stop.wait(seconds)``: True when ``stop`` was set."""
        return stop.wait(max(seconds, 0.0))


class VirtualClock:
    """Simulated time for one thread: it moves only when that thread waits or sleeps.

    Events are functions scheduled at a virtual time (:meth:`at`); a wait runs the
    events due before its deadline, in time order, and returns after the first one
    (as a notification would wake it) or at the deadline. A wait with no event
    left and no deadline raises instead of hanging.

    Args:
        start: the time the clock starts at.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.pauses: list[tuple[float, float]] = []  # (when, seconds) of each sleep()

    def now(self) -> float:
        """The virtual time."""
        return self.t

    def at(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` when virtual time reaches ``when`` (at once if it already has, at
        the next wait)."""
        heapq.heappush(self._events, (float(when), next(self._seq), fn))

    def pending(self) -> int:
        """Events not yet run."""
        return len(self._events)

    def _run_until(self, deadline: float, first_only: bool) -> bool:
        """Run the events due by ``deadline``; True if any ran."""
        ran = False
        while self._events and self._events[0][0] <= deadline:
            when, _, fn = heapq.heappop(self._events)
            self.t = max(self.t, when)
            fn()
            ran = True
            if first_only:
                return True
        return ran

    def wait(self, cond: threading.Condition, timeout: float) -> None:
        """Run the next event due within ``timeout`` and return, or move to the deadline.

        Raises:
            RuntimeError: an endless wait with nothing left to happen (a hang).
        """
        deadline = self.t + max(timeout, 0.0)
        if not self._events and timeout == float("inf"):
            raise RuntimeError("virtual clock: an endless wait with no event left")
        if not self._run_until(deadline, first_only=True):
            self.t = max(self.t, deadline)

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, running every event due on the way (work that
        takes time, such as a simulated network)."""
        deadline = self.t + max(seconds, 0.0)
        self._run_until(deadline, first_only=False)
        self.t = max(self.t, deadline)

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        """Record the pause, move time on by ``seconds`` (running the events due) and
        return whether ``stop`` is set; stops at once if it is already set."""
        if stop.is_set():
            return True
        self.pauses.append((self.t, seconds))
        deadline = self.t + max(seconds, 0.0)
        while self._events and self._events[0][0] <= deadline and not stop.is_set():
            self._run_until(self._events[0][0], first_only=True)
        if stop.is_set():
            return True
        self.t = max(self.t, deadline)
        return False
