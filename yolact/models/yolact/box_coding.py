"""YOLACT's box coding: SSD-style offsets from priors (anchors) and back."""

from __future__ import annotations

import torch
from torch import Tensor

# SSD variances used by every YOLACT model.
VARIANCES: tuple[float, float] = (0.1, 0.2)


def decode(loc: Tensor, priors: Tensor) -> Tensor:
    """Turn regression outputs into boxes.

    Args:
        loc: [..., N, 4] offsets (dx, dy, dw, dh).
        priors: [N, 4] (cx, cy, w, h), relative to the image.

    Returns:
        [..., N, 4] boxes (x1, y1, x2, y2), relative to the image.
    """
    centre = priors[:, :2] + loc[..., :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[..., 2:] * VARIANCES[1])
    top_left = centre - size / 2
    return torch.cat((top_left, top_left + size), dim=-1)


def encode(boxes: Tensor, priors: Tensor) -> Tensor:
    """Inverse of :func:`decode`.

    Args:
        boxes: [N, 4] matched ground-truth boxes (x1, y1, x2, y2), relative.
        priors: [N, 4] (cx, cy, w, h), relative.

    Returns:
        [N, 4] regression targets (dx, dy, dw, dh).
    """
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = boxes[:, 2:] - boxes[:, :2]
    d_centre = (centre - priors[:, :2]) / (VARIANCES[0] * priors[:, 2:])
    d_size = torch.log(size / priors[:, 2:]) / VARIANCES[1]
    return torch.cat((d_centre, d_size), dim=1)


def center_size(boxes: Tensor) -> Tensor:
    """[N, 4] (x1, y1, x2, y2) -> [N, 4] (cx, cy, w, h)."""
    return torch.cat(((boxes[:, 2:] + boxes[:, :2]) / 2, boxes[:, 2:] - boxes[:, :2]), dim=1)
