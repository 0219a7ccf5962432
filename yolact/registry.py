"""The one registry: the model families, their named configs, and which family a file holds.

Everything that must tell families apart (eval.py, train.py, ``--compare``, the
trainer, the Python API) asks this module. A new family is one subpackage of
:mod:`yolact.models` with a :class:`~yolact.core.family.Family` object, added to
:data:`FAMILIES` (or :func:`register`-ed at run time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from yolact.backends.meta import exported_format, read_meta
from yolact.core import resolve
from yolact.core.config import ConfigError, ModelConfig
from yolact.core.family import Family
from yolact.core.names import is_plain_name
from yolact.core.predictor import Predictor
from yolact.core.weights import Checkpoint, CheckpointError
from yolact.models.mask_rcnn.family import MASK_RCNN
from yolact.models.yolact.family import YOLACT

FAMILIES: list[Family] = [YOLACT, MASK_RCNN]


def register(family: Family) -> None:
    """Add a family (its config names must be new).

    Raises:
        ValueError: a family of that kind, or a config name, is registered already.
    """
    if any(f.kind == family.kind for f in FAMILIES):
        raise ValueError(f"a model family of kind '{family.kind}' is registered already")
    taken = set(family.configs) & set(all_configs())
    if taken:
        raise ValueError(f"config names registered already: {', '.join(sorted(taken))}")
    FAMILIES.append(family)


def unregister(family: Family) -> None:
    """Remove a family added with :func:`register`."""
    FAMILIES.remove(family)


def all_configs() -> dict[str, Callable[[], ModelConfig]]:
    """Every named config of every family."""
    return resolve.known_configs(FAMILIES)


def get_config(name: str) -> ModelConfig:
    """Look up a named config; ``yolact_base_config`` (the original's spelling) works too.

    Raises:
        ConfigError: the name is unknown; the message lists close names.
    """
    return resolve.lookup_config(name, FAMILIES)


def family_of(cfg: ModelConfig) -> Family:
    """The family of a config.

    Raises:
        ConfigError: a config of no registered family.
    """
    return resolve.family_of(cfg, FAMILIES)


def family_of_checkpoint(checkpoint: Checkpoint | dict[str, Tensor]) -> Family | None:
    """The family of a file: its stored config's, else the one whose keys it holds
    (a family's own layout or a foreign one such as torchvision's); None if none."""
    if isinstance(checkpoint, Checkpoint):
        if checkpoint.config is not None:
            return family_of(checkpoint.config)
        checkpoint = checkpoint.state_dict
    return resolve.family_of_state(checkpoint, FAMILIES)


def config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """A stored config, read by the family its ``"kind"`` names (none: YOLACT).

    Raises:
        ValueError: an unknown kind; TypeError/KeyError: fields that do not fit.
    """
    return resolve.parse_config(d, FAMILIES)


def config_name_from_checkpoint(path: str) -> str | None:
    """The config a file name such as ``yolact_base_54_800000.pth`` implies, else None."""
    return resolve.name_from_file(path, FAMILIES)


def read_checkpoint(path: str) -> Checkpoint:
    """Read a weights file safely, with its stored config read back.

    Raises:
        CheckpointError: missing, truncated, unreadable, not weights, or an
            unreadable stored config.
    """
    return resolve.read_weights(path, FAMILIES)


def resolve_config(
    trained_model: str | None,
    config_name: str | None,
    class_names: Sequence[str] | None = None,
    class_source: str = "the dataset",
) -> tuple[ModelConfig, Checkpoint | None]:
    """The config for a file and/or a config name, with the file's classes (see
    :func:`yolact.core.resolve.resolve_config`), over every registered family.

    An exported file (``.onnx``, ``*_openvino_model/``) gives the config stored in
    its metadata and no checkpoint; a ``config_name`` must be that config's.
    """
    if trained_model is not None and exported_format(trained_model):
        return exported_config(trained_model, config_name, class_names), None
    return resolve.resolve_config(
        trained_model, config_name, class_names, class_source, families=FAMILIES
    )


def exported_config(
    path: str, config_name: str | None = None, class_names: Sequence[str] | None = None
) -> ModelConfig:
    """The config stored in an exported file's metadata.

    Raises:
        CheckpointError: an unreadable file; ConfigError: a ``config_name`` or
            ``class_names`` other than the file's.
    """
    meta = read_meta(path)
    try:
        cfg = config_from_dict(meta.config)
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: unreadable stored config ({e})") from None
    if not is_plain_name(cfg.name):
        raise CheckpointError(
            f"{path} stores the config name {cfg.name!r}, which is not a plain file name "
            "(it is part of the names of the files written)"
        )
    if config_name is not None and get_config(config_name).name != cfg.name:
        raise ConfigError(f"{path} was exported from config {cfg.name}, not {config_name}")
    if class_names is not None and tuple(class_names) != tuple(cfg.class_names):
        raise ConfigError(
            f"{path} detects {len(cfg.class_names)} classes ({', '.join(cfg.class_names[:5])}"
            f"{', ...' if len(cfg.class_names) > 5 else ''}), not the given ones"
        )
    return cfg


def build_predictor(
    cfg: ModelConfig,
    checkpoint: Checkpoint | None = None,
    *,
    device: str | torch.device | None = None,
    source: str = "checkpoint",
    **options: Any,
) -> Predictor:
    """The predictor of ``cfg``'s family, with ``checkpoint``'s weights (random
    without); for an exported ``source`` file, the predictor that runs it.

    Args:
        options: the keyword-only options of :class:`~yolact.core.predictor.Predictor`.
    """
    if exported_format(source):
        from yolact.backends.predictor import ExportedPredictor

        return ExportedPredictor(source, cfg, device=device, **options)
    family = family_of(cfg)
    return family.predictor_class.from_config(
        cfg, checkpoint, device=device, source=source, **options
    )


def load_predictor(
    path: str,
    *,
    config: str | None = None,
    device: str | None = None,
    class_names: Sequence[str] | None = None,
    **options: Any,
) -> Predictor:
    """A predictor for a checkpoint of any family (config inferred when not given),
    or for an exported file (``.onnx``, ``*_openvino_model/``).

    Raises:
        ConfigError, CheckpointError: as :func:`resolve_config`.
    """
    cfg, ckpt = resolve_config(path, config, class_names)
    return build_predictor(cfg, ckpt, device=device, source=path, **options)


__all__ = [
    "FAMILIES",
    "CheckpointError",
    "ConfigError",
    "all_configs",
    "build_predictor",
    "config_from_dict",
    "config_name_from_checkpoint",
    "exported_config",
    "family_of",
    "family_of_checkpoint",
    "get_config",
    "load_predictor",
    "read_checkpoint",
    "register",
    "resolve_config",
    "unregister",
]
