"""The Mask R-CNN reference in training: its loss module, research options and hooks."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from yolact.core.family import TrainingHooks
from yolact.models.mask_rcnn.config import MaskRCNNConfig
from yolact.models.mask_rcnn.dynamic_rcnn import DynamicRCNN
from yolact.models.mask_rcnn.edge_loss import edge_loss
from yolact.models.mask_rcnn.model import MaskRCNN


class RCNNWithLoss(nn.Module):
    """The Mask R-CNN reference in training mode: torchvision's loss dict.

    Images come at the aspect ratio and scale the model predicts at (see
    :func:`~yolact.data.transforms.keep_aspect_train_transform`), so their sizes may differ;
    the model's own transform normalises and pads them. Labels are shifted past
    the background class.
    """

    def __init__(self, model: nn.Module, amp_dtype: torch.dtype | None) -> None:
        super().__init__()
        self.model = model
        self.amp_dtype = amp_dtype

    def forward(
        self, images: Tensor | list[Tensor], targets: list[dict[str, Tensor]]
    ) -> dict[str, Tensor]:
        """Args: ``images`` RGB in [0, 1], a list of [3, H_i, W_i] or a [B, 3, H, W]
        tensor; per image ``boxes`` [N, 4] xyxy pixels, ``labels`` [N] 0-based,
        ``masks`` [N, H_i, W_i]. Returns the named losses (float32 scalars)."""
        rcnn_targets = [
            {"boxes": t["boxes"], "labels": t["labels"] + 1, "masks": t["masks"]} for t in targets
        ]
        device_type = images[0].device.type
        with torch.autocast(device_type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):  # fmt: skip
            losses = self.model(list(images), rcnn_targets)
        return {k: v.float() for k, v in losses.items()}


class WeightedEdgeLoss:
    """The Sobel edge term of the mask loss, times its weight."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Args: ``logits``, ``targets`` [R, M, M]. Returns the weighted scalar term."""
        return self.weight * edge_loss(logits, targets)


def build_train_model(cfg: MaskRCNNConfig) -> MaskRCNN:
    """The network to train, with the edge loss when ``cfg.edge_loss_weight`` > 0."""
    extra = WeightedEdgeLoss(cfg.edge_loss_weight) if cfg.edge_loss_weight > 0 else None
    return MaskRCNN(cfg, mask_loss_extra=extra)


class DynamicRCNNHooks(TrainingHooks):
    """Dynamic R-CNN: after every step the RoI head follows the updater's IoU
    threshold and smooth-L1 beta (from the step's proposal statistics)."""

    def __init__(self, model: MaskRCNN, cfg: MaskRCNNConfig) -> None:
        self.model = model
        self.dynamic = DynamicRCNN(
            cfg.dynamic_k_iou, cfg.dynamic_k_beta, cfg.dynamic_interval,
            cfg.dynamic_start_iou, cfg.dynamic_start_beta,
        )  # fmt: skip
        self.apply()

    def apply(self) -> None:
        """Set the RoI head's IoU thresholds and box-loss beta to the updater's."""
        heads = self.model.roi_heads
        heads.fg_iou_thresh = heads.bg_iou_thresh = float(self.dynamic.iou_thresh)
        heads.box_loss_beta = float(self.dynamic.beta)

    def after_step(self) -> None:
        stats = self.model.roi_heads.last_stats
        self.dynamic.record(cast("list[Tensor]", stats["ious"]), cast(Tensor, stats["errors"]))
        self.apply()

    def state_dict(self) -> dict[str, Any] | None:
        return {"dynamic_rcnn": self.dynamic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "dynamic_rcnn" in state:
            self.dynamic.load_state_dict(state["dynamic_rcnn"])
            self.apply()
