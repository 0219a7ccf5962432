"""What eval.py makes of a stream: drawings, a video file per source, a window (a grid
of the sources, see :class:`GridWindow`), COCO results.

:func:`write_video` and :func:`write_folder` consume a
:class:`~yolact.inference.stream.Stream` on the caller's thread (windows belong
to the main thread) while reading, the network and post-processing go on
behind it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from yolact.core.structures import Detections
from yolact.inference.stream import Stream, StreamResult
from yolact.io.coco_json import CocoJsonWriter, category_ids_for
from yolact.io.grid import fit_tile, tile_grid, tile_size
from yolact.io.images import InputError
from yolact.io.pipeline import StageError
from yolact.io.render import draw_detections
from yolact.io.sources import one_line

QUIT_KEYS = (27, ord("q"), ord("Q"))


@dataclass(frozen=True)
class DrawOptions:
    """What a drawing shows: the first ``top_k`` detections, with these parts."""

    top_k: int = 5
    masks: bool = True
    boxes: bool = True
    text: bool = True
    scores: bool = True
    fps: bool = False


def shown(det: Detections, top_k: int) -> Detections:
    """The detections to draw: the first ``top_k`` (they are sorted by score)."""
    k = min(max(top_k, 0), len(det))
    return det.select(torch.arange(k, device=det.scores.device))


def draw(
    image: np.ndarray, det: Detections, opts: DrawOptions, fps: float | None = None
) -> np.ndarray:
    """``image`` with the shown detections drawn (and ``fps`` in a corner when given)."""
    return draw_detections(
        image,
        shown(det, opts.top_k),
        masks=opts.masks,
        boxes=opts.boxes,
        text=opts.text,
        scores=opts.scores,
        fps=fps,
    )


def summary(det: Detections, top_k: int) -> str:
    """One line: ``3 detections: person 0.91 [x0, y0, x1, y1]; ...`` (the shown ones listed)."""
    top = shown(det, top_k)
    parts = [
        f"{name} {score:.2f} [{', '.join(str(int(v)) for v in box)}]"
        for name, score, box in zip(top.names, top.scores.tolist(), top.boxes.tolist())
    ]
    return f"{len(det)} detections" + (": " + "; ".join(parts) if parts else "")


class FPSMeter:
    """Frames per second over a sliding window of recent frames."""

    def __init__(self, window: int = 30) -> None:
        self.times: deque[float] = deque(maxlen=window)

    def tick(self) -> float | None:
        """Count a frame; the rate so far (None before the second frame)."""
        self.times.append(time.perf_counter())
        if len(self.times) < 2:
            return None
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class FrameSink(Protocol):
    """Where drawn frames go (a :class:`~yolact.io.video.VideoWriter`)."""

    def write(self, frame: np.ndarray) -> None: ...


@dataclass
class VideoReport:
    """What a video run did: frames, detections, the last frame rate.

    ``processed`` and ``detections`` count all sources together; ``per_source``
    holds the frames of each source (by its index) and ``fps`` the rate of all
    results together over the last frames.
    """

    processed: int = 0
    detections: int = 0
    fps: float | None = None
    per_source: dict[int, int] = field(default_factory=dict)


class GridWindow:
    """One window showing the newest drawing of each of some sources, in a grid.

    With one source it shows that source's drawings as they are.

    Args:
        title: the window's title.
        sources: the indices of the sources shown, in grid order.
        sizes: (width, height) of each shown source's frames, same order.
    """

    def __init__(
        self, title: str, sources: Sequence[int], sizes: Sequence[tuple[int, int]]
    ) -> None:
        self.title = title
        self.place = {index: k for k, index in enumerate(sources)}
        self.size = tile_size(list(sizes))
        self.tiles: list[np.ndarray | None] = [None] * len(self.place)

    def shows(self, source_index: int) -> bool:
        """Whether the source's drawings go to this window."""
        return source_index in self.place

    def show(self, source_index: int, drawing: np.ndarray) -> None:
        """Put ``drawing`` in its source's tile and show the grid."""
        k = self.place[source_index]
        if len(self.tiles) == 1:
            cv2.imshow(self.title, drawing)
            return
        self.tiles[k] = fit_tile(drawing, self.size)
        cv2.imshow(self.title, tile_grid(self.tiles, self.size))


def write_video(
    s: Stream,
    opts: DrawOptions,
    video_outs: Sequence[FrameSink | None] = (),
    window: GridWindow | None = None,
    json_writer: CocoJsonWriter | None = None,
    class_names: Any = (),
    on_frame: Callable[[], None] | None = None,
) -> VideoReport:
    """Draw and write every result of ``s``; the stream is closed on the way out.

    Args:
        s: the stream of one or more video sources.
        opts: what the drawings show (``opts.fps``: each source's frame rate in a corner).
        video_outs: where each source's drawings are written, in order, by the
            source's index (None or missing: not written).
        window: shows the drawings of its sources (quit keys: Esc, q); None: no window.
        json_writer: collects the detections (``image_id`` = the frame's index in
            its source, ``source`` = the source's index, ``file_name`` = the source
            name's last part).
        class_names: the predictor's, for the COCO category ids.
        on_frame: called after each frame (a progress bar).

    Raises:
        StageError: drawing or writing failed (one line); an
            :class:`~yolact.io.images.InputError` as it is.
    """
    report, meter = VideoReport(), FPSMeter()
    meters: dict[int, FPSMeter] = {}
    ids = category_ids_for(class_names) if json_writer is not None else []
    with s:
        for r in s:
            i = r.source_index
            report.processed += 1
            report.per_source[i] = report.per_source.get(i, 0) + 1
            report.detections += len(r.detections)
            report.fps = meter.tick() or report.fps
            fps = meters.setdefault(i, FPSMeter()).tick() if opts.fps else None
            out = video_outs[i] if i < len(video_outs) else None
            with s.times.timed("draw+write"):
                _write_frame(r, opts, fps, out, window, json_writer, ids)
            if window is not None and (cv2.waitKey(1) & 0xFF) in QUIT_KEYS:
                s.stop()  # what was read is still drawn and written
            if on_frame is not None:
                on_frame()
    return report


def _write_frame(
    r: StreamResult,
    opts: DrawOptions,
    fps: float | None,
    video_out: FrameSink | None,
    window: GridWindow | None,
    json_writer: CocoJsonWriter | None,
    ids: list[int],
) -> None:
    try:
        if json_writer is not None:
            json_writer.add(r.detections, r.frame_index, os.path.basename(r.source), ids,
                            source=r.source_index)  # fmt: skip
        shown = window is not None and window.shows(r.source_index)
        if video_out is None and not shown:
            return
        drawing = draw(r.image, r.detections, opts, fps)
        if video_out is not None:
            video_out.write(drawing)
        if window is not None and shown:
            window.show(r.source_index, drawing)
    except InputError:
        raise
    except Exception as err:
        raise StageError(f"drawing and writing failed: {one_line(err)}") from None


def write_folder(
    s: Stream,
    out_dir: str,
    names: list[str],
    opts: DrawOptions,
    write_image: Callable[[str, np.ndarray], None],
    json_writer: CocoJsonWriter | None = None,
    class_names: Any = (),
    on_frame: Callable[[], None] | None = None,
) -> int:
    """Draw every result of a folder's stream into ``out_dir``; returns how many.

    Args:
        s: the stream of an :class:`~yolact.inference.sources.ImageFiles` source.
        out_dir: the drawings' folder.
        names: the drawing's file name of each image of the folder's listing.
        opts: what the drawings show.
        write_image: writes one drawing (``path, image``).
        json_writer: collects the detections (``image_id`` = place in the listing).
        class_names: the predictor's, for the COCO category ids.
        on_frame: called after each image (a progress bar).
    """
    done = 0
    ids = category_ids_for(class_names) if json_writer is not None else []
    with s:
        for r in s:
            if json_writer is not None:
                json_writer.add(r.detections, r.frame_index, os.path.basename(r.source), ids)
            write_image(
                os.path.join(out_dir, names[r.frame_index]), draw(r.image, r.detections, opts)
            )
            done += 1
            if on_frame is not None:
                on_frame()
    return done
