"""Weights of the Mask R-CNN reference: this project's files and torchvision's.

A torchvision ``maskrcnn_resnet50_fpn`` state dict (``backbone.body.*``,
``backbone.fpn.inner_blocks/layer_blocks``, ``rpn.*``, ``roi_heads.*``, old or
new torchvision key names) is renamed onto :class:`~yolact.models.mask_rcnn.model.MaskRCNN`:

- ``backbone.body.layerN.*`` -> ``backbone.layers.{N-1}.*``, the stem as is;
- ``backbone.fpn.inner_blocks.i`` -> ``fpn.lat_layers.{3-i}`` and
  ``backbone.fpn.layer_blocks.i`` -> ``fpn.pred_layers.{3-i}`` (YOLACT's FPN
  stores its levels coarsest first);
- FrozenBatchNorm2d buffers load into BatchNorm2d (whose missing
  ``num_batches_tracked`` counters are kept);
- ``rpn.*`` and ``roi_heads.*`` are torchvision's own modules, unchanged.

Loading such a file also switches the config to torchvision's settings
(:func:`torchvision_compatible`), with one line saying so; everywhere else the
detectron2 defaults of :class:`~yolact.models.mask_rcnn.config.MaskRCNNConfig` apply.
"""

from __future__ import annotations

import logging
import re

from torch import Tensor

from yolact.core.data_names import COCO_CATEGORY_IDS, COCO_CLASSES
from yolact.core.weights import Checkpoint, CheckpointError, key_problems, wrong_config
from yolact.models.mask_rcnn.config import TORCHVISION_MEAN_RGB, TORCHVISION_STD_RGB, MaskRCNNConfig
from yolact.models.mask_rcnn.model import MaskRCNN

log = logging.getLogger(__name__)

_YOLACT_PREFIXES = ("prediction_layers.", "proto_net.", "semantic_seg_conv.", "maskiou_net.")
_CLS_KEY = "roi_heads.box_predictor.cls_score.weight"
_FPN_KEY = re.compile(r"backbone\.fpn\.(inner|layer)_blocks\.(\d+)\.(?:0\.)?(weight|bias)$")
_TORCHVISION_COCO_OUTPUTS = 91  # background + COCO category ids 1..90 ("N/A" at the gaps)


def _state_of(checkpoint: Checkpoint | dict[str, Tensor]) -> dict[str, Tensor]:
    state = checkpoint.state_dict if isinstance(checkpoint, Checkpoint) else checkpoint
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}


def is_torchvision_layout(state: dict[str, Tensor]) -> bool:
    """Whether a state dict is torchvision's detection layout (``backbone.body.*``)."""
    return any(k.startswith(("backbone.body.", "module.backbone.body.")) for k in state)


def holds_yolact(state: dict[str, Tensor]) -> bool:
    """Whether a state dict holds a YOLACT model (its head or ProtoNet keys)."""
    return any(k.startswith(_YOLACT_PREFIXES) for k in state)


def holds_rcnn(state: dict[str, Tensor]) -> bool:
    """Whether a state dict holds a Mask R-CNN (its RPN or RoI heads, any layout)."""
    return any(k.removeprefix("module.").startswith(("roi_heads.", "rpn.")) for k in state)


def torchvision_config_name(state: dict[str, Tensor]) -> str | None:
    """The config a torchvision-layout Mask R-CNN file fits (by its ResNet depth), else None."""
    if not is_torchvision_layout(state) or not any(k.startswith("roi_heads.") for k in state):
        return None
    blocks = {int(m[1]) for k in state if (m := re.match(r"backbone\.body\.layer3\.(\d+)\.", k))}
    return "mask_rcnn_r101_fpn" if len(blocks) > 6 else "mask_rcnn_r50_fpn"


def rcnn_class_count(cfg: MaskRCNNConfig, state: dict[str, Tensor]) -> int | None:
    """Foreground classes the box classifier of ``state`` predicts, for ``cfg``'s box
    head; None without a classifier or when the head does not fit anyway. A
    torchvision COCO file (91 outputs indexed by category id) counts as COCO's 80."""
    state = _state_of(state)
    weight = state.get(_CLS_KEY)
    if weight is None or weight.ndim != 2 or weight.shape[1] != cfg.box_head_dim:
        return None
    outputs = int(weight.shape[0])
    if outputs < 2:
        return None
    coco = is_torchvision_layout(state) and cfg.class_names == COCO_CLASSES
    if outputs == _TORCHVISION_COCO_OUTPUTS and coco:
        return len(COCO_CLASSES)
    return outputs - 1


def convert_torchvision_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a torchvision Mask R-CNN state dict to this project's layout.

    Keys that match no rule are kept as they are (the loader then names them).
    """
    state = _state_of(state)
    fpn_indices = {
        int(m[1]) for k in state if (m := re.match(r"backbone\.fpn\.inner_blocks\.(\d+)\.", k))
    }
    num_levels = max(fpn_indices) + 1 if fpn_indices else 0
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        new = key
        if key.startswith("backbone.body."):
            rest = key[len("backbone.body.") :]
            m = re.match(r"layer(\d)\.(.+)$", rest)
            new = f"backbone.layers.{int(m[1]) - 1}.{m[2]}" if m else f"backbone.{rest}"
        elif m := _FPN_KEY.match(key):
            target = "lat_layers" if m[1] == "inner" else "pred_layers"
            new = f"fpn.{target}.{num_levels - 1 - int(m[2])}.{m[3]}"
        elif m := re.match(r"rpn\.head\.conv\.(weight|bias)$", key):  # torchvision < 0.13
            new = f"rpn.head.conv.0.0.{m[1]}"
        elif m := re.match(r"roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$", key):
            new = f"roi_heads.mask_head.{int(m[1]) - 1}.0.{m[2]}"
        out[new] = value
    return out


def torchvision_compatible(cfg: MaskRCNNConfig, num_outputs: int | None = None) -> MaskRCNNConfig:
    """The config with torchvision's inference settings: RoIAlign without half-pixel
    alignment and sampling ratio 2, nearest top-down FPN, max-pool P6 and
    torchvision's normalisation. A 91-output COCO file on COCO class names gets
    ``output_ids`` = the COCO category ids (torchvision's label layout)."""
    changes: dict[str, object] = dict(
        roi_align_aligned=False,
        roi_sampling_ratio=2,
        fpn_upsample="nearest",
        fpn_extra="maxpool",
        image_mean=TORCHVISION_MEAN_RGB,
        image_std=TORCHVISION_STD_RGB,
    )
    coco = cfg.class_names == COCO_CLASSES and cfg.output_ids is None
    if num_outputs == _TORCHVISION_COCO_OUTPUTS and coco:
        changes["output_ids"] = COCO_CATEGORY_IDS
    return cfg.replace(**changes)


def config_for_checkpoint(
    cfg: MaskRCNNConfig, checkpoint: Checkpoint | dict[str, Tensor] | None, source: str
) -> MaskRCNNConfig:
    """``cfg``, switched to torchvision's settings when ``checkpoint`` is a torchvision file."""
    if checkpoint is None:
        return cfg
    state = _state_of(checkpoint)
    if not is_torchvision_layout(state):
        return cfg
    outputs = state[_CLS_KEY].shape[0] if _CLS_KEY in state else None
    new = torchvision_compatible(cfg, outputs)
    labels = " with COCO category-id outputs" if new.output_ids != cfg.output_ids else ""
    log.warning(
        "%s is a torchvision Mask R-CNN file: %s uses torchvision's settings%s (RoIAlign "
        "aligned=False, sampling ratio 2, nearest FPN, max-pool P6, torchvision's normalisation)",
        source, cfg.name, labels,
    )  # fmt: skip
    return new


def load_rcnn_weights(
    model: MaskRCNN, checkpoint: Checkpoint | dict[str, Tensor], source: str = "checkpoint"
) -> None:
    """Load this project's or torchvision's Mask R-CNN weights into ``model``.

    Raises:
        CheckpointError: a YOLACT file, or keys/shapes that do not fit (the first few named).
    """
    state = _state_of(checkpoint)
    if holds_yolact(state):
        raise CheckpointError(
            wrong_config(checkpoint, model.cfg.name, source)
            or f"{source} holds a YOLACT model, not Mask R-CNN; use a yolact_* config"
        )
    if is_torchvision_layout(state):
        state = convert_torchvision_state(state)
    own = model.state_dict()
    for key, value in own.items():  # FrozenBatchNorm2d has no counters
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value.clone()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    problems = key_problems(state, own, missing, unexpected, wrong)
    if problems:
        short = wrong_config(checkpoint, model.cfg.name, source)
        if short is not None:
            raise CheckpointError(short)
        hint = ""
        if _CLS_KEY in wrong:
            hint = (
                f"; the file predicts {state[_CLS_KEY].shape[0]} classes (with background), "
                f"the config {own[_CLS_KEY].shape[0]}"
            )
        raise CheckpointError(
            f"{source} does not fit config '{model.cfg.name}': {'; '.join(problems)}{hint}"
        )
    model.load_state_dict(state)


def build_rcnn(
    cfg: MaskRCNNConfig,
    checkpoint: Checkpoint | dict[str, Tensor] | None = None,
    source: str = "checkpoint",
) -> MaskRCNN:
    """A :class:`MaskRCNN` for ``cfg`` (switched to torchvision's settings for a
    torchvision file) with the checkpoint's weights loaded when given."""
    if checkpoint is not None and holds_yolact(_state_of(checkpoint)):
        raise CheckpointError(
            wrong_config(checkpoint, cfg.name, source)
            or f"{source} holds a YOLACT model, not Mask R-CNN; use a yolact_* config"
        )
    model = MaskRCNN(config_for_checkpoint(cfg, checkpoint, source))
    if checkpoint is not None:
        load_rcnn_weights(model, checkpoint, source)
    return model
