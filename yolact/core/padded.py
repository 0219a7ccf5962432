"""Detections of a batch in fixed shapes, and their way to per-image :class:`Detections`.

Every backend (PyTorch, an exported graph) ends its network stage with the same
padded layout: entry ``i`` of image ``b`` is a detection when ``i < count[b]``.
The options a user picks per call (score threshold, top-k) apply here, in
fixed shapes too; only :func:`to_detections` reads values back to the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from yolact.core.ops.boxes import boxes_to_pixels
from yolact.core.ops.masks import paste_masks_in_boxes
from yolact.core.ops.nms import ordered_topk
from yolact.core.structures import Detections

# Output names of an exported graph, in this order.
OUTPUT_NAMES: tuple[str, ...] = ("boxes", "scores", "box_scores", "classes", "masks", "count")


@dataclass
class PaddedDetections:
    """Detections of a batch padded to D per image, sorted by descending score.

    Attributes:
        boxes: [B, D, 4] relative (x1, y1, x2, y2).
        scores: [B, D] final scores (after mask re-scoring); 0 where padded.
        box_scores: [B, D] class scores.
        classes: [B, D] int64 0-based labels.
        masks: [B, D, h, w] soft masks at the model's mask resolution.
        count: [B] int64 detections per image.
    """

    boxes: Tensor
    scores: Tensor
    box_scores: Tensor
    classes: Tensor
    masks: Tensor
    count: Tensor

    def as_tuple(self) -> tuple[Tensor, ...]:
        """The tensors in :data:`OUTPUT_NAMES` order."""
        return (self.boxes, self.scores, self.box_scores, self.classes, self.masks, self.count)

    @staticmethod
    def from_tuple(values: Sequence[Tensor]) -> PaddedDetections:
        """The inverse of :meth:`as_tuple` (count and classes cast to int64)."""
        boxes, scores, box_scores, classes, masks, count = values
        return PaddedDetections(
            boxes, scores, box_scores, classes.long(), masks, count.long().reshape(-1)
        )


def select(
    det: PaddedDetections, score_threshold: float = 0.0, top_k: int | None = None
) -> PaddedDetections:
    """The detections a caller keeps, still padded, on the same device.

    As the original: a detection whose class score is at or below
    ``score_threshold`` is dropped, then one whose final score is below it;
    ``top_k`` keeps the best so many.

    Args:
        det: detections sorted by descending final score.
        score_threshold: 0 keeps all.
        top_k: None keeps all.
    """
    B, D = det.scores.shape
    if score_threshold > 0:
        valid = torch.arange(D, device=det.scores.device)[None] < det.count[:, None]
        valid = valid & (det.box_scores > score_threshold) & (det.scores >= score_threshold)
        key = torch.where(valid, det.scores, torch.full_like(det.scores, -1.0))
        order = ordered_topk(key, D)[1]  # [B, D]
        count = valid.sum(dim=1)
        det = PaddedDetections(
            det.boxes.gather(1, order[..., None].expand(B, D, 4)),
            det.scores.gather(1, order),
            det.box_scores.gather(1, order),
            det.classes.gather(1, order),
            det.masks[torch.arange(B, device=order.device)[:, None], order],
            count,
        )
    if top_k is not None:
        det = PaddedDetections(
            det.boxes, det.scores, det.box_scores, det.classes, det.masks,
            det.count.clamp(max=top_k),
        )  # fmt: skip
    return det


def to_detections(
    det: PaddedDetections,
    image_sizes: Sequence[tuple[int, int]],
    class_names: Sequence[str],
    *,
    masks: bool = True,
    crop: bool = True,
    crop_padding: float = 1.0,
) -> list[Detections]:
    """Per-image :class:`Detections`: boxes in whole pixels, masks pasted at the image size.

    Only the counted detections are pasted, each only inside the window its
    (cropped) mask can reach.

    Args:
        det: a batch's padded detections.
        image_sizes: (H, W) of each original image.
        class_names: foreground class names.
        masks: paste masks (False: ``Detections.masks`` is None).
        crop: the masks were cropped to their boxes widened by ``crop_padding``
            mask pixels (False: pasted over the whole image).
    """
    names = tuple(class_names)
    out = []
    for b, n in enumerate(det.count.tolist()):
        H, W = image_sizes[b]
        boxes = det.boxes[b, :n]
        soft = det.masks[b, :n]
        pasted = (
            paste_masks_in_boxes(soft, H, W, boxes if crop else None, crop_padding)
            if masks
            else None
        )
        scores = det.scores[b, :n]
        out.append(
            Detections(
                boxes=boxes_to_pixels(boxes, W, H),
                labels=det.classes[b, :n],
                scores=scores,
                box_scores=det.box_scores[b, :n],
                mask_scores=scores,
                masks=pasted,
                image_size=(H, W),
                class_names=names,
            )
        )
    return out
