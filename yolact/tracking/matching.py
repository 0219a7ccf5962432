"""Costs and the assignment step of the tracker."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]
from torchvision.ops import box_iou

_INFEASIBLE = 1e6


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [M, 4] with every box in ``b`` [N, 4] (xyxy), as [M, N]."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    iou = box_iou(torch.from_numpy(a).double(), torch.from_numpy(b).double())
    return np.asarray(iou.numpy(), dtype=np.float64)


def mask_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every mask in ``a`` [M, h, w] with every mask in ``b`` [N, h, w], as [M, N]."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    ba = a.reshape(len(a), -1).astype(bool, copy=False)
    bb = b.reshape(len(b), -1).astype(bool, copy=False)
    # Only cells inside some mask can add to an intersection or a union.
    used = np.flatnonzero(ba.any(0) | bb.any(0))
    fa = ba[:, used].astype(np.float32)
    fb = bb[:, used].astype(np.float32)
    inter = (fa @ fb.T).astype(np.float64)
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    out: np.ndarray = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    return out


def assign(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    """Pairs (row, col) of a minimum-cost matching that uses only entries <= ``max_cost``.

    Entries above ``max_cost`` are excluded before solving (not dropped afterwards), so a
    forbidden pair never pushes an allowed one out of the matching.
    """
    if cost.size == 0:
        return []
    allowed = cost <= max_cost
    gated = np.where(allowed, cost, _INFEASIBLE)
    rows, cols = linear_sum_assignment(gated)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


def shift_mask(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` [h, w] moved by (dy, dx) whole cells, with what leaves the frame dropped."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_y = slice(max(0, -dy), h - max(0, dy))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[dst_y, dst_x] = mask[src_y, src_x]
    return out
