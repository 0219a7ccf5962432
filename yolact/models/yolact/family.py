"""The YOLACT / YOLACT++ family as the engine sees it (:class:`~yolact.core.family.Family`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from yolact.core.config import ModelConfig
from yolact.core.family import ExportError, ExportSpec, Family, TrainTransform
from yolact.core.weights import Checkpoint
from yolact.data.transforms import train_transform
from yolact.models.yolact.config import CONFIGS, YolactConfig
from yolact.models.yolact.fixed_post import YolactInference
from yolact.models.yolact.model import Yolact, build_model
from yolact.models.yolact.predictor import YolactPredictor
from yolact.models.yolact.training import NetWithLoss, build_criterion
from yolact.models.yolact.weights import holds_yolact, load_weights, weights_class_count

KIND = "yolact"


def _yolact(cfg: ModelConfig) -> YolactConfig:
    if not isinstance(cfg, YolactConfig):
        raise TypeError(f"not a YOLACT config: {type(cfg).__name__}")
    return cfg


class YolactFamily(Family):
    """YOLACT and YOLACT++: configs ``yolact_*``, original and own checkpoints.

    Its stored configs carry no ``"kind"`` (files written before there were
    families) or ``"kind": "yolact"``.
    """

    kind = KIND
    title = "YOLACT"
    configs = CONFIGS
    predictor_class = YolactPredictor

    def owns_config(self, cfg: ModelConfig) -> bool:
        return isinstance(cfg, YolactConfig)

    def stores_kind(self, d: dict[str, Any]) -> bool:
        return d.get("kind", KIND) == KIND

    def config_from_dict(self, d: dict[str, Any]) -> YolactConfig:
        return YolactConfig.from_dict({k: v for k, v in d.items() if k != "kind"})

    def holds_weights(self, state: dict[str, Tensor]) -> bool:
        return holds_yolact(state)

    def class_count(self, cfg: ModelConfig, state: dict[str, Tensor]) -> int | None:
        return weights_class_count(_yolact(cfg), state)

    def build_model(
        self, cfg: ModelConfig, checkpoint: Checkpoint | None = None, source: str = "checkpoint"
    ) -> Yolact:
        model = build_model(_yolact(cfg))
        if checkpoint is not None:
            load_weights(model, checkpoint, source=source)
        return model

    def load_weights(
        self,
        model: nn.Module,
        checkpoint: Checkpoint,
        source: str = "checkpoint",
        allow_class_change: bool = False,
    ) -> list[str]:
        return load_weights(model, checkpoint, allow_class_change, source)

    def init_from_checkpoint(
        self, model: nn.Module, checkpoint: Checkpoint, source: str, log: Any
    ) -> bool:
        # A YOLACT file, or any file with FPN weights (the loader names what does not fit).
        state = checkpoint.state_dict
        if not any(k.startswith(("prediction_layers.", "fpn.")) for k in state):
            return False
        skipped = load_weights(model, checkpoint, allow_class_change=True, source=source)
        if skipped:
            log.warning("re-initialised for the new classes: %s", ", ".join(skipped))
        return True

    def build_train_model(self, cfg: ModelConfig) -> Yolact:
        return Yolact(_yolact(cfg))

    def training_module(
        self, model: nn.Module, cfg: ModelConfig, amp_dtype: torch.dtype | None = None
    ) -> NetWithLoss:
        assert isinstance(model, Yolact)
        return NetWithLoss(model, build_criterion(_yolact(cfg)), amp_dtype)

    def train_transform(self, cfg: ModelConfig) -> TrainTransform:
        c = _yolact(cfg)
        tc = c.train
        return train_transform(c.max_size, discard_size=tc.discard_box_size, augment=tc.augment)

    def export_spec(
        self, model: nn.Module, cfg: ModelConfig, nms_method: str | None = None
    ) -> ExportSpec:
        yc = _yolact(cfg)
        nms = yc.nms if nms_method is None else yc.with_nms(method=nms_method).nms
        if nms.method == "standard":
            raise ExportError(
                "standard NMS loops over images and cannot be exported; use fast or cross_class"
            )
        return ExportSpec(
            module=YolactInference(model, nms).eval(),  # type: ignore[arg-type]
            input_size=yc.max_size,
            pixel_mean=yc.pixel_mean,
            pixel_std=yc.pixel_std,
            channels="rgb",
            nms_method=nms.method,
            deformable=yc.deformable,
        )


YOLACT = YolactFamily()
