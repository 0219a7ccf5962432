"""Where a tracker loses identities: its errors counted per ground-truth object.

Each frame, the tracked objects as they are scored (made disjoint, highest score first)
are matched one to one with the ground-truth objects (visible-mask IoU >= 0.5); the
objects left over are matched with the detections the tracker gave no id.
Following each object through its visible frames, every frame falls in one of:

- ``tracked``: a tracked object covers it;
- ``missed``: no detection covers it (the detector's loss, or a tracked mask too poor);
- ``birth``: its detection has no id yet and the object never had one (``min_hits``,
  ``new_track_thresh``);
- ``untracked``: its detection has no id although the object had one before (a
  low-score detection left unmatched, a new tentative track);

and every change of track id between two tracked frames of an object is a
fragmentation: ``after_gap`` when frames without its id lie between them (most often an
occlusion), ``direct`` otherwise; ``to_new`` counts those whose new id was born there
(not an id another object had). ``false`` counts tracked objects that cover no
object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

from yolact.data.clips import FrameTruth
from yolact.tracking.metrics import mask_iou

__all__ = ["ErrorBreakdown", "error_breakdown", "format_breakdown"]


@dataclass
class ErrorBreakdown:
    """Counts of :func:`error_breakdown` (object-frames and events)."""

    tracked: int = 0
    missed: int = 0
    birth: int = 0
    untracked: int = 0
    after_gap: int = 0
    direct: int = 0
    to_new: int = 0
    false: int = 0
    gaps: list[int] = field(default_factory=list)  # frames between the two ids' frames


def _match(truth: FrameTruth, masks: np.ndarray) -> dict[int, int]:
    """Ground-truth row -> detection index, for pairs with mask IoU >= 0.5."""
    if not len(truth.ids) or not len(masks):
        return {}
    iou = mask_iou(truth.masks, masks)
    rows, cols = linear_sum_assignment(-iou)
    return {int(r): int(c) for r, c in zip(rows, cols) if iou[r, c] >= 0.5}


def error_breakdown(
    truths: Sequence[Sequence[FrameTruth]],
    tracked: Sequence[Sequence[FrameTruth]],
    masks: Sequence[Sequence[np.ndarray]],
    ids: Sequence[Sequence[np.ndarray]],
) -> ErrorBreakdown:
    """Count the tracker's errors per ground-truth object.

    Args:
        truths: per clip, per frame, the ground truth.
        tracked: per clip, per frame, the tracked objects as scored (``ids``, ``masks``).
        masks: per clip, per frame, the detections' masks [N, H, W] at frame size.
        ids: per clip, per frame, the track id of each detection (-1: untracked).

    Returns:
        The counts over all clips.
    """
    out = ErrorBreakdown()
    for truth, ours, clip_masks, clip_ids in zip(truths, tracked, masks, ids):
        last: dict[int, tuple[int, int]] = {}  # object -> (track id, frame)
        ever: set[int] = set()
        owner: dict[int, int] = {}  # track id -> first object it covered
        for f, (t, o, m, i) in enumerate(zip(truth, ours, clip_masks, clip_ids)):
            pairs = _match(t, o.masks)
            out.false += len(o.ids) - len(pairs)
            free = np.flatnonzero(np.asarray(i) < 0)
            rows = [r for r in range(len(t.ids)) if r not in pairs]
            sub = FrameTruth(t.ids[rows], t.labels[rows], t.boxes[rows], t.masks[rows])
            untracked = {rows[r] for r in _match(sub, m[free])} if len(free) else set()
            for r, gid in enumerate(int(v) for v in t.ids):
                d = pairs.get(r)
                if d is None:
                    if r not in untracked:
                        out.missed += 1
                    elif gid in ever:
                        out.untracked += 1
                    else:
                        out.birth += 1
                    continue
                tid = int(o.ids[d])
                out.tracked += 1
                ever.add(gid)
                new_id = tid not in owner
                owner.setdefault(tid, gid)
                if gid in last and last[gid][0] != tid:
                    gap = f - last[gid][1] - 1
                    if gap > 0:
                        out.after_gap += 1
                        out.gaps.append(gap)
                    else:
                        out.direct += 1
                    out.to_new += int(new_id)
                last[gid] = (tid, f)
    return out


def format_breakdown(mode: str, b: ErrorBreakdown) -> str:
    """One line of the breakdown for association ``mode``."""
    gaps = ",".join(str(g) for g in sorted(b.gaps))
    return (
        f"{mode} errors: object-frames tracked {b.tracked}, missed {b.missed}, "
        f"birth {b.birth}, untracked {b.untracked}; false {b.false}; "
        f"id changes after a gap {b.after_gap} (gaps {gaps or '-'}), direct {b.direct}, "
        f"to a new id {b.to_new}"
    )
