"""Training checkpoints: names as the original's, atomic writes, finding the latest."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from yolact.core.names import is_plain_name

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

    A crash while writing leaves the previous file (if any) intact.
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


def resume_path(spec: str, folder: str, config: str) -> str | None:
    """The file ``--resume`` names: ``spec`` itself, or for "latest"/"interrupt" the
    newest (interrupt) checkpoint of ``config`` in ``folder`` (None when there is none)."""
    if spec in ("latest", "interrupt"):
        return find_latest(folder, config, interrupt=None if spec == "latest" else True)
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
