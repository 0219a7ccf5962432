"""Datasets for training and evaluation: COCO-format reader and synthetic scenes.

Every name is imported on first use, so that ``python -m yolact.data.synthetic``
runs the module only once and importing a submodule that needs no pycocotools
(``yolact.data.transforms``, which the families use) does not need it either.
"""

from __future__ import annotations

import importlib
from typing import Any

_COCO = ("CocoDataset", "DatasetError", "DatasetWarning", "Sample", "collate", "named_dataset")
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

__all__ = [*_COCO, *_SYNTHETIC]


def __getattr__(name: str) -> Any:
    if name in _COCO:
        return getattr(importlib.import_module("yolact.data.coco"), name)
    if name in _SYNTHETIC:
        return getattr(importlib.import_module("yolact.data.synthetic"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
