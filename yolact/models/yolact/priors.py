"""Anchor boxes ("priors") for every FPN level, in the original order."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def make_priors(
    conv_h: int,
    conv_w: int,
    scales: Sequence[float],
    aspect_ratios: Sequence[float],
    max_size: int,
    square: bool,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Priors for one level of ``conv_h`` x ``conv_w`` cells.

    Cells are taken row-major (y outer, x inner); inside a cell the order is
    scale (outer) then aspect ratio (inner). Centres are ((x + 0.5) / W,
    (y + 0.5) / H); w = s * sqrt(ar) / max_size and h = s / sqrt(ar) / max_size,
    or h = w for the square anchors of the v1 models.

    Returns:
        [conv_h * conv_w * len(scales) * len(aspect_ratios), 4] (cx, cy, w, h), relative.
    """
    sizes = []
    for s in scales:
        for ar in aspect_ratios:
            r = math.sqrt(ar)
            w = s * r / max_size
            h = w if square else s / r / max_size
            sizes.append((w, h))
    A = len(sizes)
    # Computed in float64 and rounded once, as the original's Python floats are.
    wh = torch.tensor(sizes, dtype=torch.float64, device=device)  # [A, 2]
    ys = (torch.arange(conv_h, dtype=torch.float64, device=device) + 0.5) / conv_h
    xs = (torch.arange(conv_w, dtype=torch.float64, device=device) + 0.5) / conv_w
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")  # [H, W]
    centres = torch.stack((cx, cy), dim=-1).view(-1, 1, 2).expand(-1, A, 2)  # [HW, A, 2]
    priors = torch.cat((centres, wh.expand(conv_h * conv_w, A, 2)), dim=-1)  # [HW, A, 4]
    return priors.reshape(-1, 4).float()
