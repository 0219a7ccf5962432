"""Multi-object tracking metrics: CLEAR MOT, IDF1 and HOTA on per-frame similarities.

A sequence is scored from three per-frame lists: the ground-truth ids present
in each frame ``[G_t]``, the tracker ids present in each frame ``[T_t]``, and a
similarity matrix ``[G_t, T_t]`` between them (mask or box IoU, see
:func:`mask_iou`, :func:`rle_iou` and :func:`box_iou`). Ids can be any
integers; they only need to be unique within a frame.

- CLEAR MOT (Bernardin & Stiefelhagen 2008): per frame, a ground-truth object
  that was matched to a tracker id in the previous frame keeps that match when
  the pair's similarity is still at or above the threshold; the remaining pairs
  are matched by the Hungarian algorithm on similarity. An ID switch is a
  ground-truth object matched to a tracker id other than the one it was last
  matched to. MOTA = 1 - (FN + FP + IDSW) / GT, MOTP = mean similarity of the
  matches.
- IDF1 (Ristani et al. 2016): one global one-to-one assignment between
  ground-truth ids and tracker ids that maximises the identity true positives
  (frames where the pair is present and similar enough).
- HOTA (Luiten et al. 2020): for each alpha in 0.05, 0.10, ..., 0.95, per-frame
  matches with similarity >= alpha give DetA = TP / (TP + FN + FP) and
  AssA = mean over TPs c of |TPA(c)| / (|TPA(c)| + |FNA(c)| + |FPA(c)|);
  HOTA_alpha = sqrt(DetA * AssA), and HOTA, DetA and AssA are the means over
  alpha. Each frame's matching maximises the sum of A_max * S, where A_max is
  the sequence-level alignment of the two ids (a Jaccard index over frames,
  with each frame's co-occurrence weighted by how exclusive the pair's
  similarity is), the matching the paper's authors use in TrackEval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

_EPS = float(np.finfo(float).eps)
HOTA_ALPHAS = np.arange(0.05, 0.99, 0.05)


@dataclass(frozen=True)
class ClearScores:
    """CLEAR MOT counts and scores for one sequence."""

    mota: float
    motp: float
    tp: int
    fp: int
    fn: int
    id_switches: int


@dataclass(frozen=True)
class IdentityScores:
    """Identity (IDF1) counts and scores for one sequence."""

    idf1: float
    idp: float
    idr: float
    idtp: int
    idfp: int
    idfn: int


@dataclass(frozen=True)
class HotaScores:
    """HOTA and its parts for one sequence; the arrays hold one value per alpha."""

    hota: float
    deta: float
    assa: float
    hota_per_alpha: np.ndarray
    deta_per_alpha: np.ndarray
    assa_per_alpha: np.ndarray


@dataclass(frozen=True)
class TrackingScores:
    """All tracking metrics for one sequence."""

    clear: ClearScores
    identity: IdentityScores
    hota: HotaScores


def _counts(frames: list[np.ndarray], n_ids: int) -> np.ndarray:
    """How many frames each id ``0..n_ids-1`` appears in, as floats."""
    counts = np.zeros(n_ids)
    for ids in frames:
        counts[ids] += 1.0
    return counts


class _Indexed:
    """A sequence with ids mapped to ``0..n-1`` and its inputs checked."""

    def __init__(
        self,
        gt_ids: Sequence[np.ndarray],
        tracker_ids: Sequence[np.ndarray],
        similarity: Sequence[np.ndarray],
    ) -> None:
        if not len(gt_ids) == len(tracker_ids) == len(similarity):
            raise ValueError(
                f"frame counts differ: {len(gt_ids)} gt, {len(tracker_ids)} tracker, "
                f"{len(similarity)} similarity"
            )
        gts = [np.asarray(g, dtype=np.int64).reshape(-1) for g in gt_ids]
        trs = [np.asarray(t, dtype=np.int64).reshape(-1) for t in tracker_ids]
        sims = []
        for f, (g, t, s) in enumerate(zip(gts, trs, similarity)):
            s = np.asarray(s, dtype=np.float64)
            if s.size == 0 and len(g) * len(t) == 0:
                s = s.reshape(len(g), len(t))
            if s.shape != (len(g), len(t)):
                raise ValueError(f"frame {f}: similarity is {s.shape}, expected {(len(g), len(t))}")
            if len(np.unique(g)) != len(g) or len(np.unique(t)) != len(t):
                raise ValueError(f"frame {f}: an id appears twice")
            sims.append(s)
        self.gt_labels = np.unique(np.concatenate(gts)) if gts else np.zeros(0, np.int64)
        self.tr_labels = np.unique(np.concatenate(trs)) if trs else np.zeros(0, np.int64)
        self.gt = [np.searchsorted(self.gt_labels, g) for g in gts]
        self.tr = [np.searchsorted(self.tr_labels, t) for t in trs]
        self.sim = sims
        self.n_gt_ids = len(self.gt_labels)
        self.n_tr_ids = len(self.tr_labels)
        self.gt_count = _counts(self.gt, self.n_gt_ids)
        self.tr_count = _counts(self.tr, self.n_tr_ids)
        self.n_gt_dets = int(self.gt_count.sum())
        self.n_tr_dets = int(self.tr_count.sum())


def clear_mot(
    gt_ids: Sequence[np.ndarray],
    tracker_ids: Sequence[np.ndarray],
    similarity: Sequence[np.ndarray],
    threshold: float = 0.5,
) -> ClearScores:
    """CLEAR MOT metrics (MOTA, MOTP, FP, FN, ID switches) of one sequence.

    Args:
        gt_ids: per frame, the ground-truth ids present, ``[G_t]``.
        tracker_ids: per frame, the tracker ids present, ``[T_t]``.
        similarity: per frame, ``[G_t, T_t]`` similarity (IoU) between them.
        threshold: the least similarity for a match.

    Returns:
        The sequence's counts and scores.
    """
    seq = _Indexed(gt_ids, tracker_ids, similarity)
    last_match = np.full(seq.n_gt_ids, -1)  # last tracker id matched, ever
    prev_match = np.full(seq.n_gt_ids, -1)  # tracker id matched in the previous frame
    tp = fp = fn = idsw = 0
    sim_sum = 0.0
    for g, t, s in zip(seq.gt, seq.tr, seq.sim):
        valid = s >= threshold - _EPS
        kept = (prev_match[g][:, None] == t[None, :]) & valid
        # Kept matches dominate any number of new ones; similarity breaks ties.
        score = np.where(valid, 1000.0 * kept + s, 0.0)
        rows, cols = linear_sum_assignment(score, maximize=True)
        ok = score[rows, cols] > _EPS
        rows, cols = rows[ok], cols[ok]
        matched_gt, matched_tr = g[rows], t[cols]
        before = last_match[matched_gt]
        idsw += int(np.sum((before >= 0) & (before != matched_tr)))
        last_match[matched_gt] = matched_tr
        prev_match[:] = -1
        prev_match[matched_gt] = matched_tr
        tp += len(rows)
        fn += len(g) - len(rows)
        fp += len(t) - len(rows)
        sim_sum += float(s[rows, cols].sum())
    mota = (tp - fp - idsw) / max(1.0, tp + fn)
    motp = sim_sum / max(1.0, tp)
    return ClearScores(mota=mota, motp=motp, tp=tp, fp=fp, fn=fn, id_switches=idsw)


def identity(
    gt_ids: Sequence[np.ndarray],
    tracker_ids: Sequence[np.ndarray],
    similarity: Sequence[np.ndarray],
    threshold: float = 0.5,
) -> IdentityScores:
    """Identity metrics (IDF1, IDP, IDR) of one sequence.

    Args:
        gt_ids: per frame, the ground-truth ids present, ``[G_t]``.
        tracker_ids: per frame, the tracker ids present, ``[T_t]``.
        similarity: per frame, ``[G_t, T_t]`` similarity (IoU) between them.
        threshold: the least similarity for a frame to count for a pair.

    Returns:
        The sequence's identity counts and scores.
    """
    seq = _Indexed(gt_ids, tracker_ids, similarity)
    together = np.zeros((seq.n_gt_ids, seq.n_tr_ids))
    for g, t, s in zip(seq.gt, seq.tr, seq.sim):
        rows, cols = np.nonzero(s >= threshold)
        np.add.at(together, (g[rows], t[cols]), 1.0)
    rows, cols = linear_sum_assignment(together, maximize=True)
    idtp = int(round(together[rows, cols].sum()))
    idfn = seq.n_gt_dets - idtp
    idfp = seq.n_tr_dets - idtp
    return IdentityScores(
        idf1=idtp / max(1.0, idtp + 0.5 * idfp + 0.5 * idfn),
        idp=idtp / max(1.0, idtp + idfp),
        idr=idtp / max(1.0, idtp + idfn),
        idtp=idtp,
        idfp=idfp,
        idfn=idfn,
    )


def hota(
    gt_ids: Sequence[np.ndarray],
    tracker_ids: Sequence[np.ndarray],
    similarity: Sequence[np.ndarray],
) -> HotaScores:
    """HOTA, DetA and AssA of one sequence, averaged over alpha 0.05..0.95.

    Args:
        gt_ids: per frame, the ground-truth ids present, ``[G_t]``.
        tracker_ids: per frame, the tracker ids present, ``[T_t]``.
        similarity: per frame, ``[G_t, T_t]`` similarity (IoU) between them.

    Returns:
        The sequence's HOTA scores, means and per-alpha values.
    """
    seq = _Indexed(gt_ids, tracker_ids, similarity)
    n_alpha = len(HOTA_ALPHAS)
    # A_max: how well each (gt id, tracker id) pair aligns over the whole sequence.
    overlap = np.zeros((seq.n_gt_ids, seq.n_tr_ids))
    for g, t, s in zip(seq.gt, seq.tr, seq.sim):
        union = s.sum(axis=0)[None, :] + s.sum(axis=1)[:, None] - s
        share = np.divide(s, union, out=np.zeros_like(s), where=union > _EPS)
        overlap[g[:, None], t[None, :]] += share
    with np.errstate(divide="ignore", invalid="ignore"):
        align = overlap / (seq.gt_count[:, None] + seq.tr_count[None, :] - overlap)
    align = np.nan_to_num(align)

    tp = np.zeros(n_alpha)
    fn = np.zeros(n_alpha)
    fp = np.zeros(n_alpha)
    pair_tp = np.zeros((n_alpha, seq.n_gt_ids, seq.n_tr_ids))
    for g, t, s in zip(seq.gt, seq.tr, seq.sim):
        if len(g) == 0 or len(t) == 0:
            fn += len(g)
            fp += len(t)
            continue
        rows, cols = linear_sum_assignment(align[g[:, None], t[None, :]] * s, maximize=True)
        for a, alpha in enumerate(HOTA_ALPHAS):
            ok = s[rows, cols] >= alpha - _EPS
            n = int(ok.sum())
            tp[a] += n
            fn[a] += len(g) - n
            fp[a] += len(t) - n
            pair_tp[a, g[rows[ok]], t[cols[ok]]] += 1.0

    # Per TP c with ids (i, j): |TPA| = pair_tp, |TPA|+|FNA|+|FPA| = gt_count + tr_count - pair_tp.
    denom = np.maximum(1.0, seq.gt_count[None, :, None] + seq.tr_count[None, None, :] - pair_tp)
    assa = (pair_tp * pair_tp / denom).sum(axis=(1, 2)) / np.maximum(1.0, tp)
    deta = tp / np.maximum(1.0, tp + fn + fp)
    per_alpha = np.sqrt(deta * assa)
    return HotaScores(
        hota=float(per_alpha.mean()),
        deta=float(deta.mean()),
        assa=float(assa.mean()),
        hota_per_alpha=per_alpha,
        deta_per_alpha=deta,
        assa_per_alpha=assa,
    )


def evaluate_sequence(
    gt_ids: Sequence[np.ndarray],
    tracker_ids: Sequence[np.ndarray],
    similarity: Sequence[np.ndarray],
    threshold: float = 0.5,
) -> TrackingScores:
    """CLEAR MOT, identity and HOTA metrics of one sequence.

    Args:
        gt_ids: per frame, the ground-truth ids present, ``[G_t]``.
        tracker_ids: per frame, the tracker ids present, ``[T_t]``.
        similarity: per frame, ``[G_t, T_t]`` similarity (IoU) between them.
        threshold: the least similarity for a CLEAR or identity match.

    Returns:
        All three groups of scores.
    """
    return TrackingScores(
        clear=clear_mot(gt_ids, tracker_ids, similarity, threshold),
        identity=identity(gt_ids, tracker_ids, similarity, threshold),
        hota=hota(gt_ids, tracker_ids, similarity),
    )


def mask_iou(gt_masks: np.ndarray, tracker_masks: np.ndarray) -> np.ndarray:
    """IoU between two stacks of boolean masks.

    Args:
        gt_masks: ``[G, H, W]`` boolean masks.
        tracker_masks: ``[T, H, W]`` boolean masks of the same size.

    Returns:
        ``[G, T]`` IoU; 0 where both masks are empty.
    """
    gm = np.asarray(gt_masks, dtype=bool)
    tm = np.asarray(tracker_masks, dtype=bool)
    if gm.shape[1:] != tm.shape[1:]:
        raise ValueError(f"mask sizes differ: {gm.shape[1:]} and {tm.shape[1:]}")
    pixels = int(np.prod(gm.shape[1:]))
    a = gm.reshape(gm.shape[0], pixels).astype(np.float64)
    b = tm.reshape(tm.shape[0], pixels).astype(np.float64)
    inter = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def rle_iou(gt_rles: Sequence[dict], tracker_rles: Sequence[dict]) -> np.ndarray:
    """IoU between two lists of COCO RLE masks (pycocotools).

    Args:
        gt_rles: G RLE dicts (``size`` and ``counts``).
        tracker_rles: T RLE dicts of the same size.

    Returns:
        ``[G, T]`` IoU.
    """
    if len(gt_rles) == 0 or len(tracker_rles) == 0:
        return np.zeros((len(gt_rles), len(tracker_rles)))
    from pycocotools import mask as mask_utils

    iou = mask_utils.iou(list(tracker_rles), list(gt_rles), [False] * len(gt_rles))
    return np.asarray(iou, dtype=np.float64).reshape(len(tracker_rles), len(gt_rles)).T


def box_iou(gt_boxes: np.ndarray, tracker_boxes: np.ndarray) -> np.ndarray:
    """IoU between two sets of ``x1, y1, x2, y2`` boxes.

    Args:
        gt_boxes: ``[G, 4]`` boxes.
        tracker_boxes: ``[T, 4]`` boxes.

    Returns:
        ``[G, T]`` IoU; 0 where the union is empty.
    """
    a = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(tracker_boxes, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
