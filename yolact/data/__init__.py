"""Datasets for training and evaluation: COCO-format reader and synthetic scenes.

The synthetic names are imported on first use, so that
``python -m yolact.data.synthetic`` runs the module only once.
"""

from __future__ import annotations

import importlib
from typing import Any

from yolact.data.coco import (
    CocoDataset,
    DatasetError,
    DatasetWarning,
    Sample,
    collate,
    named_dataset,
)

_SYNTHETIC = (
    "SYNTHETIC_CLASSES",
    "VARIED",
    "SceneOptions",
    "Shape",
    "make_scene",
    "mask_to_polygons",
    "render",
    "write_coco_dataset",
    "write_synthetic_video",
)

__all__ = [
    "CocoDataset",
    "DatasetError",
    "DatasetWarning",
    "Sample",
    "collate",
    "named_dataset",
    *_SYNTHETIC,
]


def __getattr__(name: str) -> Any:
    if name in _SYNTHETIC:
        return getattr(importlib.import_module("yolact.data.synthetic"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
