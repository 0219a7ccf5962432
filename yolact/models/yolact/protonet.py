"""ProtoNet: k prototype masks from the finest FPN level."""

from __future__ import annotations

from torch import Tensor, nn


class Upsample2x(nn.Module):
    """Bilinear x2 upsampling (align_corners=False), as a module so indices match."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ProtoNet(nn.Sequential):
    """Three 3x3 convs, x2 upsample, a 3x3 conv, a 1x1 conv to k; ReLU throughout.

    Submodule indices (0, 2, 4, 8, 10 for the convs) follow the original
    checkpoints' ``proto_net.N`` keys.
    """

    def __init__(self, in_channels: int, channels: int = 256, num_prototypes: int = 32) -> None:
        c = channels
        super().__init__(
            nn.Conv2d(in_channels, c, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
            Upsample2x(), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c, num_prototypes, 1), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.num_prototypes = num_prototypes

    def forward(self, x: Tensor) -> Tensor:
        """Args: x [B, C, H, W] (P3). Returns [B, 2H, 2W, k] prototypes (channels last)."""
        return super().forward(x).permute(0, 2, 3, 1).contiguous()
