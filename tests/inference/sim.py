"""Fake live sources and a fake network on a virtual clock, for the scheduler's tests.

Cameras deliver frames at virtual times (events of a
:class:`~yolact.inference.clock.VirtualClock`); the network's work moves the clock on
by its cost. Everything runs on the test's thread, on virtual time only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from yolact.inference.clock import VirtualClock
from yolact.inference.schedule import Scheduler, Taken
from yolact.inference.stats import SourceStats, StatsBook


class FakeSlot:
    """A live source's newest-frame slot, as a FrameReader keeps it."""

    def __init__(self, clock: VirtualClock, cond: threading.Condition, live: bool = True) -> None:
        self.clock, self.cond, self.live = clock, cond, live
        self.frame: tuple[int, Any, float] | None = None
        self.delivered = 0
        self.stale = 0
        self.ended = False

    def deliver(self) -> None:
        with self.cond:
            if self.frame is not None:
                self.stale += 1
            self.frame = (self.delivered, f"frame {self.delivered}", self.clock.now())
            self.delivered += 1
            self.cond.notify_all()

    def end(self) -> None:
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    @property
    def exhausted(self) -> bool:
        return self.ended and self.frame is None

    def peek(self) -> tuple[int, float] | None:
        return None if self.frame is None else (self.frame[0], self.frame[2])

    def take_captured(self) -> tuple[int, Any, float] | None:
        frame, self.frame = self.frame, None
        return frame


def camera(
    clock: VirtualClock,
    slot: FakeSlot,
    times: Iterable[float],
    end: float | None = None,
) -> None:
    """Schedule the slot's frames at ``times`` (and its end at ``end``)."""
    for t in times:
        clock.at(t, slot.deliver)
    if end is not None:
        clock.at(end, slot.end)


def every(fps: int, start: float, stop: float, offset: float = 0.0) -> list[float]:
    """Times ``offset + k / fps`` in [start, stop)."""
    times, k = [], 0
    while (t := offset + k / fps) < stop:
        if t >= start:
            times.append(t)
        k += 1
    return times


class Sim:
    """A scheduler over ``n`` fake live sources and a network that costs
    ``cost(batch size)`` seconds, run on a virtual clock until ``until``."""

    def __init__(self, n: int, cost: Callable[[int], float], **options: Any) -> None:
        self.clock = VirtualClock()
        self.cond = threading.Condition()
        self.slots = [FakeSlot(self.clock, self.cond) for _ in range(n)]
        self.stats = StatsBook([f"cam{i}" for i in range(n)], self.clock.now)
        self.capped = [0] * n
        self.sched = Scheduler(
            self.slots, self.clock, on_capped=self._capped, **options
        )  # fmt: skip
        self.cost = cost
        self.batches: list[tuple[float, list[Taken]]] = []  # (start time, frames)

    def _capped(self, i: int) -> None:
        self.capped[i] += 1
        self.stats.capped(i)

    def run(self, until: float) -> None:
        self.stats.start()
        while self.clock.now() < until:
            batch = self.sched.gather(self.cond, lambda: self.clock.now() >= until)
            if not batch:
                break
            self.batches.append((self.clock.now(), batch))
            self.clock.advance(self.cost(len(batch)))
            for item in batch:
                self.stats.returned(item.source_index, item.captured)

    def processed(self, i: int) -> list[int]:
        """The frame indices of source ``i`` that went through the network."""
        return [t.frame_index for _, b in self.batches for t in b if t.source_index == i]

    def figures(self) -> list[SourceStats]:
        delivered = [s.delivered for s in self.slots]
        stale = [s.stale for s in self.slots]
        return self.stats.snapshot(delivered, stale, [0] * len(self.slots))
