"""YOLACT's non-maximum suppression over per-class scores: Fast NMS, its
cross-class form, and the standard per-class NMS.

All three variants take the candidates of one image and return indices into
them with their class and score, sorted by descending score (equal scores in
index order). They are written with tensor operations only (no loop over
classes or detections) so they run on the model's device and can be traced.

The ``padded_*`` variants take a batch in fixed shapes: every prior enters
(non-candidates carry a negative score), results are padded to a fixed length
with a per-image count, and nothing depends on the data's values, so they run
under CUDA graphs and inside an exported graph. The variants' names
(:data:`~yolact.core.ops.nms.NMSMethod`) are shared by every family.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from yolact.core.ops.boxes import batched_iou
from yolact.core.ops.nms import ordered_topk

NMSResult = tuple[Tensor, Tensor, Tensor]


def fast_nms(
    boxes: Tensor, scores: Tensor, iou_thresh: float, top_k: int, max_detections: int
) -> NMSResult:
    """Fast NMS (YOLACT): per class, a box survives unless a higher-scored box
    of its class overlaps it by more than ``iou_thresh``, whether or not that
    box was itself suppressed.

    Args:
        boxes: [N, 4] candidate boxes (x1, y1, x2, y2).
        scores: [C, N] foreground class scores of the candidates.
        iou_thresh: suppression threshold (IoU > thresh suppresses).
        top_k: candidates per class considered.
        max_detections: detections returned at most.

    Returns:
        (index [D] into the N candidates, class [D] in 0..C-1, score [D]).
    """
    C, N = scores.shape
    scores, idx = scores.sort(dim=1, descending=True, stable=True)  # [C, N]
    idx = idx[:, :top_k]  # [C, K]
    scores = scores[:, :top_k]  # [C, K]
    K = idx.shape[1]
    class_boxes = boxes[idx.reshape(-1)].view(C, K, 4)  # [C, K, 4]
    iou = batched_iou(class_boxes, class_boxes).triu_(diagonal=1)  # [C, K, K]
    if K > 0:
        iou_max, _ = iou.max(dim=1)  # [C, K]
    else:
        iou_max = iou.new_zeros((C, 0))
    keep = iou_max <= iou_thresh  # [C, K]
    classes = torch.arange(C, device=boxes.device)[:, None].expand_as(keep)
    classes, idx, scores = classes[keep], idx[keep], scores[keep]
    scores, order = scores.sort(dim=0, descending=True, stable=True)
    order = order[:max_detections]
    return idx[order], classes[order], scores[:max_detections]


def cross_class_fast_nms(
    boxes: Tensor, scores: Tensor, iou_thresh: float, top_k: int, max_detections: int
) -> NMSResult:
    """Fast NMS run once over each candidate's best class (classes suppress each other).

    As in the original, the result is capped by ``top_k`` only; ``max_detections``
    is accepted for a uniform signature and not applied.

    Args and returns as :func:`fast_nms`.
    """
    best_scores, classes = scores.max(dim=0)  # [N]
    _, order = best_scores.sort(dim=0, descending=True, stable=True)
    order = order[:top_k]
    iou = batched_iou(boxes[order][None], boxes[order][None])[0].triu_(diagonal=1)  # [K, K]
    if order.numel() > 0:
        iou_max, _ = iou.max(dim=0)
    else:
        iou_max = iou.new_zeros((0,))
    kept = order[iou_max <= iou_thresh]
    return kept, classes[kept], best_scores[kept]


def standard_nms(
    boxes: Tensor,
    scores: Tensor,
    iou_thresh: float,
    conf_thresh: float,
    max_detections: int,
) -> NMSResult:
    """Classic per-class NMS through ``torchvision.ops.batched_nms``.

    Every (candidate, class) pair whose score exceeds ``conf_thresh`` enters;
    suppressed boxes do not suppress others.

    Args:
        boxes: [N, 4]; scores: [C, N].

    Returns:
        As :func:`fast_nms`.
    """
    cls_idx, box_idx = torch.nonzero(scores > conf_thresh, as_tuple=True)
    cand_scores = scores[cls_idx, box_idx]
    # batched_nms may separate the classes by shifting each class's boxes by
    # class * (max coordinate + 1). With relative boxes and 80 classes that shift
    # reaches ~160, where float32 keeps only ~1e-5 of a box's coordinates and
    # IoUs near the threshold flip; float64 keeps them exact.
    # (MPS has no float64.)
    dtype = torch.float32 if boxes.device.type == "mps" else torch.float64
    keep = batched_nms(boxes[box_idx].to(dtype), cand_scores.to(dtype), cls_idx, iou_thresh)
    keep = keep[:max_detections]  # batched_nms returns them by descending score
    return box_idx[keep], cls_idx[keep], cand_scores[keep]


PaddedNMSResult = tuple[Tensor, Tensor, Tensor, Tensor]


def _compact(keep: Tensor, scores: Tensor, length: int) -> tuple[Tensor, Tensor, Tensor]:
    """The kept entries first, by descending score (equal scores in index order).

    Args:
        keep: [B, M] bool; scores: [B, M].
        length: entries returned per image (at most M).

    Returns:
        (scores [B, length], zero where padded; index [B, length] into M;
        count [B] of kept entries returned).
    """
    key = torch.where(keep, scores, torch.full_like(scores, -1.0))
    top, order = ordered_topk(key, length)  # [B, length]
    valid = top >= 0
    return torch.where(valid, top, torch.zeros_like(top)), order, valid.sum(dim=1)


def padded_fast_nms(
    boxes: Tensor, scores: Tensor, iou_thresh: float, top_k: int, max_detections: int
) -> PaddedNMSResult:
    """:func:`fast_nms` over a batch in fixed shapes (IoU over [B, C, K, K]).

    Args:
        boxes: [B, N, 4] boxes of every prior (x1, y1, x2, y2).
        scores: [B, C, N] foreground class scores; negative for priors that are
            not candidates.
        iou_thresh, top_k, max_detections: as :func:`fast_nms`.

    Returns:
        (index [B, D] into N, class [B, D], score [B, D], count [B]) with
        D = min(max_detections, C * min(top_k, N)); entry i of image b is a
        detection when i < count[b], the rest is padding (score 0). Equal
        scores come in index order, except that which of several candidates
        tied at a class's K-th place enters is left to ``torch.topk``.
    """
    B, C, N = scores.shape
    K = min(top_k, N)
    top, idx = scores.topk(K, dim=2)  # [B, C, K]
    top, pos = ordered_topk(top, K, idx)  # equal scores in prior order
    idx = idx.gather(2, pos)
    cand = boxes.gather(1, idx.reshape(B, C * K, 1).expand(B, C * K, 4))  # [B, C*K, 4]
    cand = cand.reshape(B * C, K, 4)
    iou = batched_iou(cand, cand).triu(diagonal=1)  # [B*C, K, K]
    iou_max = iou.max(dim=1).values.reshape(B, C, K)  # [B, C, K]
    keep = (iou_max <= iou_thresh) & (top >= 0)  # [B, C, K]
    D = min(max_detections, C * K)
    out_scores, order, count = _compact(keep.reshape(B, C * K), top.reshape(B, C * K), D)
    index = idx.reshape(B, C * K).gather(1, order)  # [B, D]
    return index, torch.div(order, K, rounding_mode="floor"), out_scores, count


def padded_cross_class_fast_nms(
    boxes: Tensor, scores: Tensor, iou_thresh: float, top_k: int, max_detections: int
) -> PaddedNMSResult:
    """:func:`cross_class_fast_nms` over a batch in fixed shapes (IoU over [B, K, K]).

    Args and returns as :func:`padded_fast_nms`, with D = min(top_k, N) (as in
    the original, ``max_detections`` does not apply).
    """
    B, C, N = scores.shape
    best, classes = scores.max(dim=1)  # [B, N]
    K = min(top_k, N)
    top, idx = best.topk(K, dim=1)  # [B, K]
    top, pos = ordered_topk(top, K, idx)  # equal scores in prior order
    idx = idx.gather(1, pos)
    cand = boxes.gather(1, idx[..., None].expand(B, K, 4))  # [B, K, 4]
    iou_max = batched_iou(cand, cand).triu(diagonal=1).max(dim=1).values  # [B, K]
    keep = (iou_max <= iou_thresh) & (top >= 0)
    out_scores, order, count = _compact(keep, top, K)
    index = idx.gather(1, order)  # [B, K]
    return index, classes.gather(1, index), out_scores, count


def padded_standard_nms(
    boxes: Tensor,
    scores: Tensor,
    iou_thresh: float,
    conf_thresh: float,
    max_detections: int,
) -> PaddedNMSResult:
    """:func:`standard_nms` per image, its results padded to ``max_detections``.

    Unlike the other ``padded_*`` functions this one loops over the images and
    its work depends on the data (torchvision's NMS), so it cannot be exported.

    Args and returns as :func:`padded_fast_nms`, with D = max_detections.
    """
    B = scores.shape[0]
    D = max_detections
    index = boxes.new_zeros((B, D), dtype=torch.long)
    classes = torch.zeros_like(index)
    out_scores = scores.new_zeros((B, D))
    count = index.new_zeros(B)
    for b in range(B):
        i, c, s = standard_nms(boxes[b], scores[b], iou_thresh, conf_thresh, max_detections)
        n = i.shape[0]
        index[b, :n], classes[b, :n], out_scores[b, :n], count[b] = i, c, s, n
    return index, classes, out_scores, count
