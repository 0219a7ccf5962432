"""YOLACT weights: the original's key layout, class changes and plain state-dict files."""

from __future__ import annotations

import logging
import os

import torch
from torch import Tensor, nn

from yolact.core.weights import Checkpoint, CheckpointError, key_problems, wrong_config
from yolact.models.yolact.config import YolactConfig

log = logging.getLogger(__name__)

PREFIXES = ("prediction_layers.", "proto_net.", "semantic_seg_conv.", "maskiou_net.")


def holds_yolact(state: dict[str, Tensor]) -> bool:
    """Whether a state dict holds a YOLACT model (its head or ProtoNet keys)."""
    return any(k.removeprefix("module.").startswith(PREFIXES) for k in state)


def _class_dependent_keys(model: nn.Module) -> list[str]:
    """Keys whose shapes depend on the number of classes."""
    keys = ["prediction_layers.0.conf_layer.weight", "prediction_layers.0.conf_layer.bias"]
    keys += ["semantic_seg_conv.weight", "semantic_seg_conv.bias"]
    net = getattr(model, "maskiou_net", None)
    if net is not None:
        last = len(net.maskiou_net) - 2
        keys += [f"maskiou_net.maskiou_net.{last}.weight", f"maskiou_net.maskiou_net.{last}.bias"]
    return keys


def adapt_original_keys(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Apply the original loader's key fix-ups.

    Drops ``backbone.layerN`` keys of old files (not ``backbone.layers``) and
    FPN downsample layers beyond the model's, strips a DataParallel
    ``module.`` prefix, and fills BatchNorm ``num_batches_tracked`` counters
    that very old files lack.
    """
    own = model.state_dict()
    num_down = len(getattr(getattr(model, "fpn", None), "downsample_layers", []))
    out = {}
    for key, value in state.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        if key.startswith("backbone.layer") and not key.startswith("backbone.layers"):
            continue
        if key.startswith("fpn.downsample_layers.") and int(key.split(".")[2]) >= num_down:
            continue
        out[key] = value
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = value.clone()
    return out


def load_weights(
    model: nn.Module,
    checkpoint: Checkpoint | dict[str, Tensor],
    allow_class_change: bool = False,
    source: str = "checkpoint",
) -> list[str]:
    """Load weights into a YOLACT model.

    Args:
        model: the model to fill.
        checkpoint: a :class:`Checkpoint` or a plain state dict.
        allow_class_change: when only the class-dependent layers differ in
            shape (another dataset's class count), keep those layers freshly
            initialised instead of failing; a warning says which.
        source: how to name the checkpoint in messages.

    Returns:
        The keys that were left re-initialised (empty when all loaded).

    Raises:
        CheckpointError: naming the first keys that do not fit.
    """
    state = checkpoint.state_dict if isinstance(checkpoint, Checkpoint) else checkpoint
    name = getattr(getattr(model, "cfg", None), "name", type(model).__name__)
    if any(k.removeprefix("module.").startswith(("roi_heads.", "rpn.")) for k in state):
        raise CheckpointError(
            wrong_config(checkpoint, name, source)
            or f"{source} holds a Mask R-CNN model, not YOLACT; use a mask_rcnn_* config"
        )
    state = adapt_original_keys(state, model)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [k for k in own if k in state and state[k].shape != own[k].shape]
    class_keys = set(_class_dependent_keys(model))
    skipped: list[str] = []
    if wrong_shape and allow_class_change and set(wrong_shape) <= class_keys:
        skipped = wrong_shape
        wrong_shape = []
    # The semantic segmentation conv is used in training only; its absence is harmless.
    missing_ok = [k for k in missing if k.startswith("semantic_seg_conv.")]
    missing = [k for k in missing if k not in missing_ok]
    problems = key_problems(state, own, missing, unexpected, wrong_shape)
    if problems:
        short = wrong_config(checkpoint, name, source)
        if short is not None:
            raise CheckpointError(short)
        hint = ""
        conf = "prediction_layers.0.conf_layer.bias"
        if conf in wrong_shape:
            A = int(getattr(model, "anchors_per_cell"))  # noqa: B009
            hint = (
                f"; the file predicts {state[conf].shape[0] // A} classes "
                f"(with background), the config {own[conf].shape[0] // A}"
            )
        raise CheckpointError(f"{source} does not fit config '{name}': {'; '.join(problems)}{hint}")
    load = {k: v for k, v in state.items() if k not in skipped}
    model.load_state_dict(load, strict=False)
    if skipped:
        log.warning("class count differs from %s: re-initialised %s", source, ", ".join(skipped))
    return skipped + missing_ok


def weights_class_count(cfg: YolactConfig, state: dict[str, Tensor]) -> int | None:
    """Foreground classes the class layer of ``state`` predicts, for ``cfg``'s
    architecture; None when ``state`` has no such layer or its head does not
    fit ``cfg`` anyway (the loader then names the mismatch)."""
    head = "prediction_layers.0."
    conf = state.get(f"{head}conf_layer.weight", state.get(f"module.{head}conf_layer.weight"))
    box = state.get(f"{head}bbox_layer.bias", state.get(f"module.{head}bbox_layer.bias"))
    A = cfg.anchors_per_cell
    if conf is None or box is None or conf.ndim != 4 or tuple(box.shape) != (A * 4,):
        return None
    if conf.shape[1] != cfg.head_channels or conf.shape[0] % A or conf.shape[0] // A < 2:
        return None
    return conf.shape[0] // A - 1


def save_weights(model: nn.Module, path: str) -> None:
    """Write a plain state dict in the original layout, atomically."""
    tmp = f"{path}.tmp"
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
