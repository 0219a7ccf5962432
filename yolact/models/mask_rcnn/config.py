"""Configs of the two-stage Mask R-CNN reference model.

Defaults follow detectron2's Mask R-CNN FPN recipe (``Base-RCNN-FPN`` with the
1x/3x schedules' solver): anchors 32..512 on P2..P6, RPN 0.3/0.7 matching, 512
RoIs per image at 25 % positives, a two-FC box head on 7x7 features and a
four-conv mask head on 14x14 features, RoIAlignV2 (``aligned=True``, adaptive
sampling). A file written by torchvision's ``maskrcnn_resnet50_fpn`` switches a
config to torchvision's own settings when it is loaded
(:func:`yolact.models.mask_rcnn.weights.torchvision_compatible`).

A config is marked ``"kind": "mask_rcnn"`` in :meth:`MaskRCNNConfig.to_dict` so a
checkpoint tells which model family it holds; a dict without ``kind`` is YOLACT.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yolact.core.config import TINY_TRAIN, BackboneConfig, ConfigError, TrainConfig, check_choices
from yolact.core.data_names import COCO_CLASSES
from yolact.core.fpn import ExtraLevels, UpsampleMode
from yolact.models.mask_rcnn.soft_nms import SoftNMSMethod

KIND = "mask_rcnn"

# torchvision's ImageNet normalisation of RGB images in 0..1.
TORCHVISION_MEAN_RGB = (0.485, 0.456, 0.406)
TORCHVISION_STD_RGB = (0.229, 0.224, 0.225)

# detectron2's solver for a batch of 16 (3x: 270k iterations, steps at 210k and 250k);
# its linear warm-up starts at lr * 0.001.
DETECTRON2_TRAIN = TrainConfig(
    lr=0.02,
    momentum=0.9,
    weight_decay=1e-4,
    gamma=0.1,
    lr_steps=(210000, 250000),
    max_iter=270000,
    warmup_init=0.02 * 0.001,
    warmup_until=1000,
    batch_size=16,
    freeze_bn=True,
)


@dataclass(frozen=True)
class MaskRCNNConfig:
    """A Mask R-CNN on a ResNet-FPN.

    Attributes:
        name: registry name, also the checkpoint file name prefix.
        backbone: ResNet settings; C2..C5 all feed the FPN.
        class_names: foreground class names.
        output_ids: classifier output (1-based, torchvision's label) of each entry
            of ``class_names``; None means 1..N. torchvision's COCO models have 91
            outputs indexed by COCO category id ("N/A" at the gaps), so their files
            load with ``output_ids`` = the COCO category ids.
        fpn_channels: FPN width.
        fpn_upsample: top-down interpolation, "nearest" (torchvision, detectron2) or "bilinear".
        fpn_extra: how P6 is made: "maxpool" (max-pool k=1, s=2 of P5) or "conv".
        min_size, max_size: torchvision's resize (shorter side, cap on the longer side).
        size_divisible: the batch is padded to multiples of this.
        image_mean, image_std: normalisation of RGB images in 0..1.
        anchor_sizes: one anchor size in pixels per level P2..P6.
        anchor_ratios: anchor aspect ratios (h / w), the same on every level.
        rpn_*: RPN matching (IoU thresholds, low-quality matches always allowed),
            sampling, top-k before/after NMS per level/image in training and test,
            NMS IoU and minimum objectness probability.
        roi_fg_iou_thresh, roi_bg_iou_thresh: proposal matching (a Dynamic R-CNN
            schedule changes them during training).
        roi_batch_size_per_image, roi_positive_fraction: RoI sampling.
        roi_align_aligned: True pools with RoIAlignV2 (half-pixel aligned,
            detectron2); False with torchvision's MultiScaleRoIAlign.
        roi_sampling_ratio: RoIAlign samples per bin side; 0 is adaptive (detectron2).
        box_pool_size, mask_pool_size: pooled feature sizes of the two heads.
        box_head_dim: width of the box head's two FC layers.
        box_coder_weights: (wx, wy, ww, wh) of the second-stage box coder.
        box_loss_beta: smooth-L1 beta of the box loss; 0 is L1 (detectron2).
        mask_head_channels: the mask head's 3x3 convs; the deconvolution keeps the last width.
        box_score_thresh, box_nms_thresh, detections_per_img: test-time detection.
        freeze_at: 0 trains the whole backbone, 1 freezes the stem, k > 1 the stem
            and the first k - 1 stages (detectron2's FREEZE_AT).
        frozen_bn: backbone BatchNorm keeps its statistics and affine parameters
            (torchvision's FrozenBatchNorm2d, detectron2's FrozenBN).
        train: optimisation settings (detectron2's schedule for a batch of 16).
        dynamic_rcnn: Dynamic R-CNN schedule of ``roi_*_iou_thresh`` and ``box_loss_beta``
            in training, with its K_I (``dynamic_k_iou``), K_beta (``dynamic_k_beta``),
            update interval C (``dynamic_interval``) and starting values.
        edge_loss_weight: weight of a Sobel edge term added to the mask loss (0: off).
        soft_nms: test-time Soft-NMS "gaussian" or "linear" instead of NMS, with
            ``soft_nms_sigma`` and ``soft_nms_min_score``; None uses NMS.
    """

    name: str
    backbone: BackboneConfig = field(
        default_factory=lambda: BackboneConfig(depth=101, selected_layers=(0, 1, 2, 3))
    )
    class_names: tuple[str, ...] = COCO_CLASSES
    output_ids: tuple[int, ...] | None = None
    fpn_channels: int = 256
    fpn_upsample: UpsampleMode = "nearest"
    fpn_extra: ExtraLevels = "maxpool"
    min_size: int = 800
    max_size: int = 1333
    size_divisible: int = 32
    image_mean: tuple[float, float, float] = TORCHVISION_MEAN_RGB
    image_std: tuple[float, float, float] = TORCHVISION_STD_RGB
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_score_thresh: float = 0.0
    roi_fg_iou_thresh: float = 0.5
    roi_bg_iou_thresh: float = 0.5
    roi_batch_size_per_image: int = 512
    roi_positive_fraction: float = 0.25
    roi_align_aligned: bool = True
    roi_sampling_ratio: int = 0
    box_pool_size: int = 7
    mask_pool_size: int = 14
    box_head_dim: int = 1024
    box_coder_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_loss_beta: float = 0.0
    mask_head_channels: tuple[int, ...] = (256, 256, 256, 256)
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_img: int = 100
    freeze_at: int = 2
    frozen_bn: bool = True
    train: TrainConfig = DETECTRON2_TRAIN
    dynamic_rcnn: bool = False
    dynamic_k_iou: int = 75
    dynamic_k_beta: int = 10
    dynamic_interval: int = 100
    dynamic_start_iou: float = 0.4
    dynamic_start_beta: float = 1.0
    edge_loss_weight: float = 0.0
    soft_nms: SoftNMSMethod | None = None
    soft_nms_sigma: float = 0.5
    soft_nms_min_score: float = 0.001

    def __post_init__(self) -> None:
        check_choices(self, f"config {self.name}: ")
        if self.output_ids is not None and len(self.output_ids) != len(self.class_names):
            raise ConfigError(
                f"config {self.name}: {len(self.output_ids)} output_ids for "
                f"{len(self.class_names)} class names"
            )
        if not 0 <= self.freeze_at <= 5:
            raise ConfigError(f"config {self.name}: freeze_at must be 0..5, got {self.freeze_at}")

    @property
    def kind(self) -> str:
        """The model family: "mask_rcnn"."""
        return KIND

    @property
    def num_classes(self) -> int:
        """Classifier outputs including background (foreground + 1 unless ``output_ids``)."""
        if self.output_ids is not None:
            return max(self.output_ids) + 1
        return len(self.class_names) + 1

    def replace(self, **changes: Any) -> MaskRCNNConfig:
        """A copy with some fields changed (``dataclasses.replace``); checked as a new config.

        Raises:
            ConfigError: a changed field holds a value its type does not allow.
        """
        return dataclasses.replace(self, **changes)

    def with_train(self, **changes: Any) -> MaskRCNNConfig:
        """A copy with some training settings changed (see :meth:`replace`)."""
        return dataclasses.replace(self, train=dataclasses.replace(self.train, **changes))

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form with ``"kind": "mask_rcnn"`` (stored in checkpoints)."""
        return {"kind": KIND, **dataclasses.asdict(self)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> MaskRCNNConfig:
        """Inverse of :meth:`to_dict` (lists become tuples); checked as a config built in code.

        Raises:
            ConfigError: a field holds a value its type does not allow.
            ValueError: ``d`` is marked as another kind of config.
            TypeError: unknown fields.
        """
        d = dict(d)
        kind = d.pop("kind", KIND)
        if kind != KIND:
            raise ValueError(f"not a Mask R-CNN config (kind '{kind}')")
        d["backbone"] = BackboneConfig(**_tuples(d.get("backbone", {})))
        if "train" in d:
            d["train"] = TrainConfig.from_dict(d["train"])
        return MaskRCNNConfig(**_tuples(d))


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """Lists (as JSON and ``asdict`` leave them) back to tuples, one level deep."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def mask_rcnn_r101_fpn() -> MaskRCNNConfig:
    """ResNet-101 FPN, detectron2's recipe."""
    return MaskRCNNConfig(name="mask_rcnn_r101_fpn")


def mask_rcnn_r50_fpn() -> MaskRCNNConfig:
    """ResNet-50 FPN; torchvision's ``maskrcnn_resnet50_fpn`` files load into it."""
    return MaskRCNNConfig(
        name="mask_rcnn_r50_fpn", backbone=BackboneConfig(depth=50, selected_layers=(0, 1, 2, 3))
    )


def mask_rcnn_tiny() -> MaskRCNNConfig:
    """A small model for tests and CPU demos on yolact_tiny's backbone (half-width
    ResNet-18), 64-wide FPN, 160 px shorter side, small heads, nothing frozen."""
    return MaskRCNNConfig(
        name="mask_rcnn_tiny",
        backbone=BackboneConfig(depth=18, width=32, selected_layers=(0, 1, 2, 3)),
        fpn_channels=64,
        min_size=160,
        max_size=192,
        anchor_sizes=(16, 32, 64, 128, 256),
        rpn_pre_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_train=200,
        rpn_post_nms_top_n_test=100,
        roi_batch_size_per_image=64,
        box_head_dim=128,
        mask_head_channels=(64, 64),
        freeze_at=0,
        frozen_bn=False,
        # The same short from-scratch recipe as yolact_tiny, so that the two small
        # models are compared at the same training budget.
        train=TINY_TRAIN,
    )


RCNN_CONFIGS: dict[str, Callable[[], MaskRCNNConfig]] = {
    "mask_rcnn_r101_fpn": mask_rcnn_r101_fpn,
    "mask_rcnn_r50_fpn": mask_rcnn_r50_fpn,
    "mask_rcnn_tiny": mask_rcnn_tiny,
}
