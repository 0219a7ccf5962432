"""The registry: config names of every family, and which family a config or a file is."""

from __future__ import annotations

import pytest
import torch

from yolact import registry
from yolact.core.config import ConfigError
from yolact.core.weights import Checkpoint
from yolact.models.mask_rcnn.family import MASK_RCNN
from yolact.models.mask_rcnn.model import MaskRCNN
from yolact.models.yolact.family import YOLACT
from yolact.models.yolact.model import build_model


def test_every_config_name_belongs_to_one_family() -> None:
    names = registry.all_configs()
    assert {"yolact_base", "yolact_plus_base", "yolact_tiny"} <= set(names)
    assert {"mask_rcnn_r50_fpn", "mask_rcnn_r101_fpn", "mask_rcnn_tiny"} <= set(names)
    assert len(names) == sum(len(f.configs) for f in registry.FAMILIES)
    assert registry.family_of(registry.get_config("yolact_tiny_config")) is YOLACT
    assert registry.family_of(registry.get_config("mask_rcnn_tiny")) is MASK_RCNN


def test_unknown_names_kinds_and_configs_are_one_line_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown config 'yolact_tnyi'\. Did you mean yolact_tiny"
    ):
        registry.get_config("yolact_tnyi")
    with pytest.raises(ValueError, match="^unknown config kind 'detr'$"):
        registry.config_from_dict({"kind": "detr", "name": "x"})
    with pytest.raises(ConfigError, match="^dict is not the config of a registered model family$"):
        registry.family_of({})


def test_a_files_family_from_its_config_keys_or_torchvision_layout() -> None:
    torch.manual_seed(0)
    yolact = build_model(registry.get_config("yolact_tiny"))
    rcnn = MaskRCNN(registry.get_config("mask_rcnn_tiny"))
    assert registry.family_of_checkpoint(yolact.state_dict()) is YOLACT
    assert registry.family_of_checkpoint(rcnn.state_dict()) is MASK_RCNN
    module = {f"module.{k}": v for k, v in yolact.state_dict().items()}  # DataParallel
    assert registry.family_of_checkpoint(module) is YOLACT
    torchvision = {
        "backbone.body.conv1.weight": torch.zeros(64, 3, 7, 7),
        "rpn.head.conv.0.0.weight": torch.zeros(256, 256, 3, 3),
        "roi_heads.box_predictor.cls_score.weight": torch.zeros(91, 1024),
    }
    assert registry.family_of_checkpoint(torchvision) is MASK_RCNN
    assert registry.family_of_checkpoint({"fc.weight": torch.zeros(2, 2)}) is None
    stored = Checkpoint({}, registry.config_from_dict(rcnn.cfg.to_dict()))
    assert registry.family_of_checkpoint(stored) is MASK_RCNN
    # A stored config without "kind" (files written before there were families) is YOLACT.
    old = {k: v for k, v in yolact.cfg.to_dict().items() if k != "kind"}
    assert registry.config_from_dict(old) == yolact.cfg


def test_file_names_imply_configs_of_either_family() -> None:
    assert registry.config_name_from_checkpoint("w/yolact_plus_base_54_800000.pth") == (
        "yolact_plus_base"
    )
    assert registry.config_name_from_checkpoint("mask_rcnn_tiny_3_100_interrupt.pth") == (
        "mask_rcnn_tiny"
    )
    assert registry.config_name_from_checkpoint("maskrcnn_resnet50_fpn_coco.pth") is None
