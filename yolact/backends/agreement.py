"""How well a quantized graph's detections agree with its float32 graph's.

Both graphs run on the same pre-processed batches; their outputs (boxes relative
to the input, scores, classes, soft masks at prototype resolution) are compared
detection by detection: each confident float32 detection is matched to the INT8
detection of the same class whose box overlaps it most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

# A float32 detection is compared when it scores at least this: the weakest ones
# come and go under any change of precision, and do not show what a user sees.
MIN_SCORE = 0.5
# Boxes overlapping at least this much (IoU) are the same detection.
MATCH_IOU = 0.5
# The export check's tolerances: at least this fraction of the confident float32
# detections found again with the same class, and their masks overlapping this
# much on average (IoU at prototype resolution, masks cut at 0.5).
MIN_MATCHED = 0.9
MIN_MEAN_MASK_IOU = 0.85


@dataclass
class Agreement:
    """The agreement of an INT8 graph with its float32 graph.

    Attributes:
        images: images compared.
        detections: float32 detections scoring at least :data:`MIN_SCORE`.
        matched: those of them found in INT8 with the same class (box IoU >= 0.5).
        max_box_px: the largest box-corner difference of a matched pair, in input
            pixels (0 when none matched).
        mean_mask_iou, min_mask_iou: over the matched pairs (1 when none matched).
    """

    images: int
    detections: int
    matched: int
    max_box_px: float
    mean_mask_iou: float
    min_mask_iou: float

    @property
    def matched_fraction(self) -> float:
        return self.matched / self.detections if self.detections else 1.0

    def within_tolerance(self) -> bool:
        """At least :data:`MIN_MATCHED` matched and mean mask IoU >= :data:`MIN_MEAN_MASK_IOU`."""
        return self.matched_fraction >= MIN_MATCHED and self.mean_mask_iou >= MIN_MEAN_MASK_IOU

    def line(self) -> str:
        return (
            f"INT8 against float32 on {self.images} calibration image(s): "
            f"{self.matched}/{self.detections} detections scoring >= {MIN_SCORE:g} found "
            f"with the same class, boxes within {self.max_box_px:.1f} px (input pixels), "
            f"mask IoU mean {self.mean_mask_iou:.3f} (min {self.min_mask_iou:.3f})"
        )

    def tolerance_line(self) -> str:
        return (
            f"at least {MIN_MATCHED:.0%} of the detections found and mean mask IoU >= "
            f"{MIN_MEAN_MASK_IOU:g}"
        )

    def as_dict(self) -> dict[str, float | int]:
        d = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` [N, 4] and ``b`` [M, 4] (x1 y1 x2 y2) -> [N, M]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def match_detections(
    ref: Sequence[np.ndarray], got: Sequence[np.ndarray], image: int, input_size: int
) -> list[tuple[float, float]]:
    """Match image ``image``'s confident float32 detections to the INT8 ones.

    Args:
        ref, got: the graphs' outputs (boxes, scores, box_scores, classes, masks, count).

    Returns:
        ``(box px difference, mask IoU)`` per matched detection, and NaN pairs for
        the unmatched (so the length is the number of confident detections).
    """
    boxes_r, scores_r, _, classes_r, masks_r, count_r = ref
    boxes_g, _, _, classes_g, masks_g, count_g = got
    n, m = int(count_r[image]), int(count_g[image])
    keep = [i for i in range(n) if scores_r[image, i] >= MIN_SCORE]
    out: list[tuple[float, float]] = []
    used: set[int] = set()
    ious = box_iou(boxes_r[image, :n], boxes_g[image, :m]) if n and m else np.zeros((n, m))
    for i in keep:  # in descending score order, as the graph sorts them
        best, best_iou = -1, MATCH_IOU
        for j in range(m):
            if j in used or classes_g[image, j] != classes_r[image, i]:
                continue
            if ious[i, j] >= best_iou:
                best, best_iou = j, float(ious[i, j])
        if best < 0:
            out.append((float("nan"), float("nan")))
            continue
        used.add(best)
        px = float(np.abs(boxes_r[image, i] - boxes_g[image, best]).max()) * input_size
        iou = mask_iou(masks_r[image, i] > 0.5, masks_g[image, best] > 0.5)
        out.append((px, iou))
    return out


def compare_graphs(
    ref_outputs: Sequence[Sequence[np.ndarray]],
    got_outputs: Sequence[Sequence[np.ndarray]],
    input_size: int,
) -> Agreement:
    """The :class:`Agreement` of two graphs' outputs on the same batches."""
    pairs: list[tuple[float, float]] = []
    images = 0
    for ref, got in zip(ref_outputs, got_outputs):
        for b in range(len(ref[5])):
            images += 1
            pairs += match_detections(ref, got, b, input_size)
    found = [(px, iou) for px, iou in pairs if px == px]  # NaN marks the unmatched
    return Agreement(
        images=images,
        detections=len(pairs),
        matched=len(found),
        max_box_px=max((px for px, _ in found), default=0.0),
        mean_mask_iou=float(np.mean([iou for _, iou in found])) if found else 1.0,
        min_mask_iou=min((iou for _, iou in found), default=1.0),
    )
