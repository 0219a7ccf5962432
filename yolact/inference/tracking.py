"""Track ids for the detections of a stream: one tracker per source, in frame order."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from yolact.core.structures import Detections
from yolact.io.sources import DEFAULT_FPS, FrameSource
from yolact.tracking import Tracker, TrackerOptions

TRACK_IOU_KINDS = ("box", "mask")
MASK_CELLS = 160  # the longer side of the masks a mask-IoU tracker compares


def source_fps(source: FrameSource) -> float:
    """The source's real frame rate, or 30 when it does not know one."""
    fps = getattr(source, "fps", None)
    if isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0:
        return float(fps)
    return DEFAULT_FPS


def small_masks(
    masks: torch.Tensor, boxes: torch.Tensor, longest: int = MASK_CELLS
) -> torch.Tensor:
    """``masks`` [N, H, W] bool sampled down so the longer side is at most ``longest``.

    Cell (i, j) is the pixel at the centre of its ``s`` x ``s`` block, ``s = ceil(max(H, W)
    / longest)``: the result, on the CPU, equals ``masks[:, s // 2 :: s, s // 2 :: s]``. On the CPU
    only the cells of each mask's box (``boxes`` [N, 4] xyxy pixels, widened by a cell)
    are read and the others left empty: YOLACT's masks are empty outside their boxes,
    and the tracker compares masks only there: far cheaper than resizing whole masks.
    """
    N, H, W = masks.shape
    s = max(1, math.ceil(max(H, W) / longest))
    if s == 1 or N == 0:
        return masks.cpu()
    if masks.device.type != "cpu":
        return masks[:, s // 2 :: s, s // 2 :: s].cpu()
    h, w = len(range(s // 2, H, s)), len(range(s // 2, W, s))
    out = torch.zeros((N, h, w), dtype=torch.bool)
    cells = (boxes.detach().cpu().double() / s).tolist()
    for i, (x1, y1, x2, y2) in enumerate(cells):
        cy1, cx1 = max(0, math.floor(y1) - 1), max(0, math.floor(x1) - 1)
        cy2, cx2 = min(h, math.ceil(y2) + 1), min(w, math.ceil(x2) + 1)
        if cy1 < cy2 and cx1 < cx2:
            rows = slice(cy1 * s + s // 2, min(H, cy2 * s), s)
            cols = slice(cx1 * s + s // 2, min(W, cx2 * s), s)
            block = masks[i, rows, cols]
            out[i, cy1 : cy1 + block.shape[0], cx1 : cx1 + block.shape[1]] = block
    return out


def _is_bgr(image: np.ndarray | None) -> bool:
    """Whether ``image`` is an [H, W, 3] uint8 frame the colour cue can read."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
    )


class StreamTracker:
    """Keeps one :class:`~yolact.tracking.Tracker` per source of a stream.

    Args:
        sources: the stream's opened sources (their frame rates size the buffers).
        track: True for the default options (buffer of one second at each source's
            frame rate), or explicit :class:`~yolact.tracking.TrackerOptions` used as
            given for every source.
        track_iou: "box" or "mask": what the tracker compares frames by; ignored
            when ``track`` gives options (their ``iou`` is used).
        track_buffer: seconds a lost track is kept (with ``track=True``).

    Raises:
        ValueError: an unknown ``track_iou`` or a negative ``track_buffer``.
    """

    def __init__(
        self,
        sources: list[FrameSource],
        track: bool | TrackerOptions = True,
        track_iou: str = "box",
        track_buffer: float = 1.0,
    ) -> None:
        if track_iou not in TRACK_IOU_KINDS:
            raise ValueError(f"track_iou must be 'box' or 'mask', got {track_iou!r}")
        self.trackers: list[Tracker] = []
        for source in sources:
            if isinstance(track, TrackerOptions):
                options = track
            else:
                options = TrackerOptions.from_seconds(
                    track_buffer, source_fps(source), iou=track_iou
                )
            self.trackers.append(Tracker(options))

    def apply(
        self, source_index: int, det: Detections, image: np.ndarray | None = None
    ) -> Detections:
        """``det`` with ``track_ids`` from the source's tracker (call in frame order).

        ``image`` is the frame (BGR uint8) for the tracker's colour cue; None: none.
        """
        tracker = self.trackers[source_index]
        masks = None
        if tracker.options.iou == "mask" and det.masks is not None:
            masks = small_masks(det.masks, det.boxes)
        ids = tracker.update(
            det.boxes.detach().cpu(),
            det.scores.detach().cpu(),
            det.labels.detach().cpu(),
            masks=masks,
            image_size=det.image_size,
            image=image if _is_bgr(image) else None,
        )
        return replace(det, track_ids=ids.to(det.scores.device))
