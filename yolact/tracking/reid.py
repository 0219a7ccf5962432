"""The re-identification cost: lost tracks against left-over detections by colour.

An object hidden for several frames often comes back where its track's IoU no longer
reaches: its predicted box drifted (it bounced or slowed while hidden), or its last
visible mask was a sliver. This stage looks for it near where it was last seen or where
it was predicted, and asks that its colour match the track's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from yolact.tracking.options import TrackerOptions
from yolact.tracking.track import Track, colour_distances

__all__ = ["REID_MAX_COST", "reid_cost"]

REID_MAX_COST = 2.0  # gated pairs cost more than this; the others at most 1.5 + class


def reid_cost(
    pool: Sequence[Track],
    boxes: np.ndarray,
    labels: np.ndarray,
    colours: Callable[[np.ndarray], np.ndarray],
    options: TrackerOptions,
) -> np.ndarray:
    """Cost of continuing each track of ``pool`` with each detection, [T, D].

    A pair is allowed when the colour distance is at most ``options.reid_colour`` and
    the detection's centre lies within ``options.reid_radius`` track sizes of the
    track's last seen or predicted centre. Its cost is the colour distance over
    ``reid_colour`` plus half the centre distance over the radius, plus
    ``class_cost`` across classes; pairs not allowed cost more than
    :data:`REID_MAX_COST`.

    Args:
        pool: the tracks (each with a colour).
        boxes: [D, 4] the detections' boxes (xyxy pixels).
        labels: [D] their classes.
        colours: gives the [K, 3] Lab colours of the detections at K indices; asked
            only for the detections near some track.
        options: the tracker's options.
    """
    out = np.full((len(pool), len(boxes)), 2.0 * REID_MAX_COST)
    if not len(pool) or not len(boxes):
        return out
    xyxy = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2  # the boxes' centres, as xyxy_to_cxcywh gives them
    last = np.stack([t.state[:2] for t in pool])
    predicted = np.stack([t.predicted_state()[:2] for t in pool])
    dist_p = np.minimum(
        np.linalg.norm(last[:, None] - centres[None], axis=-1),
        np.linalg.norm(predicted[:, None] - centres[None], axis=-1),
    )
    radius = options.reid_radius * np.array([max(t.state[2], t.state[3], 1.0) for t in pool])
    allowed = dist_p <= radius[:, None]
    near = np.flatnonzero(allowed.any(axis=0))
    if not len(near):
        return out
    dist_c = np.full(out.shape, np.inf)
    dist_c[:, near] = colour_distances(list(pool), colours(near))
    allowed &= dist_c <= options.reid_colour
    closeness = dist_p / np.maximum(radius, 1e-9)[:, None]
    cost = np.where(allowed, dist_c, 0.0) / max(options.reid_colour, 1e-9) + 0.5 * closeness
    same = np.array([t.label for t in pool])[:, None] == labels[None, :]
    cost = np.where(same, cost, cost + options.class_cost)
    if options.class_cost >= 1.0:  # classes kept apart
        allowed &= same
    result: np.ndarray = np.where(allowed, cost, out)
    return result
