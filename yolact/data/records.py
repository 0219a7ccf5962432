"""The checked annotations of a COCO file as a few flat numpy arrays.

A list of Python dicts per image is copied page by page into every DataLoader worker
as soon as the worker reads it: reading an object writes its reference count. Flat
arrays are single objects whose data pages are only read, so forked workers share
them (and a memory-mapped cache file shares them through the page cache).

Layout, for ``I`` images, ``E`` kept annotations, ``R`` polygon rings:

- per image: ``image_ids`` int64 [I], ``heights``/``widths`` int32 [I], the
  ``file_name`` bytes in ``names`` uint8 with ``name_offsets`` int64 [I + 1], and its
  entries ``entry_offsets[i]:entry_offsets[i + 1]`` (int64 [I + 1]);
- per entry: ``ann_ids`` int64 [E], ``boxes`` float64 [E, 4] (clipped xyxy),
  ``labels`` int32 [E] (-1 for crowd), its rings ``ring_index[e]:ring_index[e + 1]``
  (int64 [E + 1]) and its compressed RLE ``rles[rle_offsets[e]:rle_offsets[e + 1]]``
  (uint8, int64 [E + 1]): a polygon has rings and no RLE bytes, an RLE no rings;
- per ring: its coordinates ``coords[ring_offsets[r]:ring_offsets[r + 1]]``
  (float64, x and y interleaved as in the json).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from yolact.data.coco_annotations import Entry, _to_rle
from yolact.data.polygons import PackedPolygon

# One decoded entry: (annotation id, clipped xyxy box, label or -1, segmentation).
Record = tuple[int, tuple[float, ...], int, Any]


@dataclass(frozen=True)
class Records:
    """The flat arrays described in the module docstring."""

    image_ids: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    names: np.ndarray
    name_offsets: np.ndarray
    entry_offsets: np.ndarray
    ann_ids: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    ring_index: np.ndarray
    rle_offsets: np.ndarray
    rles: np.ndarray
    ring_offsets: np.ndarray
    coords: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by field name, in field order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    def image(self, i: int) -> tuple[int, str, int, int]:
        """``(image_id, file_name, height, width)`` of image ``i`` (its position in
        the file's ``images`` list, duplicates of an id removed)."""
        a, b = int(self.name_offsets[i]), int(self.name_offsets[i + 1])
        name = self.names[a:b].tobytes().decode("utf-8")
        return int(self.image_ids[i]), name, int(self.heights[i]), int(self.widths[i])

    def entries(self, i: int) -> list[Record]:
        """The kept annotations of image ``i`` in file order, each with its
        segmentation in a form :func:`~yolact.data.coco_annotations._to_rle` reads."""
        height, width = int(self.heights[i]), int(self.widths[i])
        out: list[Record] = []
        for e in range(int(self.entry_offsets[i]), int(self.entry_offsets[i + 1])):
            r0, r1 = int(self.ring_index[e]), int(self.ring_index[e + 1])
            seg: Any
            if r1 > r0:
                bounds = self.ring_offsets[r0 : r1 + 1].tolist()
                seg = [self.coords[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]
            else:
                a, b = int(self.rle_offsets[e]), int(self.rle_offsets[e + 1])
                seg = {"size": [height, width], "counts": self.rles[a:b].tobytes()}
            box = tuple(self.boxes[e].tolist())
            out.append((int(self.ann_ids[e]), box, int(self.labels[e]), seg))
        return out

    def has_instance(self) -> np.ndarray:
        """bool [I]: whether each image has a kept non-crowd entry."""
        kept = np.nonzero(self.labels >= 0)[0]
        owner = np.searchsorted(self.entry_offsets, kept, side="right") - 1
        return np.bincount(owner, minlength=self.num_images) > 0


def pack(images: Iterable[Mapping[str, Any]], entries: Mapping[int, list[Entry]]) -> Records:
    """Flat arrays of the images (in order) and their checked entries.

    Args:
        images: the image dicts in file order (one per id).
        entries: per image id, the entries :func:`validate` kept.

    Raises:
        ValueError: a kept polygon has a coordinate that is not a number.
    """
    ids: list[int] = []
    heights: list[int] = []
    widths: list[int] = []
    names: list[bytes] = []
    entry_counts: list[int] = []
    ann_ids: list[int] = []
    boxes: list[tuple[float, ...]] = []
    labels: list[int] = []
    ring_counts: list[int] = []
    ring_lengths: list[int] = []
    rle_parts: list[bytes] = []
    rings: list[Any] = []  # lists of numbers and float64 arrays (of packed polygons)
    for info in images:
        img_id, height, width = int(info["id"]), int(info["height"]), int(info["width"])
        ids.append(img_id)
        heights.append(height)
        widths.append(width)
        names.append(str(info["file_name"]).encode("utf-8"))
        kept = entries.get(img_id, [])
        entry_counts.append(len(kept))
        for ann, box, label in kept:
            ann_ids.append(ann["id"])
            boxes.append(box)
            labels.append(label)
            seg = ann["segmentation"]
            if isinstance(seg, PackedPolygon):
                ring_counts.append(len(seg.lengths))
                ring_lengths.extend(seg.lengths)
                rings.append(seg.coords)
                rle_parts.append(b"")
            elif isinstance(seg, list):
                ring_counts.append(len(seg))
                ring_lengths.extend(len(ring) for ring in seg)
                try:
                    rings.append(np.fromiter(itertools.chain.from_iterable(seg), np.float64))
                except (TypeError, ValueError) as e:
                    raise ValueError(
                        f"annotation {ann['id']}: a polygon value is not a number"
                    ) from e
                rle_parts.append(b"")
            else:
                ring_counts.append(0)
                rle_parts.append(_to_rle(seg, height, width)["counts"])
    coords = np.concatenate(rings) if rings else np.zeros(0, np.float64)
    return Records(
        image_ids=np.asarray(ids, dtype=np.int64),
        heights=np.asarray(heights, dtype=np.int32),
        widths=np.asarray(widths, dtype=np.int32),
        names=np.frombuffer(b"".join(names), dtype=np.uint8).copy(),
        name_offsets=_offsets(len(n) for n in names),
        entry_offsets=_offsets(entry_counts),
        ann_ids=np.asarray(ann_ids, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int32),
        ring_index=_offsets(ring_counts),
        rle_offsets=_offsets(len(p) for p in rle_parts),
        rles=np.frombuffer(b"".join(rle_parts), dtype=np.uint8).copy(),
        ring_offsets=_offsets(ring_lengths),
        coords=coords,
    )


def _offsets(lengths: Iterable[int]) -> np.ndarray:
    """int64 [n + 1]: 0 and the running sums of ``lengths``."""
    sizes = np.fromiter(lengths, dtype=np.int64)
    out = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def records_equal(a: Records, b: Records) -> bool:
    """Whether two records hold the same arrays (dtype, shape and values)."""
    for x, y in zip(a.arrays().values(), b.arrays().values()):
        if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
            return False
    return True
