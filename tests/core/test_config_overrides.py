"""``KEY=VALUE`` config overrides (``train.py --set``): parsing by field type, nested
keys, and one-line errors."""

from __future__ import annotations

import re

import pytest

from yolact.core.config import ConfigError, apply_overrides
from yolact.registry import get_config


def test_values_are_parsed_by_the_field_type() -> None:
    cfg = get_config("yolact_tiny")
    out = apply_overrides(
        cfg,
        [
            "max_size=192",
            "train.lr=2e-3",
            "train.lr_steps=10, 20",
            "train.assigner=atss",
            "train.lr_schedule=cosine",
            "scales=((8,), (16,), (32,), (64,), (128,))",
            "aspect_ratios=1,0.5",
            "nms.top_k=50",
            "use_maskiou=False",
            "use_semantic_seg=no",
            "backbone.width=16",
        ],
    )
    assert out.max_size == 192 and isinstance(out.max_size, int)
    assert out.train.lr == 2e-3 and out.train.lr_steps == (10, 20)
    assert (out.train.assigner, out.train.lr_schedule) == ("atss", "cosine")
    assert out.scales == ((8,), (16,), (32,), (64,), (128,))
    assert out.aspect_ratios == (1.0, 0.5)
    assert out.nms.top_k == 50 and out.use_maskiou is False and out.use_semantic_seg is False
    assert out.backbone.width == 16 and out.backbone.depth == cfg.backbone.depth
    # Everything else is the named config's, and the input is untouched.
    assert out.replace(
        max_size=cfg.max_size, train=cfg.train, scales=cfg.scales, aspect_ratios=cfg.aspect_ratios,
        nms=cfg.nms, use_semantic_seg=True, backbone=cfg.backbone,
    ) == cfg  # fmt: skip
    assert cfg.max_size == 160
    # Later items win; the Mask R-CNN reference takes the same syntax.
    assert apply_overrides(cfg, ["train.lr=1", "train.lr=3"]).train.lr == 3.0
    rcnn = apply_overrides(get_config("mask_rcnn_tiny"), ["min_size=128", "train.lr=0.01"])
    assert (rcnn.min_size, rcnn.train.lr) == (128, 0.01)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("train.lrr=1", "unknown config key 'train.lrr'; did you mean train.lr, train.lr_steps, "
         "train.lr_schedule?"),
        ("nothing_like_it=1", "unknown config key 'nothing_like_it'"),
        ("max_size", "expected KEY=VALUE, got 'max_size'"),
        ("=3", "expected KEY=VALUE, got '=3'"),
        ("train.lr=fast", "train.lr=fast: not a value of type float"),
        ("max_size=1.5", "max_size=1.5: not a value of type int"),
        ("use_maskiou=maybe", "use_maskiou=maybe: not a value of type bool"),
        ("train.lr_steps=a,b", "train.lr_steps=a,b: not a value of type tuple[int, ...]"),
        ("backbone.dcn_layers=1,2", "backbone.dcn_layers=1,2: not a value of type "
         "tuple[int, int, int, int]"),
        ("train=1", "'train' is a group of settings; set one of its fields (train.NAME)"),
        ("max_size.x=1", "unknown config key 'max_size.x': 'max_size' has no fields"),
        ("train.assigner=best", "train.assigner must be one of 'max_iou', 'atss'; got 'best'"),
        ("sigmoid_prior=2", "config yolact_tiny: sigmoid_prior must lie in (0, 1), got 2.0"),
    ],
)  # fmt: skip
def test_bad_items_are_one_line_errors(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        apply_overrides(get_config("yolact_tiny"), [item])
