"""Detections of one image, on the device they were computed on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from yolact.core.ops.masks import mask_to_polygons


@dataclass
class Detections:
    """Instances found in one image, sorted by descending score.

    Attributes:
        boxes: [N, 4] float32 (x1, y1, x2, y2) in whole pixels of the original image.
        labels: [N] int64 class index into ``class_names`` (0-based, no background).
        scores: [N] detection score (for YOLACT++ the class score times the
            predicted mask IoU, as the original displays it).
        box_scores: [N] class confidence, used for box evaluation.
        mask_scores: [N] mask confidence (re-scored for YOLACT++), used for mask evaluation.
        masks: [N, H, W] bool at the original image size, or None when masks were not computed.
        image_size: (H, W) of the original image.
        class_names: names of the classes ``labels`` index.
        track_ids: [N] int64 track id of each detection (-1: not tracked), or None
            when the detections were not tracked.
    """

    boxes: Tensor
    labels: Tensor
    scores: Tensor
    box_scores: Tensor
    mask_scores: Tensor
    masks: Tensor | None
    image_size: tuple[int, int]
    class_names: tuple[str, ...]
    track_ids: Tensor | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty(
        image_size: tuple[int, int],
        class_names: tuple[str, ...],
        device: torch.device | str = "cpu",
        with_masks: bool = True,
    ) -> Detections:
        z = torch.zeros(0, device=device)
        H, W = image_size
        masks = torch.zeros((0, H, W), dtype=torch.bool, device=device) if with_masks else None
        return Detections(
            boxes=torch.zeros((0, 4), device=device),
            labels=torch.zeros(0, dtype=torch.long, device=device),
            scores=z, box_scores=z, mask_scores=z, masks=masks,
            image_size=image_size, class_names=class_names,
        )  # fmt: skip

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Detections:
        values: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            values[f.name] = fn(v) if isinstance(v, Tensor) else v
        return Detections(**values)

    def to(self, device: torch.device | str) -> Detections:
        return self._map(lambda t: t.to(device))

    def select(self, index: Tensor) -> Detections:
        """The detections at ``index`` (a [M] long index or [N] bool mask)."""
        return self._map(lambda t: t[index])

    @property
    def names(self) -> list[str]:
        """Class name of each detection."""
        return [self.class_names[i] for i in self.labels.tolist()]

    def polygons(self) -> list[list[np.ndarray]]:
        """Outer contours of each mask: per detection, a list of [P, 2] (x, y) arrays."""
        if self.masks is None:
            raise ValueError("these detections were computed without masks")
        return [mask_to_polygons(m) for m in self.masks.cpu().numpy()]

    def to_torchvision(self) -> dict[str, Tensor]:
        """torchvision's detection output layout: boxes, labels, scores, masks [N, 1, H, W]."""
        out = {"boxes": self.boxes, "labels": self.labels, "scores": self.scores}
        if self.masks is not None:
            out["masks"] = self.masks[:, None]
        return out

    def numpy(self) -> dict[str, np.ndarray]:
        """All tensors as numpy arrays (copied to the CPU)."""
        out = {
            f.name: getattr(self, f.name).cpu().numpy()
            for f in fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        out["names"] = np.array(self.names, dtype=object)
        return out
