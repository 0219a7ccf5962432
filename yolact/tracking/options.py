"""Settings of the multi-object tracker."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

IouKind = Literal["box", "mask"]

DUPLICATE_MASK_IOU = 0.3  # default duplicate_iou with iou="mask"
DUPLICATE_BOX_IOU = 0.6  # and with iou="box"


@dataclass(frozen=True)
class TrackerOptions:
    """Thresholds and memory of :class:`yolact.tracking.Tracker`.

    Attributes:
        high_thresh: detections scoring at least this are associated in the first stage,
            against every active and lost track. Default 0.5.
        low_thresh: detections scoring at least this (and below ``high_thresh``) are
            associated in the second stage, only against active tracks left unmatched by
            the first; they extend tracks but never start one. Lower scores are ignored.
            Default 0.1.
        new_track_thresh: an unmatched high-score detection scoring at least this starts
            a new track. Default 0.6.
        match_thresh: the largest cost (1 - IoU) accepted for a match in the first stage
            and for tentative tracks; 0.8 means IoU >= 0.2. Default 0.8.
        low_match_thresh: the largest cost accepted in the second (low-score) stage; those
            detections are less trusted, so they must overlap more. Default 0.5.
        buffer_frames: a track unmatched for more than this many consecutive frames is
            removed and its id retired. Default 30 (1 s at 30 fps); see
            :meth:`from_seconds` to set it from the source's frame rate.
        min_hits: frames in a row with a match a new track needs before it is confirmed
            and given an id (its first frame counts). Tracks started on the first frame of
            a run are confirmed at once. A tentative track missed once is dropped. Default 2.
        iou: ``"box"`` compares predicted boxes with detected boxes; ``"mask"`` compares
            each track's last mask, shifted by its predicted motion, with detected masks
            (needs masks in :meth:`Tracker.update`); given the frame size, only the cells
            of a mask inside its box (widened by one cell) count, as YOLACT crops masks
            to their boxes. Default ``"box"``.
        velocity_smoothing: weight of the newest velocity measurement in the exponential
            velocity estimate, in (0, 1]. Default 0.5.
        low_recovers_lost: whether the second (low-score) stage also offers the lost
            tracks (unmatched for a few frames, still in the buffer), not only the active
            ones: an object that comes back from an occlusion with a low score keeps its
            id. Default True.
        class_cost: added to the cost of a track and a detection of different classes.
            A detector often flips the class of a partly hidden object for a frame or
            two; a small cost lets the track follow it while an object of the track's
            own class still wins. 1 or more keeps the classes apart (no match across
            classes). A track keeps the class it started with. Default 0.1.
        reid: whether confirmed tracks still unmatched after the two IoU stages are
            re-identified by colour (given the frames: ``Tracker.update(image=...)``):
            each keeps the mean Lab colour of its high-score detections (inside the mask
            with ``iou="mask"``, inside the box with ``"box"``), and a detection left
            over (high or low score) within ``reid_radius`` of the track with a colour
            within ``reid_colour`` continues it. An object hidden for several frames
            that comes back where IoU no longer reaches keeps its id. Default True.
        reid_colour: the largest Lab distance (0-255 units) a re-identified detection's
            colour may lie from its track's. Default 20.
        reid_radius: how far a re-identified detection's centre may lie from the
            track's last seen or predicted centre, in the track's sizes (the larger of
            width and height). Default 1.5.
        duplicate_iou: a detection left over after the IoU stages that overlaps a
            detection tracked in the same frame by more than this (box IoU, or mask IoU
            with ``iou="mask"``) is taken for a second detection of that object (YOLACT
            keeps overlapping detections of different classes): it neither continues a
            lost track nor starts one. 1 turns this off. Default None: 0.3 with mask IoU
            (two objects' masks hardly overlap, while a half-hidden object's second
            detection often overlaps its first by only 0.3-0.6), 0.6 with box IoU (the
            boxes of objects side by side do overlap); see :attr:`duplicate_threshold`.
        colour_gate: with the colour cue, a detection whose colour lies further than this
            (Lab distance) from a track's colour and from every colour of its gallery
            does not continue that track in the IoU stages, however much it overlaps:
            another object passing over a hidden one's predicted box, or a detection of
            the background. ``math.inf`` turns it off. Default 40.
    """

    high_thresh: float = 0.5
    low_thresh: float = 0.1
    new_track_thresh: float = 0.6
    match_thresh: float = 0.8
    low_match_thresh: float = 0.5
    buffer_frames: int = 30
    min_hits: int = 2
    iou: IouKind = "box"
    velocity_smoothing: float = 0.5
    low_recovers_lost: bool = True
    class_cost: float = 0.1
    reid: bool = True
    reid_colour: float = 20.0
    reid_radius: float = 1.5
    duplicate_iou: float | None = None
    colour_gate: float = 40.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_thresh <= self.high_thresh:
            raise ValueError(
                f"tracker thresholds need 0 <= low_thresh <= high_thresh, "
                f"got {self.low_thresh} and {self.high_thresh}"
            )
        if self.buffer_frames < 0:
            raise ValueError(f"tracker buffer must be >= 0 frames, got {self.buffer_frames}")
        if self.min_hits < 1:
            raise ValueError(f"tracker min_hits must be >= 1, got {self.min_hits}")
        if not (math.isfinite(self.class_cost) and self.class_cost >= 0.0):
            raise ValueError(f"tracker class_cost must be >= 0, got {self.class_cost}")
        if self.duplicate_iou is not None and not 0.0 <= self.duplicate_iou <= 1.0:
            raise ValueError(f"tracker duplicate_iou must be in [0, 1], got {self.duplicate_iou}")
        for name in ("reid_colour", "reid_radius", "colour_gate"):
            value = getattr(self, name)
            if math.isnan(value) or value < 0.0:
                raise ValueError(f"tracker {name} must be >= 0, got {value}")
        if self.iou not in ("box", "mask"):
            raise ValueError(f"tracker iou must be 'box' or 'mask', got {self.iou!r}")
        if not 0.0 < self.velocity_smoothing <= 1.0:
            raise ValueError(
                f"tracker velocity_smoothing must be in (0, 1], got {self.velocity_smoothing}"
            )

    @property
    def duplicate_threshold(self) -> float:
        """``duplicate_iou``, or its default for the association mode when None."""
        if self.duplicate_iou is not None:
            return self.duplicate_iou
        return DUPLICATE_MASK_IOU if self.iou == "mask" else DUPLICATE_BOX_IOU

    @classmethod
    def from_seconds(
        cls, buffer_s: float = 1.0, fps: float = 30.0, **kwargs: object
    ) -> TrackerOptions:
        """Options whose track buffer lasts ``buffer_s`` seconds of a source at ``fps``.

        Args:
            buffer_s: how long a lost track is kept, in seconds.
            fps: the source's real frame rate.
            **kwargs: any other field of :class:`TrackerOptions`.

        Returns:
            The options, with ``buffer_frames = ceil(buffer_s * fps)`` (at least 1 when
            ``buffer_s > 0``).

        Raises:
            ValueError: when ``fps`` is not a positive finite number or ``buffer_s`` < 0.
        """
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"tracker needs a positive frame rate, got {fps}")
        if not (math.isfinite(buffer_s) and buffer_s >= 0):
            raise ValueError(f"tracker buffer must be >= 0 seconds, got {buffer_s}")
        frames = math.ceil(buffer_s * fps - 1e-9)
        return cls(buffer_frames=max(frames, 1 if buffer_s > 0 else 0), **kwargs)  # type: ignore[arg-type]
