"""Reconnecting a dropped live source: backoff on a virtual clock (count and times of
the attempts), the count reset by a frame, giving up, and a stop during a pause."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from yolact.inference.clock import VirtualClock
from yolact.inference.reconnect import ReconnectingSource, backoff_s
from yolact.io.sources import SourceError


class FakeLive:
    """A live source that gives ``n`` frames (numbered from ``first``), then ends
    (or fails, with ``fail``)."""

    is_live = True

    def __init__(self, name: str, first: int, n: int, fail: bool = False) -> None:
        self.name, self.fps = name, 12.0
        self.next, self.stop, self.fail = first, first + n, fail
        self.closed = False

    def read(self) -> np.ndarray | None:
        if self.next >= self.stop:
            if self.fail:
                raise SourceError("error reading cam: broken pipe")
            return None
        self.next += 1
        return np.full((2, 2, 3), self.next - 1, np.uint8)

    def close(self) -> None:
        self.closed = True


class Opener:
    """Reopens the camera: ``plan`` says, per attempt, how many frames the new
    connection gives (None: the attempt fails). Records the time of each attempt."""

    def __init__(self, clock: VirtualClock, plan: list[int | None]) -> None:
        self.clock, self.plan, self.times = clock, list(plan), []
        self.frame = 0
        self.opened: list[FakeLive] = []

    def __call__(self) -> FakeLive:
        self.times.append(self.clock.now())
        n = self.plan.pop(0)
        if n is None:
            raise SourceError("cannot connect to stream cam (refused, unreachable or no answer)")
        self.opened.append(FakeLive("cam", self.frame, n))
        return self.opened[-1]


def read_all(source: ReconnectingSource) -> list[int]:
    values = []
    while (frame := source.read()) is not None:
        values.append(int(frame[0, 0, 0]))
    return values


def test_backoff_doubles_from_half_a_second_to_eight() -> None:
    assert [backoff_s(k) for k in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_reconnects_with_backoff_then_gives_up() -> None:
    """Drop after 2 frames; attempts at +0.5, +1.5, +3.5 s (the first two fail, the
    third gives 3 frames); after that drop the count starts again: +0.5 s works (1
    frame), then three failures (0.5, 1, 2 s apart) and it gives up."""
    clock = VirtualClock()
    events: list[str] = []
    opener = Opener(clock, [None, None, 3, 1, None, None, None])
    first = FakeLive("cam", 0, 2)
    source = ReconnectingSource(first, opener, 3, clock, events.append)
    assert read_all(source) == [0, 1, 0, 1, 2, 0]  # each connection's frames from 0
    assert opener.times == [0.5, 1.5, 3.5, 4.0, 4.5, 5.5, 7.5]
    assert clock.pauses == [
        (0.0, 0.5), (0.5, 1.0), (1.5, 2.0), (3.5, 0.5), (4.0, 0.5), (4.5, 1.0), (5.5, 2.0)
    ]  # fmt: skip
    assert source.reconnects == 2 and first.closed and all(s.closed for s in opener.opened)
    refused = "did not reopen (cannot connect to stream cam (refused, unreachable or no answer))"
    assert events == [
        "cam ended; reconnecting in 0.5 s (attempt 1 of 3)",
        f"cam {refused}; reconnecting in 1 s (attempt 2 of 3)",
        f"cam {refused}; reconnecting in 2 s (attempt 3 of 3)",
        "cam reconnected (attempt 3)",
        "cam ended; reconnecting in 0.5 s (attempt 1 of 3)",
        "cam reconnected (attempt 1)",
        "cam ended; reconnecting in 0.5 s (attempt 1 of 3)",
        f"cam {refused}; reconnecting in 1 s (attempt 2 of 3)",
        f"cam {refused}; reconnecting in 2 s (attempt 3 of 3)",
        f"cam {refused}; giving up after 3 attempts",
    ]


def test_a_read_error_is_a_drop() -> None:
    clock = VirtualClock()
    events: list[str] = []
    opener = Opener(clock, [2, None])
    source = ReconnectingSource(FakeLive("cam", 0, 1, fail=True), opener, 1, clock, events.append)
    assert len(read_all(source)) == 3 and source.reconnects == 1
    assert events[0] == (
        "cam failed (error reading cam: broken pipe); reconnecting in 0.5 s (attempt 1 of 1)"
    )
    assert events[-1].endswith("giving up after 1 attempt")


def test_no_retries_ends_at_the_drop() -> None:
    clock = VirtualClock()
    opener = Opener(clock, [5])
    source = ReconnectingSource(FakeLive("cam", 0, 2), opener, 0, clock)
    assert len(read_all(source)) == 2 and opener.times == [] and clock.pauses == []


def test_interrupt_ends_a_pause_at_once() -> None:
    clock = VirtualClock()
    opener = Opener(clock, [None, None, 5])
    source = ReconnectingSource(FakeLive("cam", 0, 1), opener, 3, clock)
    clock.at(1.0, source.interrupt)  # a stop during the 1 s pause before attempt 2
    assert len(read_all(source)) == 1
    assert opener.times == [0.5] and clock.now() == 1.0 and source.reconnects == 0


def test_wrapped_source_attributes_and_close() -> None:
    clock = VirtualClock()
    inner = FakeLive("rtsp://cam/1", 0, 3)
    source = ReconnectingSource(inner, Opener(clock, []), 2, clock)
    assert source.name == "rtsp://cam/1" and source.fps == 12.0 and source.is_live
    source.close()
    source.close()
    assert inner.closed and source.read() is None
    with pytest.raises(ValueError, match="reconnect must be >= 0, got -1"):
        ReconnectingSource(inner, Opener(clock, []), -1, clock)


def test_stop_event_of_virtual_pause_is_checked_first() -> None:
    clock, stop = VirtualClock(), threading.Event()
    stop.set()
    assert clock.sleep(5.0, stop) and clock.now() == 0.0 and clock.pauses == []
