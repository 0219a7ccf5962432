"""Training checkpoints: names as the original's, atomic writes, finding the latest."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from yolact.core.names import is_plain_name

log = logging.getLogger("yolact.train")

_NAME = re.compile(
    r"^(?P<name>.+)_(?P<epoch>\d+)_(?P<iteration>\d+)(?P<interrupt>_interrupt)?\.pth$"
)


@dataclass(frozen=True)
class CheckpointName:
    """``<config>_<epoch>_<iteration>[_interrupt].pth``."""

    config: str
    epoch: int
    iteration: int
    interrupt: bool = False

    def __post_init__(self) -> None:
        if not is_plain_name(self.config):
            raise ValueError(f"config name {self.config!r} is not a plain file name")

    @property
    def file_name(self) -> str:
        tail = "_interrupt" if self.interrupt else ""
        return f"{self.config}_{self.epoch}_{self.iteration}{tail}.pth"

    @staticmethod
    def parse(path: str) -> CheckpointName | None:
        m = _NAME.match(os.path.basename(path))
        if m is None or not is_plain_name(m["name"]):
            return None
        return CheckpointName(
            m["name"], int(m["epoch"]), int(m["iteration"]), m["interrupt"] is not None
        )


def atomic_save(obj: object, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    A crash while writing leaves the previous file (if any) intact, and a process
    killed while writing (SIGKILL, a lost machine) leaves at most the temporary
    ``.<name>.tmp``, which no listing here takes for a checkpoint. The file's
    data reaches the disk before the rename, and the rename before this returns.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp")
    try:
        torch.save(obj, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    """Flush a folder's entries (a rename) to the disk, where the platform allows it."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class IncompleteCheckpointError(ValueError):
    """A file with a checkpoint's name that is not a whole training checkpoint."""


# What every training checkpoint this package writes holds (see ``Trainer._state``).
_REQUIRED = ("model", "optimizer", "iteration")


def load_complete(path: str) -> dict[str, Any]:
    """The entries of a whole training checkpoint, its tensors mapped from the file
    rather than read (cheap for large files).

    A file cut short (a copy or a write that did not finish) fails here: the zip
    archive ``torch.save`` writes ends with its directory.

    Raises:
        IncompleteCheckpointError: the file cannot be read as a checkpoint or lacks
            a training checkpoint's entries; the message (a verb phrase: "cannot
            be read (...)", "has no optimizer entry") says which.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # truncated, corrupt, not a zip checkpoint, unreadable
        text = (str(e).strip().splitlines() or [""])[0]
        detail = f"{type(e).__name__}: {text[:100]}" if text else type(e).__name__
        raise IncompleteCheckpointError(f"cannot be read ({detail})") from None
    if not isinstance(obj, dict):
        raise IncompleteCheckpointError(f"holds a {type(obj).__name__}, not a checkpoint")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise IncompleteCheckpointError(f"has no {', '.join(missing)} entry")
    if not isinstance(obj["model"], dict) or not isinstance(obj["optimizer"], dict):
        raise IncompleteCheckpointError("has a model or optimizer entry that is no state dict")
    if not isinstance(obj["iteration"], int):
        raise IncompleteCheckpointError("has an iteration entry that is no whole number")
    return obj


def list_checkpoints(folder: str, config: str) -> list[tuple[CheckpointName, str]]:
    """Checkpoints of ``config`` in ``folder``, oldest iteration first."""
    if not os.path.isdir(folder):
        return []
    found = []
    for f in os.listdir(folder):
        name = CheckpointName.parse(f)
        if name is not None and name.config == config:
            found.append((name, os.path.join(folder, f)))
    return sorted(found, key=lambda x: (x[0].iteration, x[0].interrupt))


def find_latest(folder: str, config: str, interrupt: bool | None = None) -> str | None:
    """Newest checkpoint of ``config`` (regular, interrupt, or either when None)."""
    found = [
        (n, p)
        for n, p in list_checkpoints(folder, config)
        if interrupt is None or n.interrupt == interrupt
    ]
    return found[-1][1] if found else None


def newest_complete(
    folder: str,
    config: str,
    interrupt: bool | None = None,
    accept: Callable[[dict[str, Any]], bool] | None = None,
) -> str | None:
    """The newest whole training checkpoint of ``config`` in ``folder`` (regular,
    interrupt, or either when None) that ``accept`` takes (given its entries).

    Temporary files of unfinished writes are never candidates; a file with a
    checkpoint's name that cannot be read whole (see :func:`load_complete`) is
    skipped with one warning line naming it and why, and an older one is taken.
    """
    for name, path in reversed(list_checkpoints(folder, config)):
        if interrupt is not None and name.interrupt != interrupt:
            continue
        try:
            entries = load_complete(path)
        except IncompleteCheckpointError as e:
            log.warning("skipping %s: not a complete checkpoint, it %s", path, e)
            continue
        if accept is None or accept(entries):
            return path
    return None


def resume_path(spec: str, folder: str, config: str) -> str | None:
    """The file ``--resume`` names: ``spec`` itself, or for "latest"/"interrupt" the
    newest complete (interrupt) checkpoint of ``config`` in ``folder`` (None when
    there is none; see :func:`newest_complete`)."""
    if spec in ("latest", "interrupt"):
        return newest_complete(folder, config, interrupt=None if spec == "latest" else True)
    return spec


def dataset_paths(train_set: object, val_set: object | None) -> dict[str, str]:
    """Absolute annotation and image paths of the training (and validation) set,
    as checkpoints store them for ``--resume`` (``train_ann``, ``train_images``,
    ``val_ann``, ``val_images``); sets without files give nothing."""
    out: dict[str, str] = {}
    for prefix, dataset in (("train", train_set), ("val", val_set)):
        ann, images = getattr(dataset, "ann_file", None), getattr(dataset, "image_dir", None)
        if isinstance(ann, str) and isinstance(images, str):
            out[f"{prefix}_ann"] = os.path.abspath(ann)
            out[f"{prefix}_images"] = os.path.abspath(images)
    return out


def prune(folder: str, config: str, keep: str) -> list[str]:
    """Delete regular checkpoints of ``config`` other than ``keep`` (``--keep_latest``)."""
    removed = []
    for name, path in list_checkpoints(folder, config):
        if not name.interrupt and os.path.abspath(path) != os.path.abspath(keep):
            os.remove(path)
            removed.append(path)
    return removed
