"""The YOLACT network: backbone -> FPN -> (ProtoNet, shared prediction head)."""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

from yolact.core.backbone import ResNetBackbone
from yolact.core.fpn import FPN
from yolact.models.yolact.config import YolactConfig
from yolact.models.yolact.head import PredictionHead
from yolact.models.yolact.maskiou import MaskIoUNet
from yolact.models.yolact.priors import make_priors
from yolact.models.yolact.protonet import ProtoNet


class Yolact(nn.Module):
    """YOLACT / YOLACT++.

    The network stops at raw predictions: pre-processing
    (:mod:`yolact.models.yolact.preprocess`) and detection
    (:mod:`yolact.models.yolact.postprocess`) are
    separate so the network alone can be timed, traced and exported.

    Attributes:
        cfg: the config the model was built from.
        num_classes: classes including background.
        num_prototypes: k.
        anchors_per_cell: anchors at every cell of every level.
    """

    def __init__(self, cfg: YolactConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.num_prototypes = cfg.num_prototypes
        self.anchors_per_cell = cfg.anchors_per_cell
        self.backbone = ResNetBackbone(cfg.backbone)
        in_channels = [self.backbone.channels[i] for i in cfg.backbone.selected_layers]
        self.fpn = FPN(in_channels, cfg.fpn_channels, cfg.fpn_num_downsample)
        if len(cfg.scales) != self.fpn.num_levels:
            raise ValueError(
                f"config {cfg.name}: {len(cfg.scales)} anchor scale groups for "
                f"{self.fpn.num_levels} FPN levels"
            )
        self.proto_net = ProtoNet(cfg.fpn_channels, cfg.proto_channels, cfg.num_prototypes)
        self.prediction_layers = nn.ModuleList(
            [
                PredictionHead(
                    cfg.fpn_channels,
                    self.anchors_per_cell,
                    cfg.num_classes,
                    cfg.num_prototypes,
                    cfg.head_channels,
                    cfg.extra_layers,
                )
            ]
        )
        if cfg.use_semantic_seg:
            self.semantic_seg_conv = nn.Conv2d(cfg.fpn_channels, cfg.num_classes - 1, 1)
        if cfg.use_maskiou:
            self.maskiou_net = MaskIoUNet(cfg.num_classes - 1, cfg.maskiou_channels)
        self._prior_cache: dict[tuple, Tensor] = {}
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform weights and zero biases for everything after the backbone.

        A sigmoid classifier starts every class at probability ``cfg.sigmoid_prior``
        (pi): its class logits' weights are drawn from N(0, 0.01) and their bias is
        log(pi / (1 - pi)), so the many background priors do not swamp the focal
        loss at the first steps.
        """
        for name, module in self.named_modules():
            if name.startswith("backbone") or not isinstance(module, nn.Conv2d):
                continue
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        if self.cfg.classifier == "sigmoid":
            pi = self.cfg.sigmoid_prior
            for head in self.prediction_layers:
                conf = cast(PredictionHead, head).conf_layer
                assert conf.bias is not None
                nn.init.normal_(conf.weight, std=0.01)
                nn.init.constant_(conf.bias, math.log(pi / (1 - pi)))

    def priors(self, level_sizes: list[tuple[int, int]], device: torch.device) -> Tensor:
        """Priors for the given per-level feature sizes, cached.

        Returns:
            [num_priors, 4] (cx, cy, w, h), relative.
        """
        key = (tuple(level_sizes), str(device))
        if key not in self._prior_cache:
            cfg = self.cfg
            self._prior_cache[key] = torch.cat(
                [
                    make_priors(h, w, scales, cfg.aspect_ratios, cfg.max_size,
                                cfg.square_anchors, device)
                    for (h, w), scales in zip(level_sizes, cfg.scales)
                ]
            )  # fmt: skip
        return self._prior_cache[key]

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Run the network.

        Args:
            images: [B, 3, S, S] normalised RGB
                (see :class:`yolact.models.yolact.preprocess.Preprocessor`).

        Returns:
            A dict with ``loc`` [B, P, 4] box offsets, ``conf`` [B, P, C] class
            logits, ``coef`` [B, P, k] mask coefficients, ``proto`` [B, h, w, k]
            prototypes, ``priors`` [P, 4]; in training mode also ``prior_levels``
            [L] int64 priors per FPN level (on the host) and ``segm`` [B, C-1, h/2, w/2] semantic
            logits when the config keeps that layer.
        """
        feats = self.backbone(images)
        pyramid = self.fpn([feats[i] for i in self.cfg.backbone.selected_layers])
        proto = self.proto_net(pyramid[0])  # [B, 2h, 2w, k]
        head = self.prediction_layers[0]
        outs = [head(p) for p in pyramid]
        loc = torch.cat([o[0] for o in outs], dim=1)  # [B, P, 4]
        conf = torch.cat([o[1] for o in outs], dim=1)  # [B, P, C]
        coef = torch.cat([o[2] for o in outs], dim=1)  # [B, P, k]
        sizes = [(p.shape[2], p.shape[3]) for p in pyramid]
        result = {
            "loc": loc,
            "conf": conf,
            "coef": coef,
            "proto": proto,
            "priors": self.priors(sizes, images.device),
        }
        if self.training:
            counts = [h * w * self.cfg.anchors_per_cell for h, w in sizes]
            # On the host: the loss reads the counts in Python, so a device copy would sync.
            result["prior_levels"] = torch.tensor(counts)
        if self.training and self.cfg.use_semantic_seg:
            result["segm"] = self.semantic_seg_conv(pyramid[0])
        return result


def build_model(cfg: YolactConfig, device: torch.device | str | None = None) -> Yolact:
    """Build an (untrained) model from a config, in eval mode."""
    model = Yolact(cfg).eval()
    return model.to(device) if device is not None else model
