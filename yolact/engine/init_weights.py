"""Initial weights for training: an ImageNet ResNet or a whole checkpoint of the model's family."""

from __future__ import annotations

import logging

from torch import nn

from yolact.core.backbone import ModulatedDeformConv, ResNetBackbone
from yolact.core.config import ModelConfig
from yolact.core.family import Family
from yolact.core.weights import Checkpoint, CheckpointError


def initialise(
    model: nn.Module, ckpt: Checkpoint, path: str, log: logging.Logger, family: Family
) -> str:
    """Load ``path`` into ``model`` before training.

    Accepts a backbone file with torchvision ResNet keys (``conv1``, ``bn1``,
    ``layer1``..``layer4``, ``fc`` ignored: torchvision's ImageNet weights or
    the original's ``resnet101_reducedfc.pth``), or a whole checkpoint that
    ``family`` recognises (for YOLACT the original's or this project's); a
    checkpoint of another class count keeps its class-dependent layers freshly
    initialised. The deformable convs of
    YOLACT++ take the file's 3x3 conv weights; their offset/modulation convs
    and bias are new layers and keep their initialisation (zero offsets).

    Args:
        model: a model of ``family`` with a ``cfg`` and, to take a backbone file, a
            :class:`~yolact.core.backbone.ResNetBackbone` as ``backbone``.

    Returns:
        "backbone" or "full", what was loaded.

    Raises:
        CheckpointError: the file fits neither.
    """
    if family.init_from_checkpoint(model, ckpt, path, log):
        return "full"
    cfg: ModelConfig = getattr(model, "cfg")  # noqa: B009
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, ResNetBackbone):
        raise CheckpointError(
            f"{path} is not a {family.title} checkpoint, and {cfg.name} has no ResNet "
            "backbone to load a backbone file into"
        )
    state = ckpt.state_dict
    renamed = {}
    for key, value in state.items():
        if key.startswith("fc.") or key.startswith("module.fc."):
            continue
        key = key.removeprefix("module.").removeprefix("backbone.")
        if key.startswith("layer") and not key.startswith("layers."):
            key = f"layers.{int(key[5]) - 1}{key[6:]}"
        renamed[key] = value
    own = backbone.state_dict()
    new_layers = set(deformable_extras(backbone))
    missing = [
        k
        for k in own
        if k not in renamed and not k.endswith("num_batches_tracked") and k not in new_layers
    ]
    unexpected = [k for k in renamed if k not in own]
    wrong = [k for k in own if k in renamed and renamed[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        first = (missing + unexpected + wrong)[:3]
        raise CheckpointError(
            f"{path} is neither a {family.title} checkpoint nor a "
            f"ResNet-{cfg.backbone.depth} "
            f"backbone file for {cfg.name}: first mismatching keys {', '.join(first)}"
        )
    kept = [k for k in own if k not in renamed and k in new_layers]
    for key, value in own.items():
        if key not in renamed:
            renamed[key] = value
    backbone.load_state_dict(renamed)
    log.info("backbone initialised from %s", path)
    if kept:
        blocks = len({k.rsplit(".conv2.", 1)[0] for k in kept})
        log.info(
            "%d deformable blocks: their offset/modulation convs and conv bias start from "
            "their initialisation (zero offsets)", blocks,
        )  # fmt: skip
    return "backbone"


def deformable_extras(backbone: nn.Module) -> list[str]:
    """Backbone keys that an ImageNet ResNet file lacks by design: each deformable
    conv's offset/modulation conv (``conv_offset_mask``) and bias. The deformable
    conv's ``weight`` is the ResNet's 3x3 conv and must be in the file."""
    keys = []
    for name, module in backbone.named_modules():
        if isinstance(module, ModulatedDeformConv):
            keys += [f"{name}.bias", f"{name}.conv_offset_mask.weight"]
            keys += [f"{name}.conv_offset_mask.bias"]
    return keys
