"""YOLACT's training settings: the shared optimisation settings plus its loss settings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from yolact.core.config import TrainConfig

# Which priors train on which object, and the box term of the loss.
Assigner = Literal["max_iou", "atss"]
BoxLoss = Literal["smooth_l1", "giou"]
ASSIGNERS: tuple[Assigner, ...] = get_args(Assigner)
BOX_LOSSES: tuple[BoxLoss, ...] = get_args(BoxLoss)


@dataclass(frozen=True)
class YolactTrainConfig(TrainConfig):
    """:class:`~yolact.core.config.TrainConfig` and the YOLACT loss settings.

    Attributes:
        pos_thresh, neg_thresh, crowd_iou_thresh, negpos_ratio, masks_to_train,
        discard_mask_area: loss settings (see :class:`yolact.models.yolact.loss.YolactLoss`).
        assigner: which priors train on which object: ``"max_iou"`` (the original's:
            IoU against ``pos_thresh`` / ``neg_thresh``, plus each object's best
            prior) or ``"atss"`` (adaptive: per FPN level the ``atss_topk`` priors
            nearest each object's centre are candidates, and those whose IoU reaches
            the candidates' mean plus standard deviation, with their centre inside
            the box, are positives; see :func:`yolact.models.yolact.match.match`).
        atss_topk: candidates per FPN level and object for ``"atss"``.
        box_loss: the box term: ``"smooth_l1"`` on the encoded offsets (the
            original's) or ``"giou"`` (generalised IoU loss of the decoded boxes);
            either is multiplied by ``bbox_alpha``.
        focal_alpha, focal_gamma: the sigmoid focal loss of a ``classifier="sigmoid"`` model.
        bbox_alpha, conf_alpha, mask_alpha, semantic_alpha, maskiou_alpha: loss weights.
    """

    pos_thresh: float = 0.5
    neg_thresh: float = 0.4
    crowd_iou_thresh: float = 0.7
    negpos_ratio: int = 3
    masks_to_train: int = 100
    assigner: Assigner = "max_iou"
    atss_topk: int = 9
    box_loss: BoxLoss = "smooth_l1"
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    discard_mask_area: float = 25.0
    bbox_alpha: float = 1.5
    conf_alpha: float = 1.0
    mask_alpha: float = 6.125
    semantic_alpha: float = 1.0
    maskiou_alpha: float = 25.0

    @classmethod
    def extend(cls, shared: TrainConfig, **loss: Any) -> YolactTrainConfig:
        """``shared``'s optimisation settings with YOLACT's loss settings (the
        defaults, changed by ``loss``); a ``YolactTrainConfig`` keeps its own."""
        values: dict[str, Any] = {f.name: getattr(shared, f.name) for f in fields(shared)}
        return cls(**{**values, **loss})
