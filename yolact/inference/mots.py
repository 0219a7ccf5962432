"""A stream whose tracked results are also collected for a MOTS export."""

from __future__ import annotations

from collections.abc import Callable

from yolact.inference.stream import Stream, StreamResult
from yolact.io.mots import MotsWriter


class RecordingStream(Stream):
    """The same stream (pipeline, figures, ``close``, ``stop``), handing each result to
    ``record`` before returning it.

    Args:
        inner: the stream to read; use this object in its place from now on.
        record: called with each result, on the consumer's thread, in order.
    """

    def __init__(self, inner: Stream, record: Callable[[StreamResult], None]) -> None:
        vars(self).update(vars(inner))  # the same pipeline, results and figures
        self._record = record

    def __next__(self) -> StreamResult:
        r = super().__next__()
        self._record(r)
        return r


def record_mots(s: Stream, writer: MotsWriter) -> Stream:
    """``s``, adding each result's tracked detections to ``writer`` as it is returned.

    Args:
        s: a stream opened with ``track=...``.
        writer: collects the frames (``frame_index``, ``source_index``).

    Returns:
        The stream to iterate instead of ``s``.
    """
    return RecordingStream(s, lambda r: writer.add(r.detections, r.frame_index, r.source_index))
