"""Picking a config for a name or a file, given the families to choose from.

The mechanics behind :mod:`yolact.registry` (which passes every registered
family) and a family's own ``Predictor.from_checkpoint`` (which passes only
its family): looking a config up by name, reading a stored config back by its
``"kind"``, telling a file's family, and giving a config the classes of a file.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from torch import Tensor

from yolact.core.config import ConfigError, ModelConfig
from yolact.core.family_base import FamilyBase
from yolact.core.weights import (
    Checkpoint,
    CheckpointError,
    describe,
    read_checkpoint,
    stored_class_names,
)

log = logging.getLogger(__name__)

# A family type: the functions give back the type of family they are given.
_F = TypeVar("_F", bound=FamilyBase)


def known_configs(families: Sequence[FamilyBase]) -> dict[str, Callable[[], ModelConfig]]:
    """Every named config of ``families``."""
    return {name: make for family in families for name, make in family.configs.items()}


def lookup_config(name: str, families: Sequence[FamilyBase]) -> ModelConfig:
    """A named config; ``yolact_base_config`` (the original's spelling) works too.

    Raises:
        ConfigError: the name is unknown; the message lists close names.
    """
    key = name[: -len("_config")] if name.endswith("_config") else name
    known = known_configs(families)
    if key not in known:
        close = difflib.get_close_matches(key, list(known), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown config '{name}'.{hint} Known configs: {', '.join(sorted(known))}."
        )
    return known[key]()


def name_from_file(path: str, families: Sequence[FamilyBase]) -> str | None:
    """The config a checkpoint file name such as ``yolact_base_54_800000.pth`` implies.

    Follows the original naming ``<config>_<epoch>_<iteration>[_interrupt].pth``;
    None when the name does not start with a known config.
    """
    stem = os.path.basename(path)
    stem = re.sub(r"\.(pth|pt)$", "", stem)
    stem = re.sub(r"_interrupt$", "", stem)
    stripped = re.sub(r"_\d+_\d+$", "", stem)
    known = known_configs(families)
    for candidate in (stripped, stem):
        if candidate in known:
            return candidate
    # Longest registered prefix, for names like yolact_base_custom_3_100.pth.
    matches = [n for n in known if stem.startswith(n + "_") or stem == n]
    return max(matches, key=len) if matches else None


def parse_config(d: dict[str, Any], families: Sequence[FamilyBase]) -> ModelConfig:
    """A stored config, read by the family its ``"kind"`` names.

    Raises:
        ValueError: no family of that kind; TypeError/KeyError: fields that do not fit.
    """
    for family in families:
        if family.stores_kind(d):
            return family.config_from_dict(d)
    raise ValueError(f"unknown config kind '{d.get('kind')}'")


def family_of(cfg: ModelConfig, families: Sequence[_F]) -> _F:
    """The family of a config.

    Raises:
        ConfigError: a config of no family here.
    """
    for family in families:
        if family.owns_config(cfg):
            return family
    raise ConfigError(f"{type(cfg).__name__} is not the config of a registered model family")


def family_of_state(state: dict[str, Tensor], families: Sequence[_F]) -> _F | None:
    """The family whose keys a state dict holds (its own or a foreign layout), else None."""
    for family in families:
        if family.holds_weights(state):
            return family
    return None


def read_weights(path: str, families: Sequence[FamilyBase]) -> Checkpoint:
    """:func:`~yolact.core.weights.read_checkpoint` with the stored config read back.

    Raises:
        CheckpointError: the file cannot be read or its config is of no family here.
    """
    return read_checkpoint(path, lambda d: parse_config(d, families))


def resolve_config(
    trained_model: str | None,
    config_name: str | None,
    class_names: Sequence[str] | None = None,
    class_source: str = "the dataset",
    *,
    families: Sequence[FamilyBase],
) -> tuple[ModelConfig, Checkpoint | None]:
    """Pick the config for a checkpoint and give it the file's classes.

    The architecture comes from ``config_name`` if given (the config the file
    stores when it has that name: a file decodes as it was trained), else the
    config stored in the file, else the one its file name implies, else the config a family
    recognises in a file of a foreign layout (a torchvision Mask R-CNN file). The classes
    come from the file (see :func:`fit_classes`): a named config takes the class
    names a file stores, or the class count of a plain state dict's class layer.

    Args:
        trained_model: the checkpoint path (None: a config alone, random weights).
        config_name: a registered config name.
        class_names: the evaluation dataset's class names, if any: they name the
            classes of a file that stores no names, and must agree with the
            names of a file that does.
        class_source: how to call the dataset in messages.
        families: the families to consider.

    Raises:
        ConfigError: unknown name, or nothing to infer the config from.
        CheckpointError: the file cannot be read, or its classes disagree with
            ``class_names``.
    """
    ckpt = read_weights(trained_model, families) if trained_model else None
    if config_name and ckpt is not None and ckpt.config is not None:
        # A file that stores the config it was trained with decodes as it was trained,
        # whatever the named config has become since (its anchors, input size, ...).
        named = lookup_config(config_name, families)
        cfg = ckpt.config if ckpt.config.name == named.name else named
    elif config_name:
        cfg = lookup_config(config_name, families)
    elif ckpt is not None and ckpt.config is not None:
        cfg = ckpt.config
    elif trained_model:
        inferred = name_from_file(trained_model, families)
        state = ckpt.state_dict if ckpt is not None else {}
        for family in families if inferred is None else ():
            inferred = inferred or family.config_name_for_state(state)
        if inferred is None:
            raise ConfigError(
                f"cannot infer the config from the file name {os.path.basename(trained_model)}; "
                "pass --config"
            )
        cfg = lookup_config(inferred, families)
    else:
        raise ConfigError("give --trained_model or --config")
    if ckpt is not None:
        source = trained_model or "checkpoint"
        cfg = fit_classes(cfg, ckpt, source, class_names, class_source, families=families)
    return cfg, ckpt


def fit_classes(
    cfg: ModelConfig,
    checkpoint: Checkpoint,
    source: str,
    class_names: Sequence[str] | None = None,
    class_source: str = "the dataset",
    *,
    families: Sequence[FamilyBase],
) -> ModelConfig:
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
    family = family_of(cfg, families)
    stored_cfg = checkpoint.config
    other_family = stored_cfg is not None and family_of(stored_cfg, families) is not family
    if stored is not None and not other_family:
        if tuple(cfg.class_names) != stored:
            cfg = family.with_stored_classes(cfg, stored_cfg, stored)
        if class_names is not None and sorted(class_names) != sorted(stored):
            raise CheckpointError(
                f"{class_source} does not fit {source}: its {len(class_names)} categories "
                f"({describe(list(class_names), 6)}) are not the {len(stored)} classes the "
                f"model was trained on ({describe(list(stored), 6)})"
            )
        return cfg
    if stored is not None:
        return cfg
    count = family.class_count(cfg, checkpoint.state_dict)
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
