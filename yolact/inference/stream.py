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

import threading
from collections.abc import Generator, Iterator
from types import TracebackType

from yolact.inference.pipeline import Pipeline, SkipHandler, StreamResult
from yolact.inference.protocol import StagedPredictor
from yolact.inference.sources import SourceSpec, open_source, split_sources
from yolact.inference.tracking import TRACK_IOU_KINDS, StreamTracker
from yolact.io.pipeline import StageTimes
from yolact.io.sources import FrameSource
from yolact.tracking import TrackerOptions

__all__ = ["Stream", "StreamResult", "stream"]


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

    Returns:
        A :class:`Stream`: iterate it; it is also a context manager.

    Raises:
        ValueError: an unknown ``track_iou`` or a negative ``track_buffer``.
        yolact.io.images.InputError: a source that cannot be opened (missing, empty
            folder, unreachable stream), at once; a frame that cannot be read or
            used, during the iteration, after the results before it.
    """
    if track_iou not in TRACK_IOU_KINDS:
        raise ValueError(f"track_iou must be 'box' or 'mask', got {track_iou!r}")
    sources: list[FrameSource] = []
    try:
        for spec in split_sources(source):
            sources.append(open_source(spec))
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
    pipeline = Pipeline(predictor, sources, batch_size, max_frames, stop, on_skip, tracker)
    return Stream(pipeline)
