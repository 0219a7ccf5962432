"""Feature pyramid: a top-down path over backbone stages, then extra coarser levels.

The defaults are YOLACT's FPN (P3..P5 from C3..C5, bilinear top-down, ReLU on
the outputs, P6 and P7 by stride-2 convs). Keyword options give the FPN of the
Mask R-CNN reference (torchvision's ``FeaturePyramidNetwork`` with
``LastLevelMaxPool``, as detectron2): P2..P5 from C2..C5, nearest top-down, no
ReLU, P6 by a stride-2 max-pool of P5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch.nn.functional as F
from torch import Tensor, nn

UpsampleMode = Literal["bilinear", "nearest"]
ExtraLevels = Literal["conv", "maxpool"]
UPSAMPLE_MODES: tuple[UpsampleMode, ...] = get_args(UpsampleMode)
EXTRA_LEVELS: tuple[ExtraLevels, ...] = get_args(ExtraLevels)


class FPN(nn.Module):
    """A feature pyramid with YOLACT's module layout.

    Lateral 1x1 convs are stored coarsest first (``lat_layers[0]`` takes the
    coarsest input), as are the 3x3 output convs (``pred_layers[0]`` gives the
    coarsest merged level), matching the original YOLACT checkpoints. The
    top-down path upsamples to the finer lateral's exact size.

    Args:
        in_channels: channels of the inputs, finest first (e.g. C3, C4, C5).
        channels: width of every output level.
        num_downsample: extra levels after the coarsest input (P6, P7, ...).
        upsample: top-down interpolation, "bilinear" (YOLACT) or "nearest"
            (torchvision, detectron2).
        relu_outputs: ReLU after the 3x3 output convs (YOLACT); the extra levels
            never get one.
        extra_levels: "conv" (3x3 stride-2 convs, each on the previous level, in
            ``downsample_layers``) or "maxpool" (max-pool with kernel 1, stride 2
            of the previous level, no parameters, as torchvision's ``LastLevelMaxPool``).

    Attributes:
        channels: output width.
        num_levels: number of output levels.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int = 256,
        num_downsample: int = 2,
        *,
        upsample: UpsampleMode = "bilinear",
        relu_outputs: bool = True,
        extra_levels: ExtraLevels = "conv",
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"FPN upsample must be one of {UPSAMPLE_MODES}: '{upsample}'")
        if extra_levels not in EXTRA_LEVELS:
            raise ValueError(f"FPN extra_levels must be one of {EXTRA_LEVELS}: '{extra_levels}'")
        self.lat_layers = nn.ModuleList(
            [nn.Conv2d(c, channels, kernel_size=1) for c in reversed(in_channels)]
        )
        self.pred_layers = nn.ModuleList(
            [nn.Conv2d(channels, channels, kernel_size=3, padding=1) for _ in in_channels]
        )
        num_convs = num_downsample if extra_levels == "conv" else 0
        self.downsample_layers = nn.ModuleList(
            [
                nn.Conv2d(channels, channels, kernel_size=3, padding=1, stride=2)
                for _ in range(num_convs)
            ]
        )
        self.channels = channels
        self.num_levels = len(in_channels) + num_downsample
        self.num_downsample = num_downsample
        self.upsample = upsample
        self.relu_outputs = relu_outputs
        self.extra_levels = extra_levels

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Args: feats, finest first (e.g. C3, C4, C5), each [B, C_i, H_i, W_i].

        Returns:
            ``num_levels`` maps [B, channels, H_l, W_l], finest first (e.g. P3..P7).
        """
        n = len(feats)
        merged: list[Tensor] = [feats[0]] * n
        x = None
        for j, lat in zip(range(n - 1, -1, -1), self.lat_layers):
            lateral = lat(feats[j])
            if x is not None:
                H, W = feats[j].shape[-2:]
                if self.upsample == "bilinear":
                    x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
                else:
                    x = F.interpolate(x, size=(H, W), mode="nearest")
                lateral = x + lateral
            x = lateral
            merged[j] = x
        outs = [pred(merged[j]) for j, pred in zip(range(n - 1, -1, -1), self.pred_layers)][::-1]
        if self.relu_outputs:
            outs = [F.relu(o) for o in outs]
        if self.extra_levels == "conv":
            for down in self.downsample_layers:
                outs.append(down(outs[-1]))
        else:
            for _ in range(self.num_downsample):
                outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return outs
