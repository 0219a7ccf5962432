"""YOLACT in training: the model and its loss in one module, and the loss from a config."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolact.models.yolact.config import YolactConfig
from yolact.models.yolact.loss import LossWeights, YolactLoss
from yolact.models.yolact.model import Yolact


class NetWithLoss(nn.Module):
    """Model and criterion in one module, so DDP sees every parameter the loss uses
    (the YOLACT++ mask IoU net runs inside the criterion)."""

    def __init__(self, model: Yolact, criterion: YolactLoss, amp_dtype: torch.dtype | None) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion
        self.amp_dtype = amp_dtype

    def forward(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Args: ``images`` [B, 3, S, S] normalised; per image ``boxes`` [N, 4] relative
        xyxy, ``labels`` [N] 0-based, ``masks`` [N, H, W]. Returns the named losses."""
        device_type = images.device.type
        with torch.autocast(device_type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):  # fmt: skip
            outputs = self.model(images)
        outputs = {k: v.float() if v.is_floating_point() else v for k, v in outputs.items()}
        return self.criterion(outputs, targets, getattr(self.model, "maskiou_net", None))


def build_criterion(cfg: YolactConfig) -> YolactLoss:
    """The loss of ``cfg`` with its training settings."""
    tc = cfg.train
    weights = LossWeights(
        bbox=tc.bbox_alpha, conf=tc.conf_alpha, mask=tc.mask_alpha,
        semantic=tc.semantic_alpha, maskiou=tc.maskiou_alpha,
    )  # fmt: skip
    return YolactLoss(
        cfg.num_classes,
        pos_thresh=tc.pos_thresh,
        neg_thresh=tc.neg_thresh,
        crowd_iou_thresh=tc.crowd_iou_thresh,
        negpos_ratio=tc.negpos_ratio,
        masks_to_train=tc.masks_to_train,
        use_focal_loss=cfg.classifier == "sigmoid",
        focal_alpha=tc.focal_alpha,
        focal_gamma=tc.focal_gamma,
        weights=weights,
        use_maskiou=cfg.use_maskiou,
        discard_mask_area=tc.discard_mask_area,
        assigner=tc.assigner,
        atss_topk=tc.atss_topk,
        box_loss=tc.box_loss,
    )
