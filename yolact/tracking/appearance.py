"""A cheap appearance cue: each detection's mean colour in CIE Lab.

The frame is sampled on a grid of at most :data:`CELLS` cells a side (the centre pixel
of each block) and converted to Lab, where Euclidean distance follows perceived colour
difference. A detection's colour is the mean over the cells of its mask (mask
association) or of its box (box association): the same cue for both, so comparing them
measures what the masks add. Box means use a summed-area table (constant time per box);
mask means read only the mask's crop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from yolact.tracking.mask_cost import CroppedMask

__all__ = ["CELLS", "LabGrid", "colour_distance"]

CELLS = 160


def colour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance of every colour of ``a`` [M, 3] to every colour of ``b`` [N, 3]."""
    diff = a[:, None, :] - b[None, :, :]
    out: np.ndarray = np.sqrt((diff * diff).sum(-1))
    return out


class LabGrid:
    """A frame sampled to a grid of cells and converted to Lab (L, a, b in 0-255 units).

    Args:
        image: [H, W, 3] uint8 BGR frame.
        grid: (h, w) cells to sample it to (the tracker's mask size); None: at most
            :data:`CELLS` a side.
    """

    def __init__(self, image: np.ndarray, grid: tuple[int, int] | None = None) -> None:
        H, W = image.shape[:2]
        if grid is None:
            s = max(1, math.ceil(max(H, W) / CELLS))
            grid = (len(range(s // 2, H, s)), len(range(s // 2, W, s)))
        h, w = max(1, grid[0]), max(1, grid[1])
        ys = np.minimum(((np.arange(h) + 0.5) * H / h).astype(np.int64), H - 1)
        xs = np.minimum(((np.arange(w) + 0.5) * W / w).astype(np.int64), W - 1)
        small = np.ascontiguousarray(image[ys][:, xs, :3])
        self.lab = cv2.cvtColor(small, cv2.COLOR_BGR2Lab).astype(np.float32)
        self.scale = (h / max(H, 1), w / max(W, 1))
        self._table: np.ndarray | None = None

    def box_means(self, boxes: np.ndarray) -> np.ndarray:
        """Mean colour [N, 3] inside each box [N, 4] (xyxy pixels); grey for an empty box."""
        if self._table is None:
            t = np.zeros((self.lab.shape[0] + 1, self.lab.shape[1] + 1, 3), np.float64)
            t[1:, 1:] = self.lab.cumsum(0).cumsum(1)
            self._table = t
        h, w = self.lab.shape[:2]
        sy, sx = self.scale
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        x1 = np.clip(np.floor(b[:, 0] * sx), 0, w).astype(np.int64)
        y1 = np.clip(np.floor(b[:, 1] * sy), 0, h).astype(np.int64)
        x2 = np.clip(np.ceil(b[:, 2] * sx), 0, w).astype(np.int64)
        y2 = np.clip(np.ceil(b[:, 3] * sy), 0, h).astype(np.int64)
        x2, y2 = np.maximum(x2, x1), np.maximum(y2, y1)
        t = self._table
        sums = t[y2, x2] - t[y1, x2] - t[y2, x1] + t[y1, x1]
        count = ((x2 - x1) * (y2 - y1)).astype(np.float64)[:, None]
        out: np.ndarray = np.where(count > 0, sums / np.maximum(count, 1.0), 128.0)
        return out

    def mask_means(self, masks: Sequence[CroppedMask | None], boxes: np.ndarray) -> np.ndarray:
        """Mean colour [N, 3] inside each cropped mask (on this grid); its box's when None."""
        out = np.empty((len(masks), 3), np.float64)
        missing = []
        h, w = self.lab.shape[:2]
        for i, m in enumerate(masks):
            if m is None:
                missing.append(i)
                continue
            y1, x1, y2, x2 = m.extent
            if y2 > h or x2 > w:  # masks of another grid than the frame's
                missing.append(i)
                continue
            out[i] = self.lab[y1:y2, x1:x2][m.crop].mean(0)
        if missing:
            out[missing] = self.box_means(np.asarray(boxes)[missing])
        return out
