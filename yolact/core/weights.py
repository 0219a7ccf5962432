"""Reading and writing weights, including files written by the original YOLACT.

Original checkpoints are plain state dicts saved with ``torch.save``; this
module loads them as they are (never executing code from the file: torch.load
runs with ``weights_only=True``) and reports clearly when a file does not fit.
The config stored in this project's own files is read by its ``"kind"``
(``"mask_rcnn"`` or YOLACT, the default); the Mask R-CNN reference's weights
are loaded by :mod:`yolact.models.mask_rcnn.weights`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from yolact.core.file_kind import classify
from yolact.models.mask_rcnn.config import KIND as MASK_RCNN_KIND
from yolact.models.mask_rcnn.config import MaskRCNNConfig
from yolact.models.yolact.config import (
    ConfigError,
    YolactConfig,
    config_name_from_checkpoint,
    get_config,
)

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


@dataclass
class Checkpoint:
    """A loaded checkpoint file.

    Attributes:
        state_dict: parameter name -> tensor.
        config: the config stored in the file (this project's own files), else None.
        meta: other stored entries (iteration, class names, ...).
    """

    state_dict: dict[str, Tensor]
    config: YolactConfig | MaskRCNNConfig | None = None
    meta: dict[str, object] = field(default_factory=dict)


def read_checkpoint(path: str) -> Checkpoint:
    """Read a checkpoint safely.

    Accepts an original YOLACT file (a plain state dict) or this project's own
    training checkpoint (a dict with ``model`` and ``config``).

    Raises:
        CheckpointError: missing, truncated, unreadable or not a set of weights.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(_unreadable(path, e)) from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        if not all(isinstance(v, Tensor) for v in obj["model"].values()):
            raise CheckpointError(f"checkpoint {path}: 'model' is not a state dict of tensors")
        cfg = None
        if isinstance(obj.get("config"), dict):
            try:
                cfg = config_from_dict(obj["config"])
            except (TypeError, KeyError, ValueError, AttributeError) as e:
                raise CheckpointError(
                    f"checkpoint {path} has an unreadable config ({type(e).__name__}: {e})"
                ) from None
        meta = {k: v for k, v in obj.items() if k not in ("model", "config")}
        return Checkpoint(obj["model"], cfg, meta)
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        held = "a dict with other values" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise CheckpointError(
            f"checkpoint {path} does not hold a state dict of tensors (it holds {held})"
        )
    return Checkpoint(dict(obj))


def config_from_dict(d: dict) -> YolactConfig | MaskRCNNConfig:
    """A stored config by its ``"kind"``: "mask_rcnn", or YOLACT ("yolact" or none).

    Raises:
        ValueError: an unknown kind; TypeError/KeyError: fields that do not fit.
    """
    kind = d.get("kind", "yolact")
    if kind == MASK_RCNN_KIND:
        return MaskRCNNConfig.from_dict(d)
    if kind != "yolact":
        raise ValueError(f"unknown config kind '{kind}'")
    return YolactConfig.from_dict({k: v for k, v in d.items() if k != "kind"})


def _unreadable(path: str, error: BaseException) -> str:
    """A one-line message for a file torch.load could not parse: what the file is."""
    try:
        kind = classify(path)
    except OSError as e:
        return f"cannot read checkpoint {path}: {e.strerror or e}"
    if kind.verdict == "code":
        return (
            f"refusing to load {path}: it holds Python objects other than tensors "
            f"({kind.detail}), and loading those could run arbitrary code"
        )
    if kind.verdict == "other":
        return f"{path} is not a PyTorch checkpoint ({kind.detail})"
    if kind.verdict == "truncated":
        return f"cannot read checkpoint {path}: truncated or corrupt ({kind.detail})"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > 120:
        first = first[:117] + "..."
    detail = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return (
        f"cannot read checkpoint {path}: truncated, corrupt or not a PyTorch weights file "
        f"({detail})"
    )


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


def key_problems(
    state: dict[str, Tensor], own: dict[str, Tensor], missing: list[str], unexpected: list[str],
    wrong_shape: list[str],
) -> list[str]:  # fmt: skip
    """One phrase per kind of mismatch between a file's state dict and a model's."""
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    if wrong_shape:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong_shape]
        problems.append(f"shape mismatch (file vs model): {_describe(shapes, 2)}")
    return problems


def stored_model_note(checkpoint: Checkpoint | dict[str, Tensor], name: str) -> str:
    """`` (the file holds a 'NAME' model)`` when the file stores another config's name."""
    stored = checkpoint.config if isinstance(checkpoint, Checkpoint) else None
    if stored is None or stored.name == name:
        return ""
    return f" (the file holds a '{stored.name}' model)"


def _describe(keys: list[str], limit: int = 3) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


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
    if any(k.removeprefix("module.").startswith(("roi_heads.", "rpn.")) for k in state):
        raise CheckpointError(
            f"{source} holds a Mask R-CNN model, not YOLACT; use a mask_rcnn_* config"
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
        name = getattr(getattr(model, "cfg", None), "name", type(model).__name__)
        hint = ""
        conf = "prediction_layers.0.conf_layer.bias"
        if conf in wrong_shape:
            hint = (
                f"; the file predicts {state[conf].shape[0] // model.anchors_per_cell} classes "
                f"(with background), the config {own[conf].shape[0] // model.anchors_per_cell}"
            )
        raise CheckpointError(
            f"{source} does not fit config '{name}'{stored_model_note(checkpoint, name)}: "
            f"{'; '.join(problems)}{hint}"
        )
    load = {k: v for k, v in state.items() if k not in skipped}
    model.load_state_dict(load, strict=False)
    if skipped:
        log.warning("class count differs from %s: re-initialised %s", source, ", ".join(skipped))
    return skipped + missing_ok


def resolve_config(
    trained_model: str | None,
    config_name: str | None,
    class_names: Sequence[str] | None = None,
    class_source: str = "the dataset",
) -> tuple[YolactConfig | MaskRCNNConfig, Checkpoint | None]:
    """Pick the config for a checkpoint and give it the file's classes.

    The architecture comes from ``config_name`` if given, else the config stored
    in the file, else the one its file name implies, else (for a torchvision
    Mask R-CNN file) the ``mask_rcnn_*`` config its backbone fits. The classes
    come from the file (see :func:`fit_classes`): a named config takes the class
    names a file stores, or the class count of a plain state dict's class layer.

    Args:
        trained_model: the checkpoint path (None: a config alone, random weights).
        config_name: a registered config name.
        class_names: the evaluation dataset's class names, if any: they name the
            classes of a file that stores no names, and must agree with the
            names of a file that does.
        class_source: how to call the dataset in messages.

    Raises:
        ConfigError: unknown name, or nothing to infer the config from.
        CheckpointError: the file cannot be read, or its classes disagree with
            ``class_names``.
    """
    ckpt = read_checkpoint(trained_model) if trained_model else None
    if config_name:
        cfg = get_config(config_name)
    elif ckpt is not None and ckpt.config is not None:
        cfg = ckpt.config
    elif trained_model:
        inferred = config_name_from_checkpoint(trained_model)
        if inferred is None and ckpt is not None:
            from yolact.models.mask_rcnn.weights import (
                torchvision_config_name,  # it imports this module
            )

            inferred = torchvision_config_name(ckpt.state_dict)
        if inferred is None:
            raise ConfigError(
                f"cannot infer the config from the file name {os.path.basename(trained_model)}; "
                "pass --config"
            )
        cfg = get_config(inferred)
    else:
        raise ConfigError("give --trained_model or --config")
    if ckpt is not None:
        cfg = fit_classes(cfg, ckpt, trained_model or "checkpoint", class_names, class_source)
    return cfg, ckpt


def stored_class_names(checkpoint: Checkpoint) -> tuple[str, ...] | None:
    """The class names a file stores (its config's, or a ``class_names`` entry), else None."""
    if checkpoint.config is not None:
        return tuple(checkpoint.config.class_names)
    names = checkpoint.meta.get("class_names")
    if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
        return tuple(names)
    return None


def weights_class_count(cfg: YolactConfig | MaskRCNNConfig, state: dict[str, Tensor]) -> int | None:
    """Foreground classes the class layer of ``state`` predicts, for ``cfg``'s
    architecture; None when ``state`` has no such layer or its head does not
    fit ``cfg`` anyway (the loader then names the mismatch)."""
    if isinstance(cfg, MaskRCNNConfig):
        from yolact.models.mask_rcnn.weights import rcnn_class_count  # it imports this module

        return rcnn_class_count(cfg, state)
    head = "prediction_layers.0."
    conf = state.get(f"{head}conf_layer.weight", state.get(f"module.{head}conf_layer.weight"))
    box = state.get(f"{head}bbox_layer.bias", state.get(f"module.{head}bbox_layer.bias"))
    A = cfg.anchors_per_cell
    if conf is None or box is None or conf.ndim != 4 or tuple(box.shape) != (A * 4,):
        return None
    if conf.shape[1] != cfg.head_channels or conf.shape[0] % A or conf.shape[0] // A < 2:
        return None
    return conf.shape[0] // A - 1


def fit_classes(
    cfg: YolactConfig | MaskRCNNConfig,
    checkpoint: Checkpoint,
    source: str,
    class_names: Sequence[str] | None = None,
    class_source: str = "the dataset",
) -> YolactConfig | MaskRCNNConfig:
    """``cfg`` with the classes of ``checkpoint``.

    A file that stores class names gives them to ``cfg`` (a named config of
    the same family; a file of the other family is left to the loader's
    error). A plain state dict whose class layer predicts another number of
    classes than ``cfg`` gets ``class_names`` if given, else ``class_1`` ...
    ``class_N`` with one warning.

    Raises:
        CheckpointError: ``class_names`` disagree with the file's classes.
    """
    stored = stored_class_names(checkpoint)
    other_family = checkpoint.config is not None and type(checkpoint.config) is not type(cfg)
    if stored is not None and not other_family:
        if tuple(cfg.class_names) != stored:
            changes: dict[str, object] = {"class_names": stored}
            if isinstance(cfg, MaskRCNNConfig):
                changes["output_ids"] = getattr(checkpoint.config, "output_ids", None)
            cfg = cfg.replace(**changes)
        if class_names is not None and sorted(class_names) != sorted(stored):
            raise CheckpointError(
                f"{class_source} does not fit {source}: its {len(class_names)} categories "
                f"({_describe(list(class_names), 6)}) are not the {len(stored)} classes the "
                f"model was trained on ({_describe(list(stored), 6)})"
            )
        return cfg
    if stored is not None:
        return cfg
    count = weights_class_count(cfg, checkpoint.state_dict)
    if count is None or count == len(cfg.class_names):
        return cfg
    if class_names is not None:
        if len(class_names) != count:
            raise CheckpointError(
                f"{class_source} does not fit {source}: it has {len(class_names)} categories, "
                f"the model's class layer predicts {count} classes"
            )
        return cfg.replace(class_names=tuple(class_names))
    log.warning(
        "%s predicts %d classes and stores no class names: calling them class_1..class_%d "
        "(give --val_ann to name them)", source, count, count,
    )  # fmt: skip
    return cfg.replace(class_names=tuple(f"class_{i + 1}" for i in range(count)))


def save_weights(model: nn.Module, path: str) -> None:
    """Write a plain state dict in the original layout, atomically."""
    tmp = f"{path}.tmp"
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
