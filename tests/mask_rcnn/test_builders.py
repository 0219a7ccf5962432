"""MaskRCNN is composed of its builders (yolact/models/mask_rcnn/model.py): each part
checks its own config and builds the same modules as the model holds (issue 17, item 7)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from yolact.models.mask_rcnn.model import (
    FEATURE_NAMES,
    MaskRCNN,
    build_backbone,
    build_fpn,
    build_roi_heads,
    build_rpn,
    build_transform,
)
from yolact.registry import get_config


def _shapes(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(t.shape)) for name, t in module.state_dict().items()]


def test_the_model_holds_what_the_builders_build() -> None:
    cfg = get_config("mask_rcnn_tiny")
    model = MaskRCNN(cfg)
    backbone = build_backbone(cfg)
    strides = [stride for _, stride in backbone.output_shape().values()]
    assert strides == [4, 8, 16, 32]
    assert model.feature_names == list(FEATURE_NAMES)
    assert _shapes(model.backbone) == _shapes(backbone)
    assert _shapes(model.fpn) == _shapes(build_fpn(cfg, backbone.channels))
    assert _shapes(model.rpn) == _shapes(build_rpn(cfg))
    assert _shapes(model.roi_heads) == _shapes(build_roi_heads(cfg, strides, None, None))
    assert repr(model.transform) == repr(build_transform(cfg))


def test_the_same_seed_gives_the_same_weights() -> None:
    cfg = get_config("mask_rcnn_tiny")
    torch.manual_seed(0)
    a = MaskRCNN(cfg).state_dict()
    torch.manual_seed(0)
    b = MaskRCNN(cfg).state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_each_builder_checks_its_part_of_the_config() -> None:
    cfg = get_config("mask_rcnn_tiny")
    with pytest.raises(ValueError) as e:
        backbone_cfg = dataclasses.replace(cfg.backbone, selected_layers=(1, 2, 3))
        build_backbone(cfg.replace(backbone=backbone_cfg))
    assert str(e.value) == f"config {cfg.name}: Mask R-CNN's FPN takes C2..C5 (0, 1, 2, 3)"
    backbone = build_backbone(cfg)
    with pytest.raises(ValueError) as e:
        build_fpn(cfg.replace(anchor_sizes=(32, 64)), backbone.channels)
    assert str(e.value) == f"config {cfg.name}: 2 anchor sizes for 5 FPN levels"
