"""Image pre-processing exactly as the original evaluation does it."""

from __future__ import annotations

import torch

from yolact.core.preprocess import ImageLike, SquarePreprocessor
from yolact.models.yolact.config import YolactConfig

__all__ = ["ImageLike", "Preprocessor"]


class Preprocessor(SquarePreprocessor):
    """BGR uint8 [H, W, 3] images -> normalised RGB [B, 3, S, S] tensors, S = ``cfg.max_size``
    (see :class:`~yolact.core.preprocess.SquarePreprocessor`)."""

    def __init__(self, cfg: YolactConfig, device: torch.device | str = "cpu") -> None:
        super().__init__(cfg.max_size, cfg.pixel_mean, cfg.pixel_std, "rgb", device)
