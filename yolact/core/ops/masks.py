"""Masks: pasting soft masks into their boxes at the image size, polygons."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from yolact.core.ops.boxes import sanitize_coordinates


def _linear_weights(size_in: int, size_out: int, device: torch.device) -> Tensor:
    """[size_out, size_in] weights of 1-D linear resizing (align_corners=False), so
    that ``W @ x`` is ``F.interpolate(x, size_out, mode="linear")`` along that axis."""
    eye = torch.eye(size_in, device=device)[None]  # [1, in, in]
    return F.interpolate(eye, size=size_out, mode="linear", align_corners=False)[0].t()


def _reach(weights: Tensor) -> tuple[Tensor, Tensor]:
    """For each output row of ``weights`` [out, in], its first and last input column
    with a non-zero weight ([out] long each; ``in`` and -1 for none)."""
    nonzero = weights > 0
    cols = torch.arange(weights.shape[1], device=weights.device)
    first = torch.where(nonzero, cols, weights.shape[1]).min(dim=1).values.contiguous()  # [out]
    last = torch.where(nonzero, cols, -1).max(dim=1).values.contiguous()  # [out]
    return first, last


# (size_in, size_out, device) -> (weights, first, last): a video's frames, or a folder
# of same-size images, share them. Small: the few sizes a process meets.
_RESIZE_CACHE: dict[tuple[int, int, str], tuple[Tensor, Tensor, Tensor]] = {}
_RESIZE_CACHE_SIZE = 16


def _resize_weights(
    size_in: int, size_out: int, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`_linear_weights` and its :func:`_reach`, made once per sizes and device."""
    key = (size_in, size_out, str(device))
    hit = _RESIZE_CACHE.get(key)
    if hit is None:
        weights = _linear_weights(size_in, size_out, device)
        hit = (weights, *_reach(weights))
        if len(_RESIZE_CACHE) >= _RESIZE_CACHE_SIZE:
            _RESIZE_CACHE.pop(next(iter(_RESIZE_CACHE)), None)
        _RESIZE_CACHE[key] = hit
    return hit


def _touched(
    weights: Tensor, lo: Tensor, hi: Tensor, reach: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, Tensor]:
    """Output range [start, end) whose weights reach input range [lo, hi).

    Args:
        weights: [out, in] from :func:`_linear_weights`; lo, hi: [N] long.
        reach: ``weights``'s :func:`_reach`, when known.
    """
    first, last = reach if reach is not None else _reach(weights)
    start = torch.searchsorted(last, lo.contiguous(), side="left")
    end = torch.searchsorted(first, hi.contiguous(), side="left")
    return start, torch.maximum(start, end)


def paste_masks_in_boxes(
    masks: Tensor,
    height: int,
    width: int,
    boxes: Tensor | None = None,
    padding: float = 1.0,
    threshold: float = 0.5,
) -> Tensor:
    """:func:`paste_masks` computed only where each mask can be non-zero.

    Bilinear upsampling is separable: ``Ry @ m @ Rx^T``. A mask cropped by
    :func:`crop_masks` is zero outside its widened box, so each one is computed
    on the image window its box reaches and the rest of the image stays False.
    Values equal :func:`paste_masks`'s up to float rounding (~1e-7).

    Args:
        masks: [N, h, w] soft masks.
        height, width: the image size.
        boxes: [N, 4] relative (x1, y1, x2, y2) the masks were cropped to with
            ``padding``; None: the masks are not cropped (whole image).

    Returns:
        [N, height, width] bool.
    """
    N, h, w = masks.shape
    if masks.device.type == "cpu":  # numpy's zeroed pages: no pass over the memory
        out = torch.from_numpy(np.zeros((N, height, width), dtype=np.bool_))
    else:
        out = torch.zeros((N, height, width), dtype=torch.bool, device=masks.device)
    if N == 0:
        return out
    masks = masks.float()
    ry, *reach_y = _resize_weights(h, height, masks.device)  # [H, h]
    rx, *reach_x = _resize_weights(w, width, masks.device)  # [W, w]
    if boxes is None:
        return (ry @ masks @ rx.t()) > threshold  # [N, H, W]
    x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], w, padding)
    y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], h, padding)
    # Integer mask cells inside the crop: lo <= c < hi, i.e. ceil(lo) .. ceil(hi) - 1.
    c0, c1 = x1.ceil().long(), x2.ceil().long()
    r0, r1 = y1.ceil().long(), y2.ceil().long()
    xs, xe = _touched(rx, c0, c1, (reach_x[0], reach_x[1]))
    ys, ye = _touched(ry, r0, r1, (reach_y[0], reach_y[1]))
    table = torch.stack((r0, r1, c0, c1, ys, ye, xs, xe), dim=1).tolist()
    # On the CPU numpy thresholds the windows: its comparison is vectorised, torch's
    # float -> bool one is about ten times slower there.
    host = out.numpy() if out.device.type == "cpu" else None
    for i, (a, b, c, d, y_s, y_e, x_s, x_e) in enumerate(table):
        if a >= b or c >= d or y_s >= y_e or x_s >= x_e:
            continue
        window = ry[y_s:y_e, a:b] @ masks[i, a:b, c:d] @ rx[x_s:x_e, c:d].t()
        if host is not None:
            host[i, y_s:y_e, x_s:x_e] = window.numpy() > threshold
        else:
            out[i, y_s:y_e, x_s:x_e] = window > threshold
    return out


def mask_to_polygons(mask: np.ndarray, min_points: int = 3) -> list[np.ndarray]:
    """Outer contours of a binary mask as polygons.

    Args:
        mask: [H, W] bool or uint8.
        min_points: contours with fewer points are dropped.

    Returns:
        A list of [P, 2] int32 arrays of (x, y) pixel coordinates.
    """
    contours, _ = cv2.findContours(
        np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    return [c.reshape(-1, 2) for c in contours if len(c) >= min_points]
