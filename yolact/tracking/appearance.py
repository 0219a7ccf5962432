"""A cheap appearance cue: each detection's mean colour in CIE Lab.

The frame is sampled on a grid of at most :data:`CELLS` cells a side (the tracker's mask
grid with mask association). A detection's colour is the mean over the cells of its mask
(mask association) or of its box (box association), converted to CIE Lab, where Euclidean
distance follows perceived colour difference: the same cue for both, so comparing them
measures what the masks add. A mean reads only the cells of its box or its mask's crop,
and the tracker asks for few of them a frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from yolact.tracking.mask_cost import CroppedMask

__all__ = ["CELLS", "FrameColours", "LabGrid", "bgr_to_lab", "colour_distance"]

CELLS = 160


def colour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance of every colour of ``a`` [M, 3] to every colour of ``b`` [N, 3]."""
    diff = a[:, None, :] - b[None, :, :]
    out: np.ndarray = np.sqrt((diff * diff).sum(-1))
    return out


_RGB_TO_XYZ = np.array(  # linear sRGB to CIE XYZ (D65)
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE = np.array([0.950456, 1.0, 1.088754])  # D65
_EPS = (6.0 / 29.0) ** 3
_LINEAR_SLOPE = 3.0 * (6.0 / 29.0) ** 2


def bgr_to_lab(colours: np.ndarray) -> np.ndarray:
    """BGR colours [N, 3] (0-255, float) as CIE Lab in OpenCV's 8-bit units (L scaled to
    0-255, a and b offset by 128), computed in numpy (a handful of colours a frame: an
    OpenCV call costs more than the arithmetic)."""
    c = np.asarray(colours, np.float64).reshape(-1, 3)[:, ::-1] / 255.0  # a new array
    np.maximum(c, 0.0, out=c)  # in place: np.clip's dispatch costs more than the values
    np.minimum(c, 1.0, out=c)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _EPS, np.cbrt(xyz), xyz / _LINEAR_SLOPE + 4.0 / 29.0)
    fx, fy, fz = f.T
    lab = (
        (116.0 * fy - 16.0) * 255.0 / 100.0,
        500.0 * (fx - fy) + 128.0,
        200.0 * (fy - fz) + 128.0,
    )
    return np.stack(lab, axis=1)


class LabGrid:
    """A frame sampled to a grid of cells, for mean colours of boxes and masks.

    Means are taken over the cells' BGR values and converted to Lab (in OpenCV's
    8-bit units: L, a and b in 0-255), so only the means are converted.

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
        s = max(1, round(H / h))
        if len(range(s // 2, H, s)) == h and len(range(s // 2, W, s)) == w:
            # the grid is every s-th pixel (block centres): a view, nothing copied
            self.bgr = image[s // 2 :: s, s // 2 :: s, :3]
        else:
            self.bgr = cv2.resize(image[:, :, :3], (w, h), interpolation=cv2.INTER_NEAREST)
        self.scale = (h / max(H, 1), w / max(W, 1))

    def box_means(self, boxes: np.ndarray) -> np.ndarray:
        """Mean Lab colour [N, 3] inside each box [N, 4] (xyxy pixels; at least one cell)."""
        h, w = self.bgr.shape[:2]
        sy, sx = self.scale
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        x1 = np.clip(np.floor(b[:, 0] * sx), 0, w - 1).astype(np.int64)
        y1 = np.clip(np.floor(b[:, 1] * sy), 0, h - 1).astype(np.int64)
        x2 = np.maximum(np.clip(np.ceil(b[:, 2] * sx), 0, w).astype(np.int64), x1 + 1)
        y2 = np.maximum(np.clip(np.ceil(b[:, 3] * sy), 0, h).astype(np.int64), y1 + 1)
        means = np.empty((len(b), 3), np.float64)
        for i, (a1, b1, a2, b2) in enumerate(
            zip(x1.tolist(), y1.tolist(), x2.tolist(), y2.tolist())
        ):
            means[i] = self.bgr[b1:b2, a1:a2].mean(axis=(0, 1))
        return bgr_to_lab(means)

    def mask_means(self, masks: Sequence[CroppedMask | None], boxes: np.ndarray) -> np.ndarray:
        """Mean Lab colour [N, 3] inside each cropped mask (on this grid); its box's when
        None (``boxes`` [N, 4] xyxy pixels)."""
        out = np.zeros((len(masks), 3), np.float64)
        missing = []
        h, w = self.bgr.shape[:2]
        for i, m in enumerate(masks):
            y1, x1, y2, x2 = m.extent if m is not None else (0, 0, h + 1, w + 1)
            if y2 > h or x2 > w:  # no mask, or one of another grid than the frame's
                missing.append(i)
                continue
            # the cells' sum as one product: exact (integer sums in float64), and
            # cheaper than a boolean selection of a strided view
            cells = self.bgr[y1:y2, x1:x2].reshape(-1, 3)
            inside = m.crop.reshape(1, -1).astype(np.float64)  # type: ignore[union-attr]
            out[i] = (inside @ cells)[0] / m.area  # type: ignore[union-attr]
        out = bgr_to_lab(out) if len(masks) else out
        if missing:
            out[missing] = self.box_means(np.asarray(boxes)[missing])
        return out


class FrameColours:
    """The colours of one frame's detections, computed on first use and kept.

    Args:
        image: [H, W, 3] uint8 BGR frame.
        boxes: [N, 4] the detections' boxes (xyxy pixels).
        masks: the detections' cropped masks on the tracker's grid (mask association),
            or None to take box colours.
        grid: (h, w) of that grid; ignored without masks.
    """

    def __init__(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        masks: Sequence[CroppedMask | None] | None,
        grid: tuple[int, int] | None,
    ) -> None:
        self._image = image
        self._boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        self._masks = masks
        self._grid = grid if masks is not None else None
        self._lab: LabGrid | None = None
        self._known = np.zeros(len(self._boxes), bool)
        self._values = np.zeros((len(self._boxes), 3), np.float64)

    def get(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """[len(indices), 3] Lab colours of the detections at ``indices``."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        todo = idx[~self._known[idx]]
        if len(todo):
            todo = np.unique(todo)
            if self._lab is None:
                self._lab = LabGrid(self._image, self._grid)
            if self._masks is not None:
                sy, sx = self._lab.scale
                boxes = self._boxes[todo] * np.array([sx, sy, sx, sy])
                self._values[todo] = self._lab.mask_means([self._masks[i] for i in todo], boxes)
            else:
                self._values[todo] = self._lab.box_means(self._boxes[todo])
            self._known[todo] = True
        out: np.ndarray = self._values[idx]
        return out
