"""YOLACT's masks: a linear combination of prototypes, cropped to the box, and
pasted at the image size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from yolact.core.ops.boxes import sanitize_coordinates


def assemble_masks(prototypes: Tensor, coefficients: Tensor) -> Tensor:
    """sigmoid(P C^T): one soft mask per detection at prototype resolution.

    Args:
        prototypes: [H, W, k].
        coefficients: [N, k] (already tanh-activated).

    Returns:
        [H, W, N] in (0, 1).
    """
    return torch.sigmoid(prototypes @ coefficients.t())  # [H, W, N]


def crop_masks(masks: Tensor, boxes: Tensor, padding: float = 1.0) -> Tensor:
    """Zero each mask outside its box.

    The box is scaled to mask pixels without rounding, widened by ``padding``
    and clamped; integer column c is inside when x1 <= c < x2 (rows alike).

    Args:
        masks: [H, W, N].
        boxes: [N, 4] (x1, y1, x2, y2), relative to the image.

    Returns:
        [H, W, N].
    """
    H, W, N = masks.shape
    x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], W, padding)
    y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], H, padding)
    cols = torch.arange(W, device=masks.device, dtype=x1.dtype).view(1, W, 1)
    rows = torch.arange(H, device=masks.device, dtype=y1.dtype).view(H, 1, 1)
    inside = (
        (cols >= x1.view(1, 1, N))
        & (cols < x2.view(1, 1, N))
        & (rows >= y1.view(1, 1, N))
        & (rows < y2.view(1, 1, N))
    )  # [H, W, N]
    return masks * inside.to(masks.dtype)


def paste_masks(masks: Tensor, height: int, width: int, threshold: float = 0.5) -> Tensor:
    """Upsample [N, h, w] soft masks to the image size (bilinear) and binarise.

    Returns:
        [N, height, width] bool.
    """
    if masks.shape[0] == 0:
        return torch.zeros((0, height, width), dtype=torch.bool, device=masks.device)
    up = F.interpolate(masks[None], (height, width), mode="bilinear", align_corners=False)[0]
    return up > threshold
