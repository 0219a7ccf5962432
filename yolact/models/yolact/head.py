"""The prediction head shared by all FPN levels."""

from __future__ import annotations

from torch import Tensor, nn


def _extra(channels: int, count: int) -> nn.Sequential:
    """``count`` 3x3 conv + ReLU pairs (an empty Sequential, the identity, for 0)."""
    layers: list[nn.Module] = []
    for _ in range(count):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class PredictionHead(nn.Module):
    """A 3x3 conv + ReLU ("upfeature"), then three 3x3 convs predicting, per
    anchor, box offsets (4), class logits (C, background first) and mask
    coefficients (k, tanh-activated). ``extra_layers`` puts that many more
    3x3 conv + ReLU pairs in front of each of the three (the original's
    ``extra_layers``, keys ``bbox_extra.N`` / ``conf_extra.N`` / ``mask_extra.N``).

    Outputs are flattened in (y, x, anchor) order, matching the priors.
    """

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        num_classes: int,
        num_prototypes: int,
        channels: int = 256,
        extra_layers: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.num_classes = num_classes
        self.num_prototypes = num_prototypes
        self.upfeature = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.bbox_extra, self.conf_extra, self.mask_extra = (
            _extra(channels, n) for n in extra_layers
        )
        self.bbox_layer = nn.Conv2d(channels, num_anchors * 4, 3, padding=1)
        self.conf_layer = nn.Conv2d(channels, num_anchors * num_classes, 3, padding=1)
        self.mask_layer = nn.Conv2d(channels, num_anchors * num_prototypes, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Args: x [B, C, H, W].

        Returns:
            loc [B, H*W*A, 4], conf logits [B, H*W*A, num_classes],
            coef [B, H*W*A, k] in (-1, 1).
        """
        B = x.shape[0]
        x = self.upfeature(x)
        loc = self.bbox_layer(self.bbox_extra(x)).permute(0, 2, 3, 1).reshape(B, -1, 4)
        conf = self.conf_layer(self.conf_extra(x)).permute(0, 2, 3, 1)
        conf = conf.reshape(B, -1, self.num_classes)
        coef = self.mask_layer(self.mask_extra(x)).permute(0, 2, 3, 1)
        coef = coef.reshape(B, -1, self.num_prototypes)
        return loc, conf, coef.tanh()
