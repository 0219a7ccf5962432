"""RoI pooling over FPN levels for the Mask R-CNN reference.

:class:`MultiScaleRoIAlignV2` is detectron2's ROIAlignV2 built from torchvision's
parts (its level mapper and ``roi_align(aligned=True)``); :func:`make_pooler`
picks it or torchvision's own ``MultiScaleRoIAlign``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign, roi_align
from torchvision.ops.poolers import LevelMapper


def rois_from_boxes(boxes: Sequence[Tensor]) -> Tensor:
    """Per-image boxes -> [R, 5] rows (image index, x1, y1, x2, y2) for ``roi_align``."""
    rows = [torch.cat([b.new_full((len(b), 1), float(i)), b], dim=1) for i, b in enumerate(boxes)]
    return torch.cat(rows, dim=0)


class MultiScaleRoIAlignV2(MultiScaleRoIAlign):
    """torchvision's MultiScaleRoIAlign with half-pixel alignment (detectron2's ROIAlignV2).

    torchvision's pooler has no ``aligned`` option; this one assigns each box to
    a level with torchvision's own :class:`~torchvision.ops.poolers.LevelMapper`
    (FPN paper eq. 1: ``floor(4 + log2(sqrt(area) / 224))`` clamped to the levels)
    and pools that level with ``torchvision.ops.roi_align(..., aligned=True)``,
    which shifts the box by -0.5 pixel so that pixel centres, not corners, sit
    on integer coordinates. The level scales come from the known strides rather
    than from the first batch's sizes.

    Args:
        featmap_names: names of the pooled levels in the feature dict, finest first.
        output_size: pooled size (an int or (h, w)).
        sampling_ratio: samples per bin side; 0 is adaptive (ceil(roi size / output size)).
        strides: stride of each pooled level in input pixels (powers of two, consecutive).
        canonical_scale, canonical_level: eq. 1's 224 and k0 = 4.
    """

    def __init__(
        self,
        featmap_names: list[str],
        output_size: int | tuple[int, int],
        sampling_ratio: int,
        strides: Sequence[int],
        *,
        canonical_scale: int = 224,
        canonical_level: int = 4,
    ) -> None:
        super().__init__(
            featmap_names,
            output_size,
            sampling_ratio,
            canonical_scale=canonical_scale,
            canonical_level=canonical_level,
        )
        if len(strides) != len(featmap_names):
            raise ValueError(f"{len(strides)} strides for {len(featmap_names)} pooled levels")
        levels = [round(math.log2(s)) for s in strides]
        if [2**k for k in levels] != list(strides) or levels != list(
            range(levels[0], levels[0] + len(levels))
        ):
            raise ValueError(f"strides must be consecutive powers of two, got {list(strides)}")
        self.scales = [1.0 / s for s in strides]
        self.map_levels = LevelMapper(levels[0], levels[-1], canonical_scale, canonical_level)

    def forward(
        self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        """Pool every box from its level.

        Args:
            x: feature maps by name, each [B, C, H_l, W_l].
            boxes: per image, [R_i, 4] xyxy in input pixels.
            image_shapes: per image (H, W) (unused: the scales are fixed by the strides).

        Returns:
            [sum R_i, C, h, w] pooled features, in the order of ``boxes``.
        """
        feats = [x[name] for name in self.featmap_names]
        rois = rois_from_boxes(boxes)  # [R, 5]
        C = feats[0].shape[1]
        out = feats[0].new_zeros((rois.shape[0], C, *self.output_size))  # [R, C, h, w]
        if rois.shape[0] == 0:
            return out
        levels = self.map_levels(boxes)  # [R] 0-based index into feats
        for k, (feat, scale) in enumerate(zip(feats, self.scales)):
            index = torch.where(levels == k)[0]
            pooled = roi_align(
                feat, rois[index], self.output_size, scale, self.sampling_ratio, aligned=True
            )
            out[index] = pooled.to(out.dtype)
        return out


def make_pooler(
    featmap_names: list[str],
    output_size: int,
    sampling_ratio: int,
    strides: Sequence[int],
    aligned: bool,
) -> MultiScaleRoIAlign:
    """RoIAlignV2 pooler when ``aligned``, else torchvision's MultiScaleRoIAlign unchanged."""
    if aligned:
        return MultiScaleRoIAlignV2(featmap_names, output_size, sampling_ratio, strides)
    return MultiScaleRoIAlign(featmap_names, output_size, sampling_ratio)
