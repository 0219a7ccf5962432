"""Mask IoU between tracks and detections, computed only where masks can meet.

A mask is kept cropped to its extent or to its detection's box (:class:`CroppedMask`).
The IoU of two masks is 0 unless their extents overlap, and their intersection lies
in the overlap of the extents, so only that window of the two crops is compared.
With detections spread over a frame most pairs are skipped after a vectorised extent
test, and the rest cost one small AND each: far less than comparing every pair over
the whole frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CroppedMask:
    """A boolean mask stored as its extent and the crop of the mask to it.

    Attributes:
        y, x: top-left cell of the extent in the full mask.
        crop: [h, w] bool, the mask inside its extent (never empty).
        area: cells set in ``crop``.
    """

    y: int
    x: int
    crop: np.ndarray
    area: int

    @property
    def extent(self) -> tuple[int, int, int, int]:
        """(y1, x1, y2, x2), the second corner one past the last cell."""
        return self.y, self.x, self.y + self.crop.shape[0], self.x + self.crop.shape[1]

    def shifted(self, dy: int, dx: int, shape: tuple[int, int]) -> CroppedMask | None:
        """The mask moved by (dy, dx) cells in a frame of ``shape``, what leaves it dropped.

        Returns:
            The moved mask, or None when no cell of it stays in the frame.
        """
        y1, x1, y2, x2 = self.extent
        y1, x1, y2, x2 = y1 + dy, x1 + dx, y2 + dy, x2 + dx
        cy1, cx1 = max(y1, 0), max(x1, 0)
        cy2, cx2 = min(y2, shape[0]), min(x2, shape[1])
        if cy1 >= cy2 or cx1 >= cx2:
            return None
        if (cy1, cx1, cy2, cx2) == (y1, x1, y2, x2):
            return CroppedMask(y1, x1, self.crop, self.area)
        crop = self.crop[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
        area = int(np.count_nonzero(crop))
        return CroppedMask(cy1, cx1, crop, area) if area else None


def crop_masks(masks: np.ndarray, windows: np.ndarray | None = None) -> list[CroppedMask | None]:
    """Each mask of ``masks`` [N, h, w] cropped (None for an empty one).

    Args:
        masks: [N, h, w] bool.
        windows: [N, 4] (x1, y1, x2, y2) in cells, where each mask lies (its detection's
            box): the crop is the window (clipped to the frame), and cells outside it are
            left out. None: the crop is the mask's exact extent (reads every cell).

    Returns:
        The crops, views of ``masks``: copy one to keep it beyond ``masks``' life.
    """
    n, h, w = masks.shape
    if n == 0:
        return []
    if windows is None:
        rows, cols = np.any(masks, axis=2), np.any(masks, axis=1)
        y1 = rows.argmax(axis=1)
        y2 = np.where(rows.any(axis=1), h - rows[:, ::-1].argmax(axis=1), 0)
        x1 = cols.argmax(axis=1)
        x2 = w - cols[:, ::-1].argmax(axis=1)
    else:
        win = np.asarray(windows, dtype=np.float64).reshape(n, 4)
        x1 = np.clip(np.floor(win[:, 0]), 0, w).astype(np.int64)
        y1 = np.clip(np.floor(win[:, 1]), 0, h).astype(np.int64)
        x2 = np.clip(np.ceil(win[:, 2]), 0, w).astype(np.int64)
        y2 = np.clip(np.ceil(win[:, 3]), 0, h).astype(np.int64)
    out: list[CroppedMask | None] = []
    for i in range(n):
        crop = masks[i, y1[i] : y2[i], x1[i] : x2[i]]
        area = int(np.count_nonzero(crop)) if crop.size else 0
        out.append(CroppedMask(int(y1[i]), int(x1[i]), crop, area) if area else None)
    return out


def _extents(masks: Sequence[CroppedMask | None]) -> np.ndarray:
    """[N, 4] (y1, x1, y2, x2) per mask; an empty extent (0, 0, 0, 0) for None."""
    out = np.zeros((len(masks), 4), dtype=np.int64)
    for i, m in enumerate(masks):
        if m is not None:
            out[i] = m.extent
    return out


def cropped_iou(
    a: Sequence[CroppedMask | None],
    b: Sequence[CroppedMask | None],
    pairs: np.ndarray | None = None,
) -> np.ndarray:
    """IoU of every mask of ``a`` with every mask of ``b`` (same frame), as [M, N].

    Args:
        a: M masks (None: empty, IoU 0 with everything).
        b: N masks.
        pairs: [M, N] bool, the pairs worth computing (e.g. same class); others get 0.

    Returns:
        [M, N] float64; equal to the IoU of the full masks.
    """
    iou = np.zeros((len(a), len(b)), dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return iou
    ea_np, eb_np = _extents(a), _extents(b)
    ea, eb = ea_np.tolist(), eb_np.tolist()
    meet = (
        (ea_np[:, None, 0] < eb_np[None, :, 2])
        & (eb_np[None, :, 0] < ea_np[:, None, 2])
        & (ea_np[:, None, 1] < eb_np[None, :, 3])
        & (eb_np[None, :, 1] < ea_np[:, None, 3])
    )
    if pairs is not None:
        meet &= pairs
    for i, j in zip(*(idx.tolist() for idx in np.nonzero(meet))):
        ma, mb = a[i], b[j]
        assert ma is not None and mb is not None  # empty extents never meet
        (ay1, ax1, ay2, ax2), (by1, bx1, by2, bx2) = ea[i], eb[j]
        y1, x1, y2, x2 = max(ay1, by1), max(ax1, bx1), min(ay2, by2), min(ax2, bx2)
        inter = np.count_nonzero(
            ma.crop[y1 - ma.y : y2 - ma.y, x1 - ma.x : x2 - ma.x]
            & mb.crop[y1 - mb.y : y2 - mb.y, x1 - mb.x : x2 - mb.x]
        )
        if inter:
            iou[i, j] = inter / (ma.area + mb.area - inter)
    return iou
