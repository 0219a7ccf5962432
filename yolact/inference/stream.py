"""The streaming API: a model over images, folders, videos, webcams, streams or frames.

    >>> for r in stream(predictor, "clip.mp4"):
    ...     print(r.frame_index, len(r.detections))

Reading, the network and post-processing run on their own threads with bounded
queues between them (see :mod:`yolact.inference.pipeline`), as ``eval.py
--video`` runs. Files give every frame, in order; live sources (webcams,
streams) give the newest frame, so a slow model never lags behind. Leaving the
loop (``break``, an exception, :meth:`Stream.close`, the stream being dropped)
ends every thread; a stop request (:meth:`Stream.stop`, or the ``stop`` event set
by a signal handler such as :class:`yolact.io.stop.StopSignals`) ends reading,
and the frames already read are still returned.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterator
from functools import partial
from types import TracebackType

from yolact.inference.pipeline import Pipeline, SkipHandler, StreamResult
from yolact.inference.protocol import StagedPredictor
from yolact.inference.reconnect import ReconnectingSource
from yolact.inference.schedule import check_options
from yolact.inference.sources import SourceSpec, open_source, split_sources
from yolact.inference.stats import SourceStats
from yolact.inference.tracking import TRACK_IOU_KINDS, StreamTracker
from yolact.io.pipeline import StageTimes
from yolact.io.sources import FrameSource, VideoSource
from yolact.tracking import TrackerOptions

__all__ = ["SourceStats", "Stream", "StreamResult", "stream"]
EventHandler = Callable[[int, str], None]


def _results(pipeline: Pipeline) -> Generator[StreamResult, None, None]:
    """The consumer's side; its ``finally`` ends every thread (also on ``close``)."""
    try:
        pipeline.start()
        yield from pipeline.results()
    finally:
        pipeline.shutdown()


class Stream(Iterator[StreamResult]):
    """An iterator of :class:`StreamResult`, with the run's figures once it ends.

    The threads start at the first ``next``; ``close`` (or ``with``) ends them.

    Attributes:
        sources: the opened frame sources, in the order given.
        times: seconds per stage (read, network, post) and the frames returned.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._results = _results(pipeline)  # holds the pipeline, never this object
        self.sources: list[FrameSource] = pipeline.sources
        self.times: StageTimes = pipeline.times

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> StreamResult:
        return next(self._results)

    def close(self) -> None:
        """End every thread now, dropping the frames in flight; safe to call twice."""
        self._results.close()
        self._pipeline.shutdown()

    def stop(self) -> None:
        """End reading; the frames already read are still returned, then iteration ends."""
        self._pipeline.cancel.set()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def processed(self) -> int:
        """Results returned so far."""
        return self._pipeline.processed

    @property
    def stopped(self) -> bool:
        """Whether a stop request ended (or will end) reading."""
        return self._pipeline.stopping

    @property
    def dropped(self) -> int:
        """Stale frames of live sources skipped to keep up."""
        return sum(r.dropped for r in self._pipeline.readers)

    @property
    def ended_early(self) -> bool:
        """Whether a live source stopped sending (disconnected or closed)."""
        return any(r.ended_early for r in self._pipeline.readers)

    def source_stats(self) -> list[SourceStats]:
        """Per-source figures, one :class:`~yolact.inference.stats.SourceStats` per
        source in the order given: during the run (frames in flight not yet counted)
        and after it (``delivered == processed + dropped``)."""
        return self._pipeline.source_stats()


def stream(
    predictor: StagedPredictor,
    source: SourceSpec,
    *,
    batch_size: int = 1,
    max_frames: int = -1,
    stop: threading.Event | None = None,
    on_skip: SkipHandler | None = None,
    track: bool | TrackerOptions = False,
    track_iou: str = "box",
    track_buffer: float = 1.0,
    detect_fps: float | None = None,
    batch_wait: float = 0.005,
    max_batch: int | None = None,
    reconnect: int = 0,
    on_event: EventHandler | None = None,
) -> Stream:
    """Run ``predictor`` over ``source``, one :class:`StreamResult` per frame.

    Args:
        predictor: any object with ``run_pre``, ``run_network``, ``run_post`` and
            ``class_names`` (:class:`yolact.Predictor`).
        source: a path (image, folder of images, video file), a webcam index
            (``0`` or ``"0"``), a stream URL, an opened
            :class:`~yolact.io.sources.VideoSource`, any iterable of BGR frames,
            or a list of sources (results then carry their ``source_index``).
        batch_size: frames per network call for files and frames (live sources: 1).
        max_frames: stop after this many frames, all sources together (-1: all).
        stop: an event that ends reading when set (a signal handler's).
        on_skip: called (on the network's thread) with the path and error of each
            image of a folder that cannot be read; such images are skipped.
        track: give the detections track ids (``r.detections.track_ids``, -1 for
            untracked ones), one tracker per source, fed in frame order: True for a
            buffer of one second at the source's frame rate (30 when unknown), or
            :class:`~yolact.tracking.TrackerOptions` to use as given.
        track_iou: "box" or "mask": what frames are matched by (with ``track=True``).
        track_buffer: seconds a lost track is kept (with ``track=True``).
        detect_fps: per live source, the most frames processed per second; the frames
            over the cap are dropped and counted (None: no cap; files are never
            dropped).
        batch_wait: with live sources, seconds the network waits after the first
            ready frame for other sources' frames to join the batch (0: take what is
            ready); a stalled source never holds the others longer than this.
        max_batch: with live sources, the most frames per network call (None: the
            number of sources); at most one frame per source per call, sources served
            least recently first.
        reconnect: how many times in a row a dropped live stream or webcam given as
            a URL or index is reopened, after 0.5 s, 1 s, 2 s, ... (at most 8 s)
            pauses; a frame read resets the count (0: never). An opened
            :class:`~yolact.io.sources.VideoSource` reconnects when it was made by
            ``VideoSource.open`` (it knows its spec); other opened sources never do.
        on_event: called (on the source's reader thread) with the source's index and
            one line for each drop, reconnection attempt and outcome.

    Returns:
        A :class:`Stream`: iterate it; it is also a context manager.

    Raises:
        ValueError: an unknown ``track_iou``, a negative ``track_buffer``,
            ``batch_wait`` or ``reconnect``, ``max_batch`` < 1 or ``detect_fps`` <= 0.
        yolact.io.images.InputError: a source that cannot be opened (missing, empty
            folder, unreachable stream), at once; a frame that cannot be read or
            used, during the iteration, after the results before it.
    """
    if track_iou not in TRACK_IOU_KINDS:
        raise ValueError(f"track_iou must be 'box' or 'mask', got {track_iou!r}")
    check_options(batch_wait, max_batch, detect_fps)
    if isinstance(reconnect, bool) or reconnect < 0:
        raise ValueError(f"reconnect must be >= 0, got {reconnect!r}")
    sources: list[FrameSource] = []
    try:
        for index, spec in enumerate(split_sources(source)):
            sources.append(_open(spec, index, reconnect, on_event))
    except BaseException:
        for opened in sources:
            opened.close()
        raise
    tracker = None
    if track is not False:
        try:
            tracker = StreamTracker(sources, track, track_iou, track_buffer)
        except BaseException:
            for opened in sources:
                opened.close()
            raise
    pipeline = Pipeline(
        predictor, sources, batch_size, max_frames, stop, on_skip, tracker,
        detect_fps=detect_fps, batch_wait=batch_wait, max_batch=max_batch,
    )  # fmt: skip
    return Stream(pipeline)


def _open(
    spec: SourceSpec, index: int, reconnect: int, on_event: EventHandler | None
) -> FrameSource:
    """Open one source; a live one that can be opened again (a URL or webcam index,
    or a :class:`~yolact.io.sources.VideoSource` made by ``VideoSource.open``)
    reconnects when ``reconnect`` > 0."""
    opened = open_source(spec)
    again: SourceSpec = None
    if isinstance(spec, (str, int, os.PathLike)) and not isinstance(spec, bool):
        again = spec
    elif isinstance(opened, VideoSource) and opened.spec is not None:
        again = opened.spec
    if reconnect <= 0 or not opened.is_live or again is None:
        return opened
    report = None if on_event is None else partial(on_event, index)
    return ReconnectingSource(opened, partial(open_source, again), reconnect, on_event=report)
