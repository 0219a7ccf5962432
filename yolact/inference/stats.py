"""Per-source figures of a stream: frames delivered, processed and dropped, FPS, latency.

:class:`SourceStats` is what :meth:`yolact.inference.stream.Stream.source_stats`
returns; :class:`StatsBook` collects the counts behind it while the stream runs
(the scheduler, the readers and the consumer write it from their own threads).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["LATENCY_WINDOW", "SourceStats", "StatsBook", "percentile"]

LATENCY_WINDOW = 100_000  # latencies kept per source: the percentiles are of the latest


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of ``values``, linearly interpolated between the
    two nearest ranks (numpy's default method); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class SourceStats:
    """The figures of one source of a stream.

    Once the run has ended (iteration finished, ``close()``), ``delivered ==
    processed + dropped``: a frame that was read but never returned (left waiting at
    a stop, in flight when the consumer left, an unreadable image of a folder) is
    counted as dropped. While the run goes on, ``delivered - processed - dropped``
    is the number of frames in flight (waiting in the reader, in the network, in
    post-processing or in the result queue).

    Attributes:
        source_index: the source's position in the list given to ``stream``.
        name: the source's name (a URL's credentials hidden).
        delivered: frames the source gave (read by its reader, dropped ones counted).
        processed: results returned for it.
        dropped: frames never processed: stale (a newer frame replaced it), over the
            ``detect_fps`` cap, or left over at the end (see above).
        fps: processed frames per second of the run's wall time so far.
        latency_p50_ms: median milliseconds from a frame's capture (read from its
            source) to its result being handed to the consumer, over its latest
            100,000 results (about an hour at 30 FPS); None when nothing was processed.
        latency_p95_ms: the 95th percentile of the same; None when nothing was processed.
        reconnects: successful reconnections of a dropped live stream.
    """

    source_index: int
    name: str
    delivered: int
    processed: int
    dropped: int
    fps: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    reconnects: int

    def line(self) -> str:
        """One human line: ``source 1 rtsp://cam/2: 450 delivered, 441 processed, ...``."""
        if self.latency_p50_ms is None or self.latency_p95_ms is None:
            latency = "latency n/a"
        else:
            latency = f"latency p50 {self.latency_p50_ms:.0f} ms p95 {self.latency_p95_ms:.0f} ms"
        plural = "" if self.reconnects == 1 else "s"
        return (
            f"source {self.source_index} {self.name}: {self.delivered} delivered, "
            f"{self.processed} processed, {self.dropped} dropped, {self.fps:.1f} FPS, "
            f"{latency}, {self.reconnects} reconnect{plural}"
        )


@dataclass
class _Counts:
    """The running counts of one source (guarded by the book's lock)."""

    processed: int = 0
    capped: int = 0  # dropped by the detect_fps cap
    left_over: int = 0  # read but never returned, counted when the run ends
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))


class StatsBook:
    """Collects the figures of every source of one run (thread-safe).

    The readers' own counts (frames read, stale frames dropped) and the reconnect
    counts are read through the callables given, so nothing is counted twice.

    Args:
        names: the sources' names, in order.
        now: the clock (seconds, monotonic).
    """

    def __init__(self, names: Sequence[str], now: Callable[[], float]) -> None:
        self.names = list(names)
        self._now = now
        self._lock = threading.Lock()
        self._counts = [_Counts() for _ in self.names]
        self._started: float | None = None
        self._ended: float | None = None

    def _clock(self) -> float:
        return float(self._now())

    def start(self) -> None:
        """Mark the start of the run (the FPS figures count from here)."""
        with self._lock:
            if self._started is None:
                self._started = self._clock()

    def capped(self, source_index: int) -> None:
        """A frame of the source was dropped by the ``detect_fps`` cap."""
        with self._lock:
            self._counts[source_index].capped += 1

    def returned(self, source_index: int, captured: float) -> None:
        """A result of the source, captured at ``captured``, was handed to the consumer now."""
        now = self._clock()
        with self._lock:
            counts = self._counts[source_index]
            counts.processed += 1
            counts.latencies.append(now - captured)

    def end(self, delivered: Sequence[int], stale: Sequence[int]) -> None:
        """Mark the end of the run: frames read but never returned become dropped."""
        now = self._clock()
        with self._lock:
            if self._ended is not None:
                return
            self._ended = now
            for counts, got, old in zip(self._counts, delivered, stale):
                counts.left_over = max(0, got - counts.processed - counts.capped - old)

    def snapshot(
        self, delivered: Sequence[int], stale: Sequence[int], reconnects: Sequence[int]
    ) -> list[SourceStats]:
        """The figures now, one :class:`SourceStats` per source, in order.

        Args:
            delivered: frames each source's reader has read.
            stale: frames each reader dropped because a newer one replaced them.
            reconnects: successful reconnections of each source.
        """
        now = self._clock()
        with self._lock:
            start = self._started if self._started is not None else now
            stop = self._ended if self._ended is not None else now
            elapsed = max(stop - start, 0.0)
            out = []
            for i, counts in enumerate(self._counts):
                p50 = percentile(counts.latencies, 50.0)
                p95 = percentile(counts.latencies, 95.0)
                out.append(
                    SourceStats(
                        source_index=i,
                        name=self.names[i],
                        delivered=delivered[i],
                        processed=counts.processed,
                        dropped=stale[i] + counts.capped + counts.left_over,
                        fps=counts.processed / elapsed if elapsed > 0 else 0.0,
                        latency_p50_ms=None if p50 is None else p50 * 1000.0,
                        latency_p95_ms=None if p95 is None else p95 * 1000.0,
                        reconnects=reconnects[i],
                    )
                )
            return out
