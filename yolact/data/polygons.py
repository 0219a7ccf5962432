"""Polygon segmentations held as one float64 array while a large json is parsed.

A COCO polygon in Python lists costs about 32 bytes per coordinate; train2017's
50 million coordinates alone take 1.6 GB that way. :func:`compact_polygons` is a
``json`` ``object_hook`` that replaces, as soon as an object is parsed, a
``segmentation`` made of lists of numbers with a :class:`PackedPolygon` (8 bytes per
coordinate). Any other segmentation is left as it is, so the checks of
:mod:`yolact.data.coco_annotations` see it and judge it as before.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


class PackedPolygon:
    """The rings of a polygon segmentation, concatenated.

    Attributes:
        coords: float64 [sum of lengths]: each ring's x, y values in json order.
        lengths: the number of values of each ring.
    """

    __slots__ = ("coords", "lengths")

    def __init__(self, coords: np.ndarray, lengths: tuple[int, ...]) -> None:
        self.coords = coords
        self.lengths = lengths

    def rings(self) -> list[list[float]]:
        """The rings as lists of floats (as the json had them, ints as floats)."""
        bounds = list(itertools.accumulate(self.lengths, initial=0))
        return [self.coords[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]

    def __repr__(self) -> str:
        return f"PackedPolygon(rings={list(self.lengths)})"


def compact_polygons(obj: dict[str, Any]) -> dict[str, Any]:
    """``object_hook``: ``obj`` with a list-of-lists-of-numbers ``segmentation``
    (bools, ints and floats, as pycocotools reads them) packed; else ``obj`` as is."""
    seg = obj.get("segmentation")
    if type(seg) is not list or not all(type(ring) is list for ring in seg):
        return obj
    try:
        values = np.array(list(itertools.chain.from_iterable(seg)))
    except (ValueError, TypeError, OverflowError):
        return obj
    if values.ndim != 1 or values.dtype.kind not in "biuf":
        return obj
    obj["segmentation"] = PackedPolygon(
        values.astype(np.float64, copy=False), tuple(len(ring) for ring in seg)
    )
    return obj
