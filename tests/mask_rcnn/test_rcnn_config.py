"""The Mask R-CNN reference's string options (FPN upsampling and extra level, Soft-NMS):
Literal types shared with the FPN and Soft-NMS code, checked when a config is built,
also from a checkpoint's stored config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import exactly

from yolact.core.config import ConfigError
from yolact.core.fpn import EXTRA_LEVELS, UPSAMPLE_MODES
from yolact.core.weights import CheckpointError
from yolact.models.mask_rcnn.config import MaskRCNNConfig
from yolact.models.mask_rcnn.soft_nms import METHODS
from yolact.registry import config_from_dict, get_config, read_checkpoint

OPTIONS = [
    (
        "fpn_upsample",
        "bicubic",
        "config mask_rcnn_tiny: fpn_upsample must be one of 'bilinear', 'nearest'; got 'bicubic'",
    ),
    (
        "fpn_extra",
        "pool",
        "config mask_rcnn_tiny: fpn_extra must be one of 'conv', 'maxpool'; got 'pool'",
    ),
    (
        "soft_nms",
        "hard",
        "config mask_rcnn_tiny: soft_nms must be None or one of 'gaussian', 'linear'; got 'hard'",
    ),
]


def test_every_allowed_value_builds() -> None:
    cfg = get_config("mask_rcnn_tiny")
    assert isinstance(cfg, MaskRCNNConfig)
    for mode in UPSAMPLE_MODES:
        assert cfg.replace(fpn_upsample=mode).fpn_upsample == mode
    for extra in EXTRA_LEVELS:
        assert cfg.replace(fpn_extra=extra).fpn_extra == extra
    for method in (*METHODS, None):
        assert cfg.replace(soft_nms=method).soft_nms == method


@pytest.mark.parametrize(("field", "bad", "message"), OPTIONS)
def test_option_is_checked_when_built(field: str, bad: str, message: str) -> None:
    with pytest.raises(ConfigError, match=exactly(message)):
        MaskRCNNConfig(name="mask_rcnn_tiny", **{field: bad})
    with pytest.raises(ConfigError, match=exactly(message)):
        get_config("mask_rcnn_tiny").replace(**{field: bad})


@pytest.mark.parametrize(("field", "bad", "message"), OPTIONS)
def test_option_is_checked_in_a_stored_config(
    tmp_path: Path, field: str, bad: str, message: str
) -> None:
    stored = {**get_config("mask_rcnn_tiny").to_dict(), field: bad}
    with pytest.raises(ConfigError, match=exactly(message)):
        MaskRCNNConfig.from_dict(stored)
    with pytest.raises(ConfigError, match=exactly(message)):
        config_from_dict(stored)
    path = tmp_path / "mask_rcnn_tiny_1_10.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "config": stored}, path)
    line = f"checkpoint {path} has an unreadable config (ConfigError: {message})"
    with pytest.raises(CheckpointError, match=exactly(line)):
        read_checkpoint(str(path))
