"""Soft-NMS (Bodla et al., 2017): decay the scores of overlapping boxes instead of
removing them.

Classes are independent, so all classes are processed together: every round picks
the best remaining box of each class at once and decays the other boxes of that
class by their IoU with it. The loop therefore runs as many rounds as the largest
class has boxes (the greedy selection is sequential within a class), with only
tensor operations over all ``N`` boxes inside, on the inputs' device. No ``[N, N]``
IoU matrix is built: each round needs the IoU of every box with one box only.
With ``max_detections`` the rounds stop as soon as the output can no longer change.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

SoftNMSMethod = Literal["gaussian", "linear"]
METHODS: tuple[SoftNMSMethod, ...] = get_args(SoftNMSMethod)


def paired_iou(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """IoU of row ``i`` of ``boxes_a`` with row ``i`` of ``boxes_b``.

    Args:
        boxes_a: [N, 4] boxes (x1, y1, x2, y2).
        boxes_b: [N, 4] boxes (x1, y1, x2, y2).

    Returns:
        [N] IoU; 0 where the union is empty (two degenerate boxes).
    """
    iw = torch.minimum(boxes_a[:, 2], boxes_b[:, 2]) - torch.maximum(boxes_a[:, 0], boxes_b[:, 0])
    ih = torch.minimum(boxes_a[:, 3], boxes_b[:, 3]) - torch.maximum(boxes_a[:, 1], boxes_b[:, 1])
    inter = iw.clamp(min=0) * ih.clamp(min=0)  # [N]
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])  # [N]
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])  # [N]
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)


def _more_rounds(
    current: Tensor, active: Tensor, picked: Tensor, max_detections: int | None
) -> Tensor:
    """Whether another round can change the result (a 0-d bool tensor).

    Scores only decrease, so once ``max_detections`` picks score strictly more than
    every remaining box, later picks cannot enter the output.
    """
    more = active.any()
    if max_detections is not None:
        top_left = current.masked_fill(~active, float("-inf")).max()
        more &= (picked & (current > top_left)).sum() < max_detections
    return more


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    method: SoftNMSMethod = "gaussian",
    sigma: float = 0.5,
    iou_thresh: float = 0.3,
    score_thresh: float = 0.001,
    max_detections: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-class Soft-NMS.

    Greedy, per class: take the box with the highest current score (ties: the
    lowest index), keep it with that score, multiply the current score of every
    other remaining box of its class by

    - ``gaussian``: ``exp(-iou**2 / sigma)``,
    - ``linear``: ``1 - iou`` where ``iou > iou_thresh``, else 1,

    drop the boxes whose score fell below ``score_thresh`` (a box is kept while
    ``score >= score_thresh``, also before any decay), and repeat. Boxes of
    different labels never affect each other.

    Args:
        boxes: [N, 4] boxes (x1, y1, x2, y2).
        scores: [N] scores. Computed in their own dtype (half is computed in float32).
        labels: [N] integer class of each box (any values, need not be contiguous).
        method: ``"gaussian"`` or ``"linear"``.
        sigma: Gaussian width (> 0); unused by ``linear``.
        iou_thresh: overlap above which ``linear`` decays; unused by ``gaussian``.
        score_thresh: boxes whose (decayed) score is below this are dropped.
        max_detections: keep at most this many (the best); ``None`` keeps all.

    Returns:
        (keep [K] int64 indices into the N boxes, new_scores [K] in the dtype of
        ``scores``), sorted by descending new score; equal scores by ascending index.

    Raises:
        ValueError: unknown ``method``, or ``sigma <= 0`` for ``gaussian``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown Soft-NMS method {method!r}; expected one of {METHODS}")
    if method == "gaussian" and sigma <= 0:
        raise ValueError(f"sigma must be > 0 for gaussian Soft-NMS, got {sigma}")
    device = scores.device
    N = scores.shape[0]
    if N == 0:
        return torch.zeros(0, dtype=torch.long, device=device), scores.new_zeros(0)

    work_dtype = torch.promote_types(scores.dtype, torch.float32)
    current = scores.to(work_dtype).clone()  # [N] current (decayed) scores
    boxes = boxes.to(work_dtype)
    _, cls = torch.unique(labels, return_inverse=True)  # [N] in 0..C-1
    C = int(cls.max()) + 1
    index = torch.arange(N, device=device)
    no_pick = torch.full((C,), N, dtype=torch.long, device=device)
    neg_inf = torch.full((C,), float("-inf"), dtype=work_dtype, device=device)
    active = current >= score_thresh  # [N] neither picked nor dropped
    picked = torch.zeros(N, dtype=torch.bool, device=device)

    for _ in range(N):  # every round retires one box of each class that has any left
        if not bool(_more_rounds(current, active, picked, max_detections)):
            break
        # The best active box of every class; ties go to the lowest index.
        masked = current.masked_fill(~active, float("-inf"))  # [N]
        best = neg_inf.scatter_reduce(0, cls, masked, reduce="amax")  # [C]
        is_best = active & (masked == best.index_select(0, cls))  # [N]
        pick = no_pick.scatter_reduce(0, cls, torch.where(is_best, index, N), reduce="amin")  # [C]
        chosen = index == pick.index_select(0, cls)  # [N] one box per class at most
        picked |= chosen
        active &= ~chosen

        # Decay the rest of each class by its IoU with that class's pick (a class
        # with boxes left always has a pick; the others' placeholder is unused).
        pick_boxes = boxes.index_select(0, pick.clamp(max=N - 1))  # [C, 4]
        iou = paired_iou(boxes, pick_boxes.index_select(0, cls))  # [N]
        if method == "gaussian":
            factor = torch.exp(-(iou * iou) / sigma)
        else:
            factor = torch.where(iou > iou_thresh, 1.0 - iou, 1.0)
        current = torch.where(active, current * factor, current)
        active &= current >= score_thresh

    kept = picked.nonzero().squeeze(1)  # [K] ascending index
    kept_scores = current[kept]
    kept_scores, order = kept_scores.sort(descending=True, stable=True)
    if max_detections is not None:
        order = order[:max_detections]
        kept_scores = kept_scores[:max_detections]
    return kept[order], kept_scores.to(scores.dtype)
