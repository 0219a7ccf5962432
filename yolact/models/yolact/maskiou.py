"""YOLACT++ mask re-scoring: predicts each mask's IoU with its object."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class MaskIoUNet(nn.Module):
    """Stride-2 3x3 convs (no padding) with ReLU, a 1x1 conv to one output per
    foreground class with ReLU, then a global max pool.

    The inner ``nn.Sequential`` is called ``maskiou_net`` so that keys read
    ``maskiou_net.maskiou_net.N`` as in the original checkpoints.
    """

    def __init__(self, num_fg_classes: int, channels: Sequence[int] = (8, 16, 32, 64, 128)):
        super().__init__()
        layers = []
        c_in = 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2), nn.ReLU(inplace=True)]
            c_in = c
        layers += [nn.Conv2d(c_in, num_fg_classes, 1), nn.ReLU(inplace=True)]
        self.maskiou_net = nn.Sequential(*layers)

    @property
    def min_size(self) -> int:
        """The smallest mask side (pixels) the unpadded strided convs accept."""
        size = 1
        for layer in reversed(self.maskiou_net):
            if isinstance(layer, nn.Conv2d):
                size = (size - 1) * layer.stride[0] + layer.kernel_size[0]
        return size

    def forward(self, masks: Tensor) -> Tensor:
        """Args: masks [N, 1, H, W] soft masks. Returns [N, num_fg_classes] predicted IoU."""
        x = self.maskiou_net(masks)
        return x.amax(dim=(2, 3))  # global max pool, [N, num_fg_classes]
