"""The threads behind :func:`yolact.inference.stream.stream`.

Reading and decoding run on one :class:`~yolact.io.sources.FrameReader` thread
per source, the network on a thread of its own, and post-processing on a
:class:`~yolact.io.pipeline.StageThread`; the consumer (the caller's thread)
takes finished results from a bounded queue. Every queue is bounded, so the
slowest stage sets the pace and memory stays flat; a live source's reader keeps
only the newest frame.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from yolact.core.structures import Detections
from yolact.inference.clock import Clock, RealClock
from yolact.inference.protocol import StagedPredictor
from yolact.inference.schedule import Scheduler, Taken
from yolact.inference.sources import ImageFiles, Skipped
from yolact.inference.stats import SourceStats, StatsBook
from yolact.inference.tracking import StreamTracker
from yolact.io.images import InputError
from yolact.io.pipeline import StageThread, StageTimes
from yolact.io.sources import FrameReader, FrameSource, redact

JOIN_TIMEOUT_S = 30.0  # the most a close waits for a batch in the network to finish
SkipHandler = Callable[[str, InputError], None]


@dataclass(frozen=True)
class StreamResult:
    """One frame and its detections.

    Attributes:
        frame_index: the frame's number in its source (0-based; a live source's
            dropped frames and a folder's unreadable images are counted).
        image: the frame as the network saw it, BGR uint8 [H, W, 3].
        detections: its :class:`~yolact.core.structures.Detections`.
        source_index: which of the sources given it came from (0 for one source).
        source: what it came from, for messages: the image's path for a folder
            or an image, else the source's name (a URL's credentials hidden).
        captured: the ``time.monotonic()`` at which the frame was read from its source.
    """

    frame_index: int
    image: np.ndarray
    detections: Detections
    source_index: int = 0
    source: str = ""
    captured: float = 0.0


@dataclass(frozen=True)
class _End:
    """The last item of the result queue; ``error`` ends the consumer with it."""

    error: BaseException | None = None


Frame = tuple[int, int, np.ndarray, float]  # (source_index, frame_index, image, captured)


class Pipeline:
    """Runs the stages for :class:`~yolact.inference.stream.Stream` (see the module doc).

    Args:
        predictor: the three stages of the model.
        sources: opened frame sources (the pipeline closes them).
        batch_size: frames per network call (1 when a source is live).
        max_frames: stop after this many frames (-1: all).
        stop: an event that ends reading when set (a stop request); frames already
            read are still processed and returned.
        on_skip: called with the path and error of a folder's unreadable image.
        tracker: gives each result's detections their track ids (None: untracked).
        detect_fps: per live source, the most frames processed per second (None: all).
        batch_wait: with live sources, seconds the network waits after the first
            ready frame for other sources' frames to join the batch.
        max_batch: with live sources, the most frames per batch (None: one per source).
        clock: what the scheduler's waits run on (default: real time).
    """

    def __init__(
        self,
        predictor: StagedPredictor,
        sources: list[FrameSource],
        batch_size: int = 1,
        max_frames: int = -1,
        stop: threading.Event | None = None,
        on_skip: SkipHandler | None = None,
        tracker: StreamTracker | None = None,
        detect_fps: float | None = None,
        batch_wait: float = 0.005,
        max_batch: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.predictor = predictor
        self.tracker = tracker
        self.sources = sources
        self.live = any(s.is_live for s in sources)
        self.batch_size = 1 if self.live else max(1, batch_size)
        self.clock: Clock = clock if clock is not None else RealClock()
        self.stats = StatsBook([s.name for s in sources], self.clock.now)
        self._schedule = (detect_fps, batch_wait, max_batch)
        self.scheduler: Scheduler | None = None
        self.max_frames = max_frames
        self.on_skip = on_skip
        self.times = StageTimes(dict.fromkeys(("read", "network", "post"), 0.0))
        self.cancel = threading.Event()  # graceful: finish what was read
        self.abort = threading.Event()  # at once: drop what is in flight
        self._stop = stop
        self._cond = threading.Condition()
        self._turn = 0
        self.readers: list[FrameReader] = []
        self.out: queue.Queue[Any] = queue.Queue(max(2, self.batch_size))
        self._post: StageThread | None = None
        self._network: threading.Thread | None = None
        self.processed = 0
        self._shut = False

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked for (``Stream.stop`` or the ``stop`` event)."""
        return self.cancel.is_set() or (self._stop is not None and self._stop.is_set())

    def start(self) -> None:
        """Start the reader, network and post-processing threads."""
        self.stats.start()
        self.readers = [FrameReader(s, cond=self._cond) for s in self.sources]
        if self.live:
            detect_fps, batch_wait, max_batch = self._schedule
            self.scheduler = Scheduler(
                self.readers, self.clock, batch_wait, max_batch, detect_fps, self.stats.capped
            )
        self._post = StageThread(self._post_batch, "post-processing", context=torch.no_grad)
        self._network = threading.Thread(target=self._run_network, name="yolact-network",
                                         daemon=True)  # fmt: skip
        self._network.start()

    def results(self) -> Iterator[StreamResult]:
        """Results in order until the sources end; raises the first stage's error."""
        while True:
            try:
                item = self.out.get(timeout=0.5)
            except queue.Empty:
                if self._network is not None and not self._network.is_alive() and self.out.empty():
                    return  # ended without an end marker: aborted
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            self.processed += 1
            self.times.frames = self.processed
            self.stats.returned(item.source_index, item.captured)
            yield item

    def shutdown(self) -> None:
        """End every thread (dropping the frames in flight) and close the sources; once."""
        if self._shut:
            return
        self._shut = True
        self.abort.set()
        with self._cond:
            self._cond.notify_all()
        for reader in self.readers:  # every reader told first, so they end together
            reader.stop(0.0)
        for reader in self.readers:
            reader.stop()
        if self._post is not None:
            self._post.abort(JOIN_TIMEOUT_S)
        if self._network is not None and self._network is not threading.current_thread():
            self._network.join(JOIN_TIMEOUT_S)
        if not self.readers:  # never started: nothing read or closed them
            for source in self.sources:
                with suppress(Exception):
                    source.close()
        self.times.add("read", sum(r.read_seconds for r in self.readers))
        self.stats.end(*self._reader_counts())

    def _reader_counts(self) -> tuple[list[int], list[int]]:
        """Frames read and stale frames dropped, per source (zeros before the start)."""
        if not self.readers:
            return [0] * len(self.sources), [0] * len(self.sources)
        return [r.frames_read for r in self.readers], [r.dropped for r in self.readers]

    def source_stats(self) -> list[SourceStats]:
        """The per-source figures so far (see :class:`~yolact.inference.stats.SourceStats`)."""
        delivered, stale = self._reader_counts()
        reconnects = [int(getattr(s, "reconnects", 0)) for s in self.sources]
        return self.stats.snapshot(delivered, stale, reconnects)

    def _halted(self) -> bool:
        return self.abort.is_set() or self.stopping

    def _next_frame(self) -> Frame | None:
        """The next frame of any source, in turn; None once all ended or on a stop."""
        n = len(self.readers)
        with self._cond:
            while not (self.abort.is_set() or self.stopping):
                active = False
                for k in range(n):
                    i = (self._turn + k) % n
                    item = self.readers[i].take_captured()
                    if item is not None:
                        self._turn = (i + 1) % n
                        return (i, *item)
                    active = active or not self.readers[i].exhausted
                if not active:
                    return None
                self._cond.wait(0.5)
        return None

    def _run_network(self) -> None:
        """The network thread: the loop, then the post-processing of what it sent, then
        the end marker (with the error that ended it, if any) for the consumer."""
        end = _End()
        try:
            with torch.no_grad():
                self._network_loop()
            if self.abort.is_set():
                return
            assert self._post is not None
            self._post.finish()
        except BaseException as err:  # handed to the consumer after the results before it
            if self._post is not None and not self.abort.is_set():
                with suppress(Exception):
                    self._post.finish()
            end = _End(err)
        finally:
            self._put(end)

    def _network_loop(self) -> None:
        """Gather frames into batches (a stop, the frame limit or the end sends a short
        one), run the network on each and hand it to post-processing."""
        assert self._post is not None
        if self.scheduler is not None:
            self._live_loop(self.scheduler)
            return
        pending: list[Frame] = []
        taken = 0
        while True:
            limit = 0 <= self.max_frames <= taken
            item = None if limit else self._next_frame()
            if item is not None:
                taken += 1
                if isinstance(item[2], Skipped):
                    if self.on_skip is not None:
                        self.on_skip(item[2].path, item[2].error)
                else:
                    pending.append(item)
                limit = 0 <= self.max_frames <= taken
                if len(pending) < self.batch_size and not (limit or self.stopping):
                    continue
            self._send(pending)
            pending = []
            if item is None or self.abort.is_set():
                return

    def _live_loop(self, scheduler: Scheduler) -> None:
        """With live sources: batches of at most one frame per source, as the
        scheduler gathers them, until the sources end, a stop or the frame limit."""
        taken = 0
        while not (0 <= self.max_frames <= taken):
            batch: list[Taken] = scheduler.gather(self._cond, self._halted)
            if not batch:
                return
            if self.max_frames >= 0:
                batch = batch[: self.max_frames - taken]
            taken += len(batch)
            pending: list[Frame] = []
            for item in batch:
                if isinstance(item.image, Skipped):
                    if self.on_skip is not None:
                        self.on_skip(item.image.path, item.image.error)
                else:
                    pending.append(item)
            self._send(pending)
            if self.abort.is_set():
                return

    def _send(self, pending: list[Frame]) -> None:
        """Run the network on a batch and hand it to post-processing."""
        if pending and not self.abort.is_set():
            assert self._post is not None
            with self.times.timed("network"):
                batch = self.predictor.run_pre([f for _, _, f, _ in pending])
                raw = self.predictor.run_network(batch)
            self._post.put((pending, raw))

    def _post_batch(self, item: tuple[list[Frame], Any]) -> None:
        """The post-processing thread's work for one batch: its results, in order."""
        frames, raw = item
        with self.times.timed("post"):
            dets = self.predictor.run_post(raw, [f.shape[:2] for _, _, f, _ in frames])
            if self.tracker is not None:
                dets = [self.tracker.apply(s, d, f) for (s, _, f, _), d in zip(frames, dets)]
        for (source_index, index, frame, captured), det in zip(frames, dets):
            name = self._frame_name(source_index, index)
            self._put(StreamResult(index, frame, det, source_index, name, captured))

    def _frame_name(self, source_index: int, index: int) -> str:
        source = self.sources[source_index]
        if isinstance(source, ImageFiles) and index < len(source.files):
            return redact(source.files[index])
        return source.name

    def _put(self, item: Any) -> None:
        """Queue a result for the consumer, giving up once the pipeline is aborted."""
        while not self.abort.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
