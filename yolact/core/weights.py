"""Weight files of any family: reading them safely and describing what does not fit.

Original YOLACT checkpoints are plain state dicts saved with ``torch.save``;
this project's own files are dicts with ``model``, ``config`` and training
state. Files are loaded as they are, never executing code from them
(``torch.load`` runs with ``weights_only=True``), and a file that cannot be
read is described in one line. Which family a file holds, and how its stored
config is read back, is decided by :mod:`yolact.registry`; each family loads
its own weights.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from yolact.core.config import ModelConfig
from yolact.core.file_kind import classify
from yolact.core.names import is_plain_name

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
    config: ModelConfig | None = None
    meta: dict[str, object] = field(default_factory=dict)


def read_checkpoint(
    path: str, parse_config: Callable[[dict[str, Any]], ModelConfig] | None = None
) -> Checkpoint:
    """Read a checkpoint safely.

    Accepts an original YOLACT file (a plain state dict) or this project's own
    training checkpoint (a dict with ``model`` and ``config``).

    Args:
        path: the file.
        parse_config: reads a stored config dict back (the registry's
            ``config_from_dict``); without it the stored dict stays in
            ``meta["config"]`` and ``config`` is None.

    Raises:
        CheckpointError: missing, truncated, unreadable or not a set of weights.
    """
    if not os.path.isfile(path):
        if os.path.isdir(path):
            raise CheckpointError(f"{path} is a folder, not a checkpoint file")
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
            if "name" in obj["config"]:
                _check_stored_name(path, obj["config"]["name"])
            if parse_config is not None:
                try:
                    cfg = parse_config(obj["config"])
                except (TypeError, KeyError, ValueError, AttributeError) as e:
                    raise CheckpointError(
                        f"checkpoint {path} has an unreadable config ({type(e).__name__}: {e})"
                    ) from None
                _check_stored_name(path, cfg.name)
        meta = {k: v for k, v in obj.items() if k != "model" and (k != "config" or cfg is None)}
        return Checkpoint(obj["model"], cfg, meta)
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        held = "a dict with other values" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise CheckpointError(
            f"checkpoint {path} does not hold a state dict of tensors (it holds {held})"
        )
    return Checkpoint(dict(obj))


def _check_stored_name(path: str, name: object) -> None:
    """Refuse a stored config name that is not a plain file name: checkpoints and logs
    are named after it, and ``../x`` or ``/tmp/x`` would write outside their folder."""
    if not is_plain_name(name):
        raise CheckpointError(
            f"checkpoint {path} stores the config name {name!r}, which is not a plain file "
            "name (it is part of the names of the files written)"
        )


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


def key_problems(
    state: dict[str, Tensor], own: dict[str, Tensor], missing: list[str], unexpected: list[str],
    wrong_shape: list[str],
) -> list[str]:  # fmt: skip
    """One phrase per kind of mismatch between a file's state dict and a model's."""
    problems = []
    if missing:
        problems.append(f"missing keys: {describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {describe(unexpected)}")
    if wrong_shape:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong_shape]
        problems.append(f"shape mismatch (file vs model): {describe(shapes, 2)}")
    return problems


def wrong_config(checkpoint: Checkpoint | dict[str, Tensor], name: str, source: str) -> str | None:
    """One short line for weights that do not fit config ``name`` because the file
    stores another config: ``X holds a 'A' model, not 'B'; use --config=A or leave it
    out``. None when the file stores no config or stores ``name`` (the caller then
    names the keys that do not fit)."""
    stored = checkpoint.config if isinstance(checkpoint, Checkpoint) else None
    if stored is None or stored.name == name:
        return None
    return (
        f"{source} holds a '{stored.name}' model, not '{name}'; "
        f"use --config={stored.name} or leave it out"
    )


def describe(keys: list[str], limit: int = 3) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def stored_class_names(checkpoint: Checkpoint) -> tuple[str, ...] | None:
    """The class names a file stores (its config's, or a ``class_names`` entry), else None."""
    if checkpoint.config is not None:
        return tuple(checkpoint.config.class_names)
    names = checkpoint.meta.get("class_names")
    if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
        return tuple(names)
    return None
