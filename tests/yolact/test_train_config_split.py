"""Issue 17 item 3: the YOLACT loss settings are the YOLACT family's
(:class:`YolactTrainConfig`), not fields of the shared TrainConfig; configs
stored with them in the shared settings still load, in either family."""

from __future__ import annotations

import dataclasses

import pytest

from yolact.core.config import ConfigError, TrainConfig, apply_overrides
from yolact.models.yolact.config import YolactConfig
from yolact.models.yolact.train_config import YolactTrainConfig
from yolact.registry import config_from_dict, get_config

LOSS_FIELDS = (
    "pos_thresh", "neg_thresh", "crowd_iou_thresh", "negpos_ratio", "masks_to_train",
    "assigner", "atss_topk", "box_loss", "focal_alpha", "focal_gamma", "discard_mask_area",
    "bbox_alpha", "conf_alpha", "mask_alpha", "semantic_alpha", "maskiou_alpha",
)  # fmt: skip
# The training settings as every config stored them before the split.
STORED_LOSS = {
    "pos_thresh": 0.55, "neg_thresh": 0.35, "crowd_iou_thresh": 0.7, "negpos_ratio": 3,
    "masks_to_train": 100, "assigner": "atss", "atss_topk": 9, "box_loss": "giou",
    "focal_alpha": 0.25, "focal_gamma": 2.0, "discard_mask_area": 25.0, "bbox_alpha": 1.5,
    "conf_alpha": 1.0, "mask_alpha": 6.125, "semantic_alpha": 1.0, "maskiou_alpha": 25.0,
}  # fmt: skip


def test_the_shared_settings_hold_no_yolact_loss_field() -> None:
    shared = {f.name for f in dataclasses.fields(TrainConfig)}
    assert shared.isdisjoint(LOSS_FIELDS)
    own = {f.name for f in dataclasses.fields(YolactTrainConfig)} - shared
    assert own == set(LOSS_FIELDS)
    assert isinstance(get_config("yolact_tiny").train, YolactTrainConfig)
    assert type(get_config("mask_rcnn_tiny").train) is TrainConfig


def test_yolact_configs_keep_their_values() -> None:
    tiny = get_config("yolact_tiny").train
    assert (tiny.assigner, tiny.optimizer, tiny.lr_steps, tiny.max_iter) == (
        "atss", "adamw", (1800, 2250), 2400,
    )  # fmt: skip
    base = get_config("yolact_base").train
    assert (base.assigner, base.box_loss, base.mask_alpha, base.lr) == (
        "max_iou", "smooth_l1", 6.125, 1e-3,
    )  # fmt: skip


def test_a_shared_train_config_given_to_yolact_gets_the_loss_defaults() -> None:
    cfg = YolactConfig(name="x", train=TrainConfig(lr=2e-3, max_iter=4))
    assert isinstance(cfg.train, YolactTrainConfig)
    assert (cfg.train.lr, cfg.train.max_iter, cfg.train.pos_thresh) == (2e-3, 4, 0.5)


@pytest.mark.parametrize("name", ["yolact_tiny", "mask_rcnn_tiny"])
def test_a_config_stored_with_the_loss_keys_loads(name: str) -> None:
    stored = get_config(name).to_dict()
    stored["train"] = {**stored["train"], **STORED_LOSS}
    cfg = config_from_dict(stored)
    if name == "yolact_tiny":
        assert (cfg.train.assigner, cfg.train.box_loss, cfg.train.pos_thresh) == (
            "atss", "giou", 0.55,
        )  # fmt: skip
    else:
        assert cfg == get_config(name)  # the keys had no effect on Mask R-CNN


def test_an_unknown_stored_train_key_is_still_refused() -> None:
    with pytest.raises(TypeError, match="surprise"):
        TrainConfig.from_dict({**dataclasses.asdict(TrainConfig()), "surprise": 1})


def test_loss_overrides_go_to_yolact_only() -> None:
    cfg = apply_overrides(get_config("yolact_tiny"), ["train.pos_thresh=0.6"])
    assert cfg.train.pos_thresh == 0.6
    with pytest.raises(ConfigError, match=r"^unknown config key 'train\.pos_thresh'"):
        apply_overrides(get_config("mask_rcnn_tiny"), ["train.pos_thresh=0.6"])
