"""Image pre-processing exactly as the original evaluation does it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from yolact.models.yolact.config import YolactConfig

ImageLike = np.ndarray | Tensor


class Preprocessor:
    """BGR uint8 [H, W, 3] images -> normalised RGB [B, 3, S, S] tensors.

    Steps, on the target device: to float, resize to S x S (aspect ratio not
    kept) bilinearly with align_corners=False, subtract the BGR mean and divide
    by the BGR std, reorder channels to RGB.
    """

    def __init__(self, cfg: YolactConfig, device: torch.device | str = "cpu") -> None:
        self.size = cfg.max_size
        self.device = torch.device(device)
        self.mean = torch.tensor(cfg.pixel_mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.pixel_std, device=self.device).view(1, 3, 1, 1)

    def to_tensor(self, image: ImageLike) -> Tensor:
        """One BGR image [H, W, 3] (numpy or tensor) -> float [1, 3, H, W] on the device."""
        t = (
            torch.from_numpy(np.ascontiguousarray(image))
            if isinstance(image, np.ndarray)
            else image
        )
        # Contiguous NCHW like the original, so the resize runs the same kernel.
        return t.to(self.device, non_blocking=True).float().permute(2, 0, 1)[None].contiguous()

    def __call__(self, images: ImageLike | Sequence[ImageLike]) -> Tensor:
        """Args: one image [H, W, 3] or a list of them (sizes may differ).

        Returns:
            [B, 3, S, S] float32.
        """
        if isinstance(images, (np.ndarray, Tensor)) and images.ndim == 3:
            images = [images]
        batch = torch.cat(
            [
                F.interpolate(
                    self.to_tensor(img), (self.size, self.size), mode="bilinear",
                    align_corners=False,
                )
                for img in images
            ]
        )  # fmt: skip
        batch = (batch - self.mean) / self.std
        return batch[:, [2, 1, 0]].contiguous()
