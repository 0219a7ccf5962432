"""Track ids for the detections of a stream: one tracker per source, in frame order."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

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


def _small_masks(masks: torch.Tensor, longest: int = MASK_CELLS) -> torch.Tensor:
    """``masks`` [N, H, W] bool shrunk so the longer side is at most ``longest``."""
    H, W = masks.shape[1:]
    scale = longest / max(H, W, 1)
    if scale >= 1.0 or len(masks) == 0:
        return masks.cpu()
    size = (max(1, round(H * scale)), max(1, round(W * scale)))
    small = F.interpolate(masks[:, None].float(), size=size, mode="area")[:, 0]
    return (small > 0.5).cpu()


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

    def apply(self, source_index: int, det: Detections) -> Detections:
        """``det`` with ``track_ids`` from the source's tracker (call in frame order)."""
        tracker = self.trackers[source_index]
        masks = None
        if tracker.options.iou == "mask" and det.masks is not None:
            masks = _small_masks(det.masks)
        ids = tracker.update(
            det.boxes.detach().cpu(),
            det.scores.detach().cpu(),
            det.labels.detach().cpu(),
            masks=masks,
            image_size=det.image_size,
        )
        return replace(det, track_ids=ids.to(det.scores.device))
