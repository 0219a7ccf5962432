"""Non-maximum suppression over per-class scores.

All three variants take the candidates of one image and return indices into
them with their class and score, sorted by descending score. They are written
with tensor operations only (no loop over classes or detections) so they run
on the model's device and can be traced.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from yolact.core.ops.boxes import batched_iou

NMSResult = tuple[Tensor, Tensor, Tensor]

# The variants by name: :func:`fast_nms`, :func:`cross_class_fast_nms`, :func:`standard_nms`.
NMSMethod = Literal["fast", "cross_class", "standard"]
NMS_METHODS: tuple[NMSMethod, ...] = get_args(NMSMethod)


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
    scores, idx = scores.sort(dim=1, descending=True)  # [C, N]
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
    scores, order = scores.sort(dim=0, descending=True)
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
    _, order = best_scores.sort(dim=0, descending=True)
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
