"""Feature pyramid: P3..P5 from C3..C5, then P6, P7 by stride-2 convs."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class FPN(nn.Module):
    """YOLACT's FPN.

    Lateral 1x1 convs are stored coarsest first (``lat_layers[0]`` takes C5),
    as are the 3x3 output convs (``pred_layers[0]`` gives P5), matching the
    original checkpoints. The top-down path upsamples bilinearly to the finer
    map's exact size; outputs of the 3x3 convs go through ReLU, the extra
    stride-2 levels do not.
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 256, num_downsample: int = 2):
        super().__init__()
        self.lat_layers = nn.ModuleList(
            [nn.Conv2d(c, channels, kernel_size=1) for c in reversed(in_channels)]
        )
        self.pred_layers = nn.ModuleList(
            [nn.Conv2d(channels, channels, kernel_size=3, padding=1) for _ in in_channels]
        )
        self.downsample_layers = nn.ModuleList(
            [
                nn.Conv2d(channels, channels, kernel_size=3, padding=1, stride=2)
                for _ in range(num_downsample)
            ]
        )
        self.channels = channels
        self.num_levels = len(in_channels) + num_downsample

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Args: feats, finest first (C3, C4, C5). Returns [P3, ..., P7], finest first."""
        n = len(feats)
        merged: list[Tensor] = [feats[0]] * n
        x = None
        for j, lat in zip(range(n - 1, -1, -1), self.lat_layers):
            lateral = lat(feats[j])
            if x is not None:
                H, W = feats[j].shape[-2:]
                x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
                lateral = x + lateral
            x = lateral
            merged[j] = x
        outs = [F.relu(pred(merged[j])) for j, pred in zip(range(n - 1, -1, -1), self.pred_layers)][
            ::-1
        ]
        for down in self.downsample_layers:
            outs.append(down(outs[-1]))
        return outs
