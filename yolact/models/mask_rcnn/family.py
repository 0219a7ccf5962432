"""The Mask R-CNN reference as the engine sees it (:class:`~yolact.core.family.Family`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from yolact.core.config import ModelConfig
from yolact.core.family import ExportError, ExportSpec, Family, TrainingHooks, TrainTransform
from yolact.core.weights import Checkpoint
from yolact.data.transforms import keep_aspect_train_transform
from yolact.models.mask_rcnn.config import KIND, RCNN_CONFIGS, MaskRCNNConfig
from yolact.models.mask_rcnn.model import MaskRCNN
from yolact.models.mask_rcnn.predictor import RCNNPredictor
from yolact.models.mask_rcnn.training import DynamicRCNNHooks, RCNNWithLoss, build_train_model
from yolact.models.mask_rcnn.weights import (
    build_rcnn,
    holds_rcnn,
    load_rcnn_weights,
    rcnn_class_count,
    torchvision_config_name,
)


def _rcnn(cfg: ModelConfig) -> MaskRCNNConfig:
    if not isinstance(cfg, MaskRCNNConfig):
        raise TypeError(f"not a Mask R-CNN config: {type(cfg).__name__}")
    return cfg


class MaskRCNNFamily(Family):
    """The Mask R-CNN reference: configs ``mask_rcnn_*``, its own and torchvision's files,
    and its research options (Dynamic R-CNN, Soft-NMS, the edge loss)."""

    kind = KIND
    title = "Mask R-CNN"
    configs = RCNN_CONFIGS
    predictor_class = RCNNPredictor

    def owns_config(self, cfg: ModelConfig) -> bool:
        return isinstance(cfg, MaskRCNNConfig)

    def config_from_dict(self, d: dict[str, Any]) -> MaskRCNNConfig:
        return MaskRCNNConfig.from_dict(d)

    def holds_weights(self, state: dict[str, Tensor]) -> bool:
        return holds_rcnn(state)

    def config_name_for_state(self, state: dict[str, Tensor]) -> str | None:
        return torchvision_config_name(state)

    def class_count(self, cfg: ModelConfig, state: dict[str, Tensor]) -> int | None:
        return rcnn_class_count(_rcnn(cfg), state)

    def with_stored_classes(
        self, cfg: ModelConfig, stored: ModelConfig | None, names: tuple[str, ...]
    ) -> ModelConfig:
        output_ids = getattr(stored, "output_ids", None)
        return _rcnn(cfg).replace(class_names=names, output_ids=output_ids)

    def build_model(
        self, cfg: ModelConfig, checkpoint: Checkpoint | None = None, source: str = "checkpoint"
    ) -> MaskRCNN:
        return build_rcnn(_rcnn(cfg), checkpoint, source)

    def load_weights(
        self,
        model: nn.Module,
        checkpoint: Checkpoint,
        source: str = "checkpoint",
        allow_class_change: bool = False,
    ) -> list[str]:
        assert isinstance(model, MaskRCNN)
        load_rcnn_weights(model, checkpoint, source)
        return []

    def init_from_checkpoint(
        self, model: nn.Module, checkpoint: Checkpoint, source: str, log: Any
    ) -> bool:
        # A Mask R-CNN file, or any file with FPN weights (the loader names what does not fit).
        state = checkpoint.state_dict
        if not any(k.startswith(("roi_heads.", "fpn.")) for k in state):
            return False
        self.load_weights(model, checkpoint, source)
        return True

    def build_train_model(self, cfg: ModelConfig) -> MaskRCNN:
        return build_train_model(_rcnn(cfg))

    def training_module(
        self, model: nn.Module, cfg: ModelConfig, amp_dtype: torch.dtype | None = None
    ) -> RCNNWithLoss:
        return RCNNWithLoss(model, amp_dtype)

    def train_transform(self, cfg: ModelConfig) -> TrainTransform:
        c = _rcnn(cfg)
        tc = c.train
        return keep_aspect_train_transform(
            c.min_size, c.max_size, tc.discard_box_size, augment=tc.augment
        )

    def training_hooks(self, model: nn.Module, cfg: ModelConfig) -> TrainingHooks | None:
        c = _rcnn(cfg)
        if not c.dynamic_rcnn:
            return None
        assert isinstance(model, MaskRCNN)
        return DynamicRCNNHooks(model, c)

    def export_spec(
        self, model: nn.Module, cfg: ModelConfig, nms_method: str | None = None
    ) -> ExportSpec:
        raise ExportError(
            "the Mask R-CNN reference cannot be exported: torchvision's detector takes "
            "image lists and returns data-sized results (RPN, RoI heads), which the "
            "fixed-shape export layout does not hold; export a YOLACT model"
        )


MASK_RCNN = MaskRCNNFamily()
