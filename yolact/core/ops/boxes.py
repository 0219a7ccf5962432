"""Box utilities: pairwise IoU, coordinate sanitising, pixel coordinates."""

from __future__ import annotations

import torch
from torch import Tensor


def batched_iou(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Pairwise IoU inside each batch entry.

    ``torchvision.ops.box_iou`` covers one set of pairs; this is the same
    formula broadcast over a leading batch dimension, used by Fast NMS to
    compare the top candidates of every class at once.

    Args:
        boxes_a: [C, A, 4] (x1, y1, x2, y2).
        boxes_b: [C, B, 4] (x1, y1, x2, y2).

    Returns:
        [C, A, B] IoU.
    """
    a = boxes_a[:, :, None, :]  # [C, A, 1, 4]
    b = boxes_b[:, None, :, :]  # [C, 1, B, 4]
    # One coordinate at a time keeps the intermediates at [C, A, B].
    iw = (torch.min(a[..., 2], b[..., 2]) - torch.max(a[..., 0], b[..., 0])).clamp_(min=0)
    ih = (torch.min(a[..., 3], b[..., 3]) - torch.max(a[..., 1], b[..., 1])).clamp_(min=0)
    inter = iw.mul_(ih)  # [C, A, B]
    area_a = (boxes_a[:, :, 2] - boxes_a[:, :, 0]) * (boxes_a[:, :, 3] - boxes_a[:, :, 1])
    area_b = (boxes_b[:, :, 2] - boxes_b[:, :, 0]) * (boxes_b[:, :, 3] - boxes_b[:, :, 1])
    union = area_a[:, :, None] + area_b[:, None, :] - inter
    return inter / union


def sanitize_coordinates(
    c1: Tensor, c2: Tensor, size: int, padding: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Scale a pair of relative coordinates to pixels, order them and clamp them.

    Args:
        c1, c2: [N] relative coordinates along one axis (x1/x2 or y1/y2).
        size: the axis length in pixels.
        padding: pixels added on each side before clamping.

    Returns:
        ([N], [N]) with lo <= hi, lo >= 0 and hi <= size (no rounding).
    """
    c1 = c1 * size
    c2 = c2 * size
    lo = (torch.min(c1, c2) - padding).clamp(min=0)
    hi = (torch.max(c1, c2) + padding).clamp(max=size)
    return lo, hi


def boxes_to_pixels(boxes: Tensor, width: int, height: int) -> Tensor:
    """Relative (x1, y1, x2, y2) -> integer-valued pixel boxes, as the original reports them.

    Each pair is ordered, clamped to [0, size] and truncated towards zero.

    Args:
        boxes: [N, 4] relative.

    Returns:
        [N, 4] float32 holding whole pixel values.
    """
    x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], width)
    y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], height)
    return torch.stack((x1, y1, x2, y2), dim=1).trunc()
