"""Scoring tracked clips: what the tracking benchmark and a MOTS file are measured by."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from yolact.data.clips import FrameTruth
from yolact.tracking.metrics import TrackingScores, evaluate_sequence, mask_iou

__all__ = ["ID_STRIDE", "score_tracks"]

ID_STRIDE = 1_000_000  # ids of clip c are offset by c * ID_STRIDE to keep clips apart


def score_tracks(
    truths: Sequence[Sequence[FrameTruth]], tracked: Sequence[Sequence[FrameTruth]]
) -> TrackingScores:
    """HOTA, IDF1 and CLEAR MOT of tracked clips against their ground truth.

    Similarity is the IoU of the ground truth's visible masks with the tracked masks
    (as a MOTS file holds them: disjoint, see :func:`yolact.io.mots.kept_objects`).
    The clips are scored as one sequence with ids made disjoint per clip, which gives
    the same scores as combining the per-clip counts.

    Args:
        truths: per clip, per frame, the ground truth (``ids``, ``masks``).
        tracked: per clip, per frame, the tracked objects (``ids`` = track ids).

    Returns:
        The scores.

    Raises:
        ValueError: clip or frame counts differ.
    """
    if len(truths) != len(tracked):
        raise ValueError(f"{len(truths)} clips of truth but {len(tracked)} tracked")
    gt_ids: list[np.ndarray] = []
    tr_ids: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    for c, (truth, ours) in enumerate(zip(truths, tracked)):
        if len(truth) != len(ours):
            raise ValueError(f"clip {c}: {len(truth)} frames of truth but {len(ours)} tracked")
        for g, t in zip(truth, ours):
            gt_ids.append(np.asarray(g.ids, np.int64) + c * ID_STRIDE)
            tr_ids.append(np.asarray(t.ids, np.int64) + c * ID_STRIDE)
            if len(g.ids) and len(t.ids):
                sims.append(mask_iou(g.masks, t.masks))
            else:  # an empty frame read from a file may not know the frame size
                sims.append(np.zeros((len(g.ids), len(t.ids))))
    return evaluate_sequence(gt_ids, tr_ids, sims)
