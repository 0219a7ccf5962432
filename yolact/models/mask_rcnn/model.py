"""The two-stage Mask R-CNN reference on the same backbone and FPN classes as YOLACT.

backbone (:class:`~yolact.core.backbone.ResNetBackbone`, C2..C5) -> FPN
(:class:`~yolact.core.fpn.FPN` in its torchvision/detectron2 form, P2..P6) ->
torchvision's RPN -> RoI heads (:class:`~yolact.models.mask_rcnn.heads.MaskRoIHeads`
on torchvision's box and mask heads). Pre-processing is torchvision's
``GeneralizedRCNNTransform`` (resize, normalise, pad to a multiple of 32), so a
comparison with YOLACT measures the heads, and torchvision's
``maskrcnn_resnet50_fpn`` files give torchvision's detections.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from typing import cast

import torch
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from yolact.core.backbone import ResNetBackbone
from yolact.core.fpn import FPN
from yolact.models.mask_rcnn.config import MaskRCNNConfig
from yolact.models.mask_rcnn.heads import MaskLossExtra, MaskRoIHeads, NmsFn
from yolact.models.mask_rcnn.poolers import make_pooler
from yolact.models.mask_rcnn.soft_nms import soft_nms

Targets = list[dict[str, Tensor]]


def soft_nms_fn(cfg: MaskRCNNConfig) -> NmsFn | None:
    """The config's test-time Soft-NMS as an ``NmsFn`` (None: plain NMS)."""
    if cfg.soft_nms is None:
        return None
    return partial(
        soft_nms, method=cfg.soft_nms, sigma=cfg.soft_nms_sigma, score_thresh=cfg.soft_nms_min_score
    )


# FPN level names in the feature dict: P2..P5 pooled by the RoI heads, then P6.
FEATURE_NAMES = ("0", "1", "2", "3", "pool")


def build_backbone(cfg: MaskRCNNConfig) -> ResNetBackbone:
    """The ResNet giving C2..C5.

    Raises:
        ValueError: the config selects other backbone stages.
    """
    if tuple(cfg.backbone.selected_layers) != (0, 1, 2, 3):
        raise ValueError(f"config {cfg.name}: Mask R-CNN's FPN takes C2..C5 (0, 1, 2, 3)")
    return ResNetBackbone(cfg.backbone)


def build_fpn(cfg: MaskRCNNConfig, in_channels: Sequence[int]) -> FPN:
    """The torchvision/detectron2 FPN: P2..P5 from C2..C5 and P6 by max pooling.

    Raises:
        ValueError: the config's anchor sizes are not one per FPN level.
    """
    fpn = FPN(
        in_channels,
        cfg.fpn_channels,
        num_downsample=1,
        upsample=cfg.fpn_upsample,
        relu_outputs=False,
        extra_levels=cfg.fpn_extra,
    )
    if len(cfg.anchor_sizes) != fpn.num_levels:
        raise ValueError(
            f"config {cfg.name}: {len(cfg.anchor_sizes)} anchor sizes for "
            f"{fpn.num_levels} FPN levels"
        )
    return fpn


def build_transform(cfg: MaskRCNNConfig) -> GeneralizedRCNNTransform:
    """torchvision's pre- and post-processing: resize, normalise, pad; paste back."""
    return GeneralizedRCNNTransform(
        cfg.min_size, cfg.max_size, list(cfg.image_mean), list(cfg.image_std),
        size_divisible=cfg.size_divisible,
    )  # fmt: skip


def build_rpn(cfg: MaskRCNNConfig) -> RegionProposalNetwork:
    """torchvision's RPN with one anchor size per FPN level and the config's ratios."""
    levels = len(cfg.anchor_sizes)
    anchors = AnchorGenerator(
        tuple((s,) for s in cfg.anchor_sizes), (tuple(cfg.anchor_ratios),) * levels
    )
    return RegionProposalNetwork(
        anchors,
        RPNHead(cfg.fpn_channels, anchors.num_anchors_per_location()[0]),
        cfg.rpn_fg_iou_thresh,
        cfg.rpn_bg_iou_thresh,
        cfg.rpn_batch_size_per_image,
        cfg.rpn_positive_fraction,
        {"training": cfg.rpn_pre_nms_top_n_train, "testing": cfg.rpn_pre_nms_top_n_test},
        {"training": cfg.rpn_post_nms_top_n_train, "testing": cfg.rpn_post_nms_top_n_test},
        cfg.rpn_nms_thresh,
        score_thresh=cfg.rpn_score_thresh,
    )


def build_roi_heads(
    cfg: MaskRCNNConfig,
    strides: Sequence[int],
    nms_fn: NmsFn | None,
    mask_loss_extra: MaskLossExtra | None,
) -> MaskRoIHeads:
    """The box and mask heads on RoIAlign poolers over P2..P5.

    Args:
        cfg: the model's config.
        strides: the strides of C2..C5 (4..32).
        nms_fn: test-time suppression (None: torchvision's NMS).
        mask_loss_extra: extra mask-loss term (see :class:`MaskRoIHeads`).
    """
    C = cfg.fpn_channels
    pool = partial(
        make_pooler,
        list(FEATURE_NAMES[:4]),
        sampling_ratio=cfg.roi_sampling_ratio,
        strides=list(strides),
        aligned=cfg.roi_align_aligned,
    )
    mask_dim = cfg.mask_head_channels[-1]
    return MaskRoIHeads(
        pool(output_size=cfg.box_pool_size),
        TwoMLPHead(C * cfg.box_pool_size**2, cfg.box_head_dim),
        FastRCNNPredictor(cfg.box_head_dim, cfg.num_classes),
        pool(output_size=cfg.mask_pool_size),
        MaskRCNNHeads(C, list(cfg.mask_head_channels), 1),
        MaskRCNNPredictor(mask_dim, mask_dim, cfg.num_classes),
        fg_iou_thresh=cfg.roi_fg_iou_thresh,
        bg_iou_thresh=cfg.roi_bg_iou_thresh,
        batch_size_per_image=cfg.roi_batch_size_per_image,
        positive_fraction=cfg.roi_positive_fraction,
        bbox_reg_weights=cast(tuple[float, float, float, float], tuple(cfg.box_coder_weights)),
        score_thresh=cfg.box_score_thresh,
        nms_thresh=cfg.box_nms_thresh,
        detections_per_img=cfg.detections_per_img,
        box_loss_beta=cfg.box_loss_beta,
        aligned_mask_targets=cfg.roi_align_aligned,
        nms_fn=nms_fn,
        mask_loss_extra=mask_loss_extra,
    )


class MaskRCNN(nn.Module):
    """Mask R-CNN with a ResNet-FPN backbone.

    Inputs and outputs are torchvision's: a list of RGB images [3, H, W] in 0..1
    (sizes may differ); in training the loss dict, in eval per image ``boxes``
    [N, 4] xyxy pixels, ``labels`` [N] (1-based classifier outputs), ``scores``
    [N] and ``masks`` [N, 1, H, W] probabilities at the input image size.

    Args:
        cfg: the model's config.
        nms_fn: test-time suppression (default: the config's Soft-NMS or NMS).
        mask_loss_extra: extra mask-loss term (see :class:`MaskRoIHeads`).

    Attributes:
        cfg: the config.
        num_classes: classifier outputs including background.
        feature_names: FPN level names in the feature dict ("0".."3", "pool").
    """

    def __init__(
        self,
        cfg: MaskRCNNConfig,
        nms_fn: NmsFn | None = None,
        mask_loss_extra: MaskLossExtra | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.backbone = build_backbone(cfg)
        self.fpn = build_fpn(cfg, self.backbone.channels)
        self.feature_names = list(FEATURE_NAMES)
        self.transform = build_transform(cfg)
        self.rpn = build_rpn(cfg)
        strides = [stride for _, stride in self.backbone.output_shape().values()]  # 4..32
        self.roi_heads = build_roi_heads(
            cfg, strides, nms_fn if nms_fn is not None else soft_nms_fn(cfg), mask_loss_extra
        )
        self.init_weights()
        self.freeze()

    def init_weights(self) -> None:
        """detectron2's initialisation of what torchvision leaves at PyTorch defaults:
        FPN and box-head FC layers Kaiming-uniform (a=1) with zero bias, class
        scores N(0, 0.01), box deltas N(0, 0.001), mask logits N(0, 0.001)."""
        layers = [*self.fpn.modules(), self.roi_heads.box_head.fc6, self.roi_heads.box_head.fc7]
        for m in layers:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                assert m.bias is not None
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)
        predictor = self.roi_heads.box_predictor
        for layer, std in ((predictor.cls_score, 0.01), (predictor.bbox_pred, 0.001)):
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)
        logits = self.roi_heads.mask_predictor.mask_fcn_logits
        nn.init.normal_(logits.weight, std=0.001)
        nn.init.zeros_(logits.bias)

    def frozen_modules(self) -> list[nn.Module]:
        """The backbone parts that ``freeze_at`` keeps fixed (stem, then stages)."""
        parts: list[nn.Module] = []
        if self.cfg.freeze_at >= 1:
            parts += [self.backbone.conv1, self.backbone.bn1]
        parts += list(self.backbone.layers[: max(self.cfg.freeze_at - 1, 0)])
        return parts

    def freeze(self) -> None:
        """Stop gradients into the ``freeze_at`` parts and, with ``frozen_bn``, into
        every backbone BatchNorm (whose statistics :meth:`train` also keeps)."""
        for module in self.frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        if self.cfg.frozen_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.requires_grad_(False)
                    m.bias.requires_grad_(False)

    def train(self, mode: bool = True) -> MaskRCNN:
        """Switch modes; with ``frozen_bn`` the backbone's BatchNorm stays in eval mode."""
        super().train(mode)
        if mode and self.cfg.frozen_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    # Stages, separately callable so the network alone can be timed.

    def preprocess(
        self, images: list[Tensor], targets: Targets | None = None
    ) -> tuple[ImageList, Targets | None]:
        """torchvision's transform: resize, normalise and batch (targets resized alike).

        Args:
            images: RGB [3, H_i, W_i] in 0..1.
            targets: in training, per image ``boxes`` [G, 4] xyxy pixels, ``labels`` [G]
                int64 (1-based), ``masks`` [G, H_i, W_i] uint8.

        Returns:
            ``(ImageList with tensors [B, 3, H, W] and the resized sizes, targets)``.
        """
        return self.transform(images, targets)

    def features(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """FPN maps P2..P6 by name ("0".."3", "pool") of a batch [B, 3, H, W]."""
        return OrderedDict(zip(self.feature_names, self.fpn(self.backbone(x))))

    def network(
        self, images: ImageList, targets: Targets | None = None
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Backbone, FPN, RPN and RoI heads on a pre-processed batch.

        Returns:
            ``(detections in the resized frame (eval) or [], losses (training) or {})``.
        """
        feats = self.features(images.tensors)
        proposals, rpn_losses = self.rpn(images, feats, targets)
        detections, head_losses = self.roi_heads(feats, proposals, images.image_sizes, targets)
        return detections, {**head_losses, **rpn_losses}

    def postprocess(
        self,
        detections: list[dict[str, Tensor]],
        image_sizes: list[tuple[int, int]],
        original_sizes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Boxes scaled and masks pasted from the resized to the original image sizes."""
        return self.transform.postprocess(detections, image_sizes, original_sizes)

    def forward(
        self, images: list[Tensor], targets: Targets | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Training: the loss dict (loss_classifier, loss_box_reg, loss_mask,
        loss_objectness, loss_rpn_box_reg). Eval: detections per image."""
        if self.training:
            check_targets(targets, len(images))
        original_sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        batch, targets = self.preprocess(images, targets)
        detections, losses = self.network(batch, targets)
        if self.training:
            return losses
        return self.postprocess(detections, batch.image_sizes, original_sizes)


def check_targets(targets: Targets | None, num_images: int) -> None:
    """Raise ValueError for missing targets, wrong dtypes or degenerate boxes."""
    if targets is None or len(targets) != num_images:
        raise ValueError("training needs one target dict per image")
    for i, t in enumerate(targets):
        missing = {"boxes", "labels", "masks"} - set(t)
        if missing:
            raise ValueError(f"target {i} lacks {', '.join(sorted(missing))}")
        boxes = t["boxes"]
        if not torch.is_floating_point(boxes) or boxes.dim() != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"target {i}: boxes must be a float [G, 4] tensor")
        if t["labels"].dtype != torch.int64:
            raise ValueError(f"target {i}: labels must be int64")
        if boxes.numel() and bool((boxes[:, 2:] <= boxes[:, :2]).any()):
            raise ValueError(f"target {i}: boxes need x2 > x1 and y2 > y1")
