"""ResNet backbone built from torchvision's ResNet, with optional deformable 3x3 convs.

The module layout gives the original YOLACT state-dict keys: ``conv1``,
``bn1`` and ``layers.{0..3}`` holding torchvision's ``layer1..layer4``.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn
from torchvision.models import resnet
from torchvision.ops import deform_conv2d

from yolact.core.config import BackboneConfig

# Block type and blocks per stage of each depth, as torchvision's resnet18..152 build them.
_LAYOUTS = {
    18: (resnet.BasicBlock, (2, 2, 2, 2)),
    34: (resnet.BasicBlock, (3, 4, 6, 3)),
    50: (resnet.Bottleneck, (3, 4, 6, 3)),
    101: (resnet.Bottleneck, (3, 4, 23, 3)),
    152: (resnet.Bottleneck, (3, 8, 36, 3)),
}


def _narrow_resnet(depth: int, width: int) -> resnet.ResNet:
    """torchvision's ResNet of ``depth`` with stage widths ``width * (1, 2, 4, 8)``.

    torchvision's constructor fixes the widths at 64..512, so the stem and
    stages are rebuilt from its own blocks with the same module names and
    initialisation.
    """
    block, counts = _LAYOUTS[depth]
    net = resnet.ResNet(block, [1, 1, 1, 1])
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    for i, count in enumerate(counts):
        stage = net._make_layer(block, width * 2**i, count, stride=1 if i == 0 else 2)
        setattr(net, f"layer{i + 1}", stage)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


class ModulatedDeformConv(nn.Module):
    """Modulated deformable 3x3 conv (DCNv2) on ``torchvision.ops.deform_conv2d``.

    A 3x3 conv predicts 27 channels per pixel: 18 sampling offsets as (dy, dx)
    pairs per kernel tap, then 9 modulation logits passed through a sigmoid.
    Parameter names (``weight``, ``bias``, ``conv_offset_mask``) match the
    original YOLACT++ checkpoints.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        self.stride = stride
        self.padding = dilation
        self.dilation = dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=1)
        self.conv_offset_mask = nn.Conv2d(
            in_channels, 27, kernel_size=3, stride=stride, padding=dilation, dilation=dilation
        )
        assert self.conv_offset_mask.bias is not None
        # Start as a plain conv: zero offsets, modulation 0.5 everywhere.
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv_offset_mask(x)  # [B, 27, H', W']
        offset = out[:, :18]
        mask = torch.sigmoid(out[:, 18:])
        result: Tensor = deform_conv2d(
            x,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )
        return result


def _dcn_blocks(num_blocks: int, dcn_layers: int, interval: int) -> list[bool]:
    """Which blocks of a stage are deformable: the first when ``dcn_layers``
    covers the whole stage, later ones among the last ``dcn_layers`` at
    multiples of ``interval``."""
    flags = [dcn_layers >= num_blocks]
    flags += [(i + dcn_layers) >= num_blocks and i % interval == 0 for i in range(1, num_blocks)]
    return flags


def _out_channels(stage: nn.Sequential) -> int:
    """Channels a ResNet stage puts out: those of its last block's last conv."""
    last = stage[-1]
    conv = cast(nn.Conv2d, last.conv3 if hasattr(last, "conv3") else last.conv2)
    return conv.out_channels


class ResNetBackbone(nn.Module):
    """ResNet stem and stages C2..C5.

    Attributes:
        channels: output channels of C2..C5.
    """

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        if cfg.depth not in _LAYOUTS:
            raise ValueError(f"unsupported ResNet depth {cfg.depth}; use one of {list(_LAYOUTS)}")
        if cfg.width < 1:
            raise ValueError(f"backbone width must be positive, got {cfg.width}")
        if cfg.width == 64:  # exactly what torchvision's resnet18..152 constructors build
            block, counts = _LAYOUTS[cfg.depth]
            net = resnet.ResNet(block, list(counts))
        else:
            net = _narrow_resnet(cfg.depth, cfg.width)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        stages: list[nn.Sequential] = [net.layer1, net.layer2, net.layer3, net.layer4]
        self.layers = nn.ModuleList(stages)
        self.channels: list[int] = [_out_channels(stage) for stage in stages]
        for stage, dcn_layers in zip(stages, cfg.dcn_layers):
            if dcn_layers <= 0:
                continue
            flags = _dcn_blocks(len(stage), dcn_layers, cfg.dcn_interval)
            for block, use_dcn in zip(stage, flags):
                if not use_dcn:
                    continue
                if not isinstance(block, resnet.Bottleneck):
                    raise ValueError("deformable convs need a Bottleneck ResNet (depth >= 50)")
                conv = block.conv2
                block.conv2 = ModulatedDeformConv(
                    conv.in_channels, conv.out_channels, conv.stride[0], conv.dilation[0]
                )

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """Args: x [B, 3, H, W]. Returns (C2, C3, C4, C5) at strides 4, 8, 16, 32."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for stage in self.layers:
            x = stage(x)
            outs.append(x)
        return tuple(outs)

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """{stage name: (channels, stride)} for C2..C5."""
        return {f"C{i + 2}": (c, 2 ** (i + 2)) for i, c in enumerate(self.channels)}
