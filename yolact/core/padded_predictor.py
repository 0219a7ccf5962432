"""The predictor of a family whose network stage ends in :class:`PaddedDetections`.

Such a network (YOLACT's, or any exported graph, see
:class:`~yolact.core.family.ExportSpec`) takes a square normalised batch and gives
fixed-shape detections; the pre-processing, the score threshold and top-k, and
the pasting at the image size are the same whatever runs the network (a
:class:`~yolact.core.runner.NetworkRunner`: eager PyTorch, a CUDA graph,
onnxruntime, OpenVINO).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from yolact.core.padded import PaddedDetections, select, to_detections
from yolact.core.predictor import Predictor
from yolact.core.preprocess import SquarePreprocessor
from yolact.core.runner import NetworkRunner
from yolact.core.structures import Detections


class PaddedPredictor(Predictor):
    """Stages over padded detections: ``preprocess``, then ``runner`` with the score
    threshold and top-k, then boxes in pixels and masks pasted.

    A subclass sets, before its first call:

    Attributes:
        preprocess: BGR images -> the network's input batch.
        runner: the batch -> :class:`PaddedDetections` as a tuple (``as_tuple`` order).
        crop_padding: mask pixels around a box that a cropped mask may cover.
    """

    preprocess: SquarePreprocessor
    runner: NetworkRunner
    crop_padding: float = 1.0

    def run_pre(self, images: Sequence[np.ndarray]) -> Tensor:
        """BGR uint8 images -> the network's input batch [B, 3, S, S]."""
        return self.preprocess(images)

    @torch.no_grad()
    def run_network(self, batch: Tensor) -> PaddedDetections:
        """The runner on the batch (network, box decoding, NMS and masks at the model's
        resolution, in fixed shapes), then the score threshold and top-k."""
        raw = self.runner(batch)
        det = PaddedDetections.from_tuple([o.float() if o.is_floating_point() else o for o in raw])
        return select(det, self.score_threshold, self.top_k)

    @torch.no_grad()
    def run_post(
        self, raw: PaddedDetections, image_sizes: Sequence[tuple[int, int]]
    ) -> list[Detections]:
        """Detections at the original image sizes: boxes in pixels, masks pasted
        (only the counted ones, each inside its box)."""
        return to_detections(
            raw, image_sizes, self.class_names, masks=self.masks, crop=self.crop,
            crop_padding=self.crop_padding,
        )  # fmt: skip
