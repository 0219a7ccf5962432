"""YOLACT / YOLACT++ configs: the frozen :class:`YolactConfig` and the named configs.

A config is an explicit, immutable value handed to constructors. Nothing in
the package reads a global config, so models built from different configs can
live side by side in one process. Values derived from a config (number of
priors, prototype count, ...) are attributes of the modules built from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from yolact.core.config import (
    PIXEL_MEAN_BGR,
    PIXEL_STD_BGR,
    TINY_TRAIN,
    BackboneConfig,
    ConfigError,
    check_choices,
)
from yolact.core.data_names import COCO_CLASSES
from yolact.core.ops.nms import NMSMethod
from yolact.models.yolact.train_config import YolactTrainConfig

# How class logits become scores (YolactConfig.classifier).
Classifier = Literal["softmax", "sigmoid"]
CLASSIFIERS: tuple[Classifier, ...] = get_args(Classifier)


@dataclass(frozen=True)
class NMSConfig:
    """Detection settings applied after the network.

    Attributes:
        conf_thresh: a prior is a candidate when its best foreground score exceeds this.
        iou_thresh: suppression IoU.
        top_k: candidates per class entering NMS.
        max_detections: detections kept per image.
        method: "fast" (Fast NMS), "cross_class" (Fast NMS over the best class of
            each prior) or "standard" (torchvision batched NMS per class).
    """

    conf_thresh: float = 0.05
    iou_thresh: float = 0.5
    top_k: int = 200
    max_detections: int = 100
    method: NMSMethod = "fast"

    def __post_init__(self) -> None:
        check_choices(self, "nms.")


@dataclass(frozen=True)
class YolactConfig:
    """A YOLACT / YOLACT++ model.

    Attributes:
        name: registry name, also the checkpoint file name prefix.
        backbone: ResNet settings.
        class_names: foreground class names; the model predicts
            ``len(class_names) + 1`` classes, index 0 being background.
        max_size: the square input side in pixels.
        fpn_channels: FPN width.
        fpn_num_downsample: stride-2 convs after P5 (P6, P7).
        proto_channels: ProtoNet hidden width.
        num_prototypes: k, the number of prototype masks.
        head_channels: width of the shared head's first conv.
        extra_layers: 3x3 conv + ReLU layers in front of the box, class and mask
            coefficient convs of the head (the original's ``extra_layers``).
        aspect_ratios: anchor aspect ratios, the same on every level.
        scales: per FPN level, the anchor sizes in pixels at ``max_size``.
        square_anchors: the v1 models' anchors have h = w (their weights need it).
        use_maskiou: YOLACT++ mask re-scoring network.
        maskiou_channels: widths of its stride-2 3x3 convs.
        use_semantic_seg: keep the training-only semantic segmentation conv.
        classifier: how class logits become scores, in training and detection alike:
            ``"softmax"`` (the original's: softmax over background and classes,
            trained with OHEM cross entropy) or ``"sigmoid"`` (an independent
            probability per foreground class, trained with the sigmoid focal loss;
            the background logit is unused).
        sigmoid_prior: with ``"sigmoid"``, every class starts at this probability
            (the class logits' bias is initialised to log(pi / (1 - pi))).
        nms: detection settings.
        train: optimisation and loss settings (a shared
            :class:`~yolact.core.config.TrainConfig` given here gets the loss defaults).
        pixel_mean, pixel_std: BGR normalisation.
    """

    name: str
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    class_names: tuple[str, ...] = COCO_CLASSES
    max_size: int = 550
    fpn_channels: int = 256
    fpn_num_downsample: int = 2
    proto_channels: int = 256
    num_prototypes: int = 32
    head_channels: int = 256
    extra_layers: tuple[int, int, int] = (0, 0, 0)
    aspect_ratios: tuple[float, ...] = (1.0, 0.5, 2.0)
    scales: tuple[tuple[float, ...], ...] = ((24,), (48,), (96,), (192,), (384,))
    square_anchors: bool = True
    use_maskiou: bool = False
    maskiou_channels: tuple[int, ...] = (8, 16, 32, 64, 128)
    use_semantic_seg: bool = True
    classifier: Classifier = "softmax"
    sigmoid_prior: float = 0.01
    nms: NMSConfig = field(default_factory=NMSConfig)
    train: YolactTrainConfig = field(default_factory=YolactTrainConfig)
    pixel_mean: tuple[float, float, float] = PIXEL_MEAN_BGR
    pixel_std: tuple[float, float, float] = PIXEL_STD_BGR

    def __post_init__(self) -> None:
        if not isinstance(self.train, YolactTrainConfig):  # the shared settings alone
            object.__setattr__(self, "train", YolactTrainConfig.extend(self.train))
        check_choices(self, f"config {self.name}: ")
        if not 0.0 < self.sigmoid_prior < 1.0:
            raise ConfigError(
                f"config {self.name}: sigmoid_prior must lie in (0, 1), got {self.sigmoid_prior}"
            )

    @property
    def num_classes(self) -> int:
        """Number of classes including background."""
        return len(self.class_names) + 1

    @property
    def deformable(self) -> bool:
        """Whether the backbone has deformable convolutions (YOLACT++)."""
        return any(n > 0 for n in self.backbone.dcn_layers)

    @property
    def anchors_per_cell(self) -> int:
        return len(self.aspect_ratios) * len(self.scales[0])

    def replace(self, **changes: Any) -> YolactConfig:
        """A copy with some fields changed (``dataclasses.replace``); checked as a new config.

        Raises:
            ConfigError: a changed field holds a value its type does not allow.
        """
        return dataclasses.replace(self, **changes)

    def with_nms(self, **changes: Any) -> YolactConfig:
        """A copy with some detection settings changed (see :meth:`replace`)."""
        return dataclasses.replace(self, nms=dataclasses.replace(self.nms, **changes))

    def with_train(self, **changes: Any) -> YolactConfig:
        """A copy with some training settings changed (see :meth:`replace`)."""
        return dataclasses.replace(self, train=dataclasses.replace(self.train, **changes))

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (stored in checkpoints)."""
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> YolactConfig:
        """Inverse of :meth:`to_dict` (lists become tuples), also for the layouts
        older versions stored; checked as a config built in code.

        Raises:
            ConfigError: a field holds a value its type does not allow.
            TypeError, KeyError: fields that do not fit.
        """
        d = dict(d)
        backbone: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in d["backbone"].items()
        }
        d["backbone"] = BackboneConfig(**backbone)
        d["nms"] = NMSConfig(**d["nms"])
        if "train" in d:
            # Stored before the classifier was a model setting: a focal-loss run
            # trained the sigmoid classifier, so it decodes with sigmoid.
            if d["train"].get("use_focal_loss", False) and "classifier" not in d:
                d["classifier"] = "sigmoid"
            d["train"] = YolactTrainConfig.from_dict({"lr_steps": (), **d["train"]})
        for key in ("class_names", "aspect_ratios", "maskiou_channels", "pixel_mean", "pixel_std",
                    "extra_layers"):  # fmt: skip
            if key in d:
                d[key] = tuple(d[key])
        if "scales" in d:
            d["scales"] = tuple(tuple(s) for s in d["scales"])
        return YolactConfig(**d)


def _scaled_scales(max_size: int) -> tuple[tuple[float, ...], ...]:
    # The original scales the base sizes to other input sizes and truncates to int.
    return tuple((int(s / 550 * max_size),) for s in (24, 48, 96, 192, 384))


def _plus_scales(base: tuple[int, ...] = (24, 48, 96, 192, 384)) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(s * 2 ** (j / 3.0) for j in range(3)) for s in base)


def yolact_base() -> YolactConfig:
    return YolactConfig(name="yolact_base")


def yolact_im400() -> YolactConfig:
    return YolactConfig(name="yolact_im400", max_size=400, scales=_scaled_scales(400))


def yolact_im700() -> YolactConfig:
    return YolactConfig(name="yolact_im700", max_size=700, scales=_scaled_scales(700))


def yolact_resnet50() -> YolactConfig:
    return YolactConfig(name="yolact_resnet50", backbone=BackboneConfig(depth=50))


def yolact_plus_base() -> YolactConfig:
    return YolactConfig(
        name="yolact_plus_base",
        # The original's ResNet101_DCN_Interval3: every third block of C3..C5 is
        # deformable (11 of the 30 blocks), i.e. dcn_layers covers whole stages.
        backbone=BackboneConfig(depth=101, dcn_layers=(0, 4, 23, 3), dcn_interval=3),
        scales=_plus_scales(),
        square_anchors=False,
        use_maskiou=True,
    )


def yolact_plus_resnet50() -> YolactConfig:
    return YolactConfig(
        name="yolact_plus_resnet50",
        backbone=BackboneConfig(depth=50, dcn_layers=(0, 4, 6, 3), dcn_interval=1),
        scales=_plus_scales(),
        square_anchors=False,
        use_maskiou=True,
    )


def yolact_tiny() -> YolactConfig:
    """A small model for tests and CPU demos: a half-width ResNet-18 (stages of 32 to
    256 channels, 3.6 M parameters in all), 64-wide FPN, 160 px input.

    It is tuned to learn fast from scratch (the ablations are in
    docs/reports/2026-11-yolact-tiny-from-scratch.md):
    anchors of 3x their level's stride (24 px on P3 to 384 px on P7, as
    yolact_base's, rather than scaled down with the input, which left most
    objects one positive prior), two extra 3x3 convs in front of each head
    branch, and ATSS matching. Its recipe is for short runs on a CPU: AdamW at
    1e-3 with gradient clipping, photometric and mirror augmentation only, and
    2400 iterations at batch 8 with steps at 75 % and 94 %.
    """
    size = 160
    return YolactConfig(
        name="yolact_tiny",
        backbone=BackboneConfig(depth=18, width=32),
        max_size=size,
        fpn_channels=64,
        proto_channels=64,
        num_prototypes=16,
        head_channels=64,
        extra_layers=(2, 2, 2),
        scales=((24,), (48,), (96,), (192,), (384,)),
        square_anchors=False,
        train=YolactTrainConfig.extend(TINY_TRAIN, assigner="atss"),
    )


CONFIGS: dict[str, Callable[[], YolactConfig]] = {
    "yolact_base": yolact_base,
    "yolact_im400": yolact_im400,
    "yolact_im700": yolact_im700,
    "yolact_resnet50": yolact_resnet50,
    "yolact_plus_base": yolact_plus_base,
    "yolact_plus_resnet50": yolact_plus_resnet50,
    "yolact_tiny": yolact_tiny,
}
