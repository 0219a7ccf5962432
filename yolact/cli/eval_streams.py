"""eval.py's video runs over one or more sources: flags, sources, outputs and figures.

``eval.py --video=SRC1,SRC2,...`` (or ``--streams=FILE``) opens every source,
runs them all through one :func:`yolact.inference.stream` call and writes each
source's drawings to its own OUT; sources without an OUT share one window (a
grid) where a display exists. The helpers here keep :mod:`yolact.cli.eval_cli`
short.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from yolact.cli.eval_args import EvalOptions
from yolact.cli.predictors import UsageError
from yolact.cli.video_list import VideoItem
from yolact.inference.outputs import GridWindow, VideoReport
from yolact.inference.stream import Stream
from yolact.io.sources import VideoSource, one_line, redact
from yolact.io.video import VideoWriter

DEFAULT_BATCH_WAIT_MS = 5.0


def check_stream_flags(args: EvalOptions) -> None:
    """Refuse ``--detect_fps``, ``--batch_wait_ms`` and ``--reconnect`` values that cannot
    be used, and their use without ``--video``/``--streams`` (one line, before the model
    is built)."""
    fps = args.detect_fps
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UsageError(f"--detect_fps must be a positive number of frames per second, got {fps}")
    wait = args.batch_wait_ms
    if not (math.isfinite(wait) and wait >= 0):
        raise UsageError(f"--batch_wait_ms must be a number of milliseconds >= 0, got {wait}")
    if args.reconnect < 0:
        raise UsageError(f"--reconnect must be a number of tries >= 0, got {args.reconnect}")
    if args.video or args.streams:
        return
    given = [
        flag
        for flag, used in (
            ("--detect_fps", fps is not None),
            ("--batch_wait_ms", wait != DEFAULT_BATCH_WAIT_MS),
            ("--reconnect", args.reconnect != 0),
        )
        if used
    ]
    if given:
        raise UsageError(f"{given[0]} goes with --video or --streams")


def event_printer() -> Callable[[int, str], None]:
    """The ``on_event`` of a run: one ``note: source N: ...`` line on stderr for each
    drop, reconnection attempt and outcome of a live source (the message names it)."""

    def on_event(source_index: int, message: str) -> None:
        print(f"note: source {source_index}: {one_line(message)}", file=sys.stderr, flush=True)

    return on_event


def stream_options(args: EvalOptions) -> dict[str, Any]:
    """The scheduling keywords of :func:`yolact.inference.stream` for the flags."""
    return {
        "detect_fps": args.detect_fps,
        "batch_wait": args.batch_wait_ms / 1000.0,
        "reconnect": args.reconnect,
        "on_event": event_printer(),
    }


def open_sources(items: Sequence[VideoItem]) -> list[VideoSource]:
    """Open every source, in order (a webcam or stream opened so keeps its spec, and
    ``stream(reconnect=N)`` can open it again when it drops).

    Raises:
        SourceError: the first source that cannot be opened (one line); the ones
            opened before it are closed again.
    """
    sources: list[VideoSource] = []
    try:
        for item in items:
            sources.append(VideoSource.open(item.src))
    except BaseException:
        close_sources(sources)
        raise
    return sources


def close_sources(sources: Sequence[VideoSource]) -> None:
    """Close the sources of ``open_sources`` (safe twice)."""
    for source in sources:
        source.close()


def open_writers(
    items: Sequence[VideoItem],
    sources: Sequence[Any],
    detect_fps: float | None,
    make: Callable[[str, float, tuple[int, int]], Any] = VideoWriter,
) -> list[Any]:
    """One :class:`VideoWriter` per source with an OUT (None for the others).

    A file's rate is its source's; a live source capped by ``detect_fps`` gets the
    lower of the two (the frames it writes per second). On a failure the writers
    opened are closed (nothing written) and it is raised.

    Args:
        items: the run's sources and their OUTs.
        sources: the opened sources of the stream, same order (``Stream.sources``).
        detect_fps: the ``--detect_fps`` cap, None without one.
        make: opens one writer (``path, fps, (width, height)``).
    """
    writers: list[Any] = []
    try:
        for item, source in zip(items, sources):
            if item.out is None:
                writers.append(None)
                continue
            fps = float(source.fps)
            if detect_fps is not None and source.is_live:
                fps = min(fps, detect_fps)
            writers.append(make(item.out, fps, (source.width, source.height)))
    except BaseException:
        close_writers(writers)
        raise
    return writers


def close_writers(writers: Sequence[Any]) -> None:
    """Finish every writer; the first error is raised after all were closed."""
    first: BaseException | None = None
    for writer in writers:
        if writer is None:
            continue
        try:
            writer.close()
        except BaseException as err:
            first = first or err
    if first is not None:
        raise first


def grid_window(
    items: Sequence[VideoItem], sources: Sequence[Any], display: bool, possible: bool
) -> GridWindow | None:
    """The window of a run, or None: the sources without an OUT (all with
    ``--display``) in one grid, where a window can be opened (``possible``, see
    :func:`yolact.io.video.open_window_possible`)."""
    shown = [k for k, item in enumerate(items) if display or item.out is None]
    if not shown or not possible:
        return None
    title = (
        f"yolact: {redact(items[0].src)}" if len(items) == 1 else f"yolact: {len(items)} sources"
    )
    return GridWindow(title, shown, [(sources[k].width, sources[k].height) for k in shown])


def note_not_shown(items: Sequence[VideoItem], window: GridWindow | None) -> None:
    """A ``note:`` line naming the sources that are neither written nor shown."""
    hidden = [redact(item.src) for k, item in enumerate(items)
              if item.out is None and (window is None or not window.shows(k))]  # fmt: skip
    if len(items) == 1 and hidden:
        print("note: no display here and no output file given; detections are only counted",
              file=sys.stderr)  # fmt: skip
    elif hidden:
        print(f"note: no display here and no OUT for {', '.join(hidden)}; their detections "
              "are only counted", file=sys.stderr)  # fmt: skip


def report_video(
    s: Stream,
    report: VideoReport,
    names: Sequence[str],
    items: Sequence[VideoItem],
    outs: Sequence[Any],
    wall_s: float,
) -> None:
    """The lines a finished video run prints: counts, each source's figures, stage
    timings, notes, the files written.

    Args:
        s: the run's stream, ended.
        report: what ``write_video`` counted.
        names: each source's name for messages (credentials hidden).
        items: the sources and their OUTs.
        outs: each source's writer (None: no OUT).
        wall_s: seconds the run took.
    """
    rate = f", {report.fps:.1f} FPS" if report.fps else ""
    extra = f", {s.dropped} stale frames dropped" if s.dropped else ""
    what = names[0] if len(names) == 1 else f"{len(names)} sources"
    print(f"{what}: processed {report.processed} frames, {report.detections} detections"
          f"{rate}{extra}")  # fmt: skip
    for stats in s.source_stats():
        print(stats.line())
    print(s.times.summary(wall_s))
    if s.ended_early and not s.stopped:
        which = f"the stream {names[0]}" if len(names) == 1 else "a stream"
        print(f"note: {which} ended or dropped; kept what was processed", file=sys.stderr)
    for item, out in zip(items, outs):
        if out is not None and out.frames_written:
            print(f"wrote {item.out} ({out.frames_written} frames)")
        elif out is not None:
            print(f"note: no frame was processed; {item.out} not written", file=sys.stderr)
