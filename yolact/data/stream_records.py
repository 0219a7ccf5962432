"""Checked records of a COCO json built while it is read (:mod:`.json_stream`).

:class:`AnnotationColumns` takes the decoded annotations one at a time and keeps
those of the common form (int ids, a polygon of numbers, a box of 4 numbers) as a
few columns of numbers (``array.array`` and float64 arrays), dropping the dict; any
other annotation is kept as its dict. :func:`stream_records` then runs the dataset's
checks (:func:`~yolact.data.coco_annotations.check_annotation`: vectorised for the
columns, called as such for the kept dicts) in the order ``validate`` runs them,
and packs the same :class:`~yolact.data.records.Records`, skipped counts and cache
metadata as the whole-file path (``coco_source._check_and_pack``). The annotations
of a large file are read by two processes (:mod:`.split_build`), with the same result.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np

from yolact.data.coco_annotations import Categories, choose_categories, file_categories
from yolact.data.json_stream import NotStreamedError, stream_coco
from yolact.data.polygons import compact_polygons
from yolact.data.record_checks import assemble, check_columns
from yolact.data.records import Records
from yolact.data.split_build import SPLIT_MIN_BYTES, TwoProcessSplit

COORD_BLOCK = 2**23  # values per block of coordinates (64 MiB: above glibc's mmap threshold)


class AnnotationColumns:
    """The annotations of a file, in file order: columns for the common form, dicts
    for the rest (``odd``: file position -> dict).

    The common form: ``id``, ``image_id``, ``category_id`` ints (or bools) of int64,
    a ``bbox`` of 4 values ``float()`` reads as numbers, and a ``segmentation`` that
    is a list of lists. Its values are joined per block of annotations and made an
    array at once; a block whose values are not all numbers (``json.load`` with
    ``compact_polygons`` would have kept some polygon as lists) raises
    :class:`~yolact.data.json_stream.NotStreamedError`.
    """

    def __init__(self) -> None:
        self.count = 0
        self.position = array("q")  # file position of each column annotation
        self.ints = array("q")  # id, image_id, category_id of each
        self.crowd = array("b")
        self.boxes = array("d")  # x, y, w, h
        self.ring_counts = array("q")
        self.ring_lengths = array("q")
        self.coord_blocks: list[np.ndarray] = []
        self.block_first: list[int] = []  # the first column annotation of each block
        self._values = array("d")
        self._block_start = 0
        self.odd: dict[int, dict[str, Any]] = {}

    def add(self, anns: list[dict[str, Any]]) -> None:
        """Keep decoded annotations (each must have ``id``, ``image_id`` and
        ``category_id``: ``KeyError`` otherwise)."""
        ints, boxes, ring_lengths = self.ints, self.boxes, self.ring_lengths
        for ann in anns:
            position = self.count
            self.count += 1
            n_ints, n_boxes = len(ints), len(boxes)
            try:
                ints.extend((ann["id"], ann["image_id"], ann["category_id"]))
                boxes.extend(ann["bbox"])
                common = len(boxes) == n_boxes + 4
            except (TypeError, OverflowError):
                common = False
            except KeyError:
                if "id" not in ann or "image_id" not in ann or "category_id" not in ann:
                    raise
                common = False
            seg: Any = ann.get("segmentation")
            values = self._values
            n_values, n_rings = len(values), len(ring_lengths)
            if common and type(seg) is list:
                try:
                    for ring in seg:
                        if type(ring) is not list:
                            common = False
                            break
                        values.extend(ring)
                        ring_lengths.append(len(ring))
                except (TypeError, OverflowError) as e:  # json.load keeps them as lists
                    raise NotStreamedError(f"a polygon value is not a number ({e})") from e
            else:
                common = False
            if not common:
                del ints[n_ints:], boxes[n_boxes:], values[n_values:], ring_lengths[n_rings:]
                self.odd[position] = compact_polygons(ann)
                continue
            self.ring_counts.append(len(seg))
            self.crowd.append(1 if ann.get("iscrowd", 0) else 0)
            self.position.append(position)
            if len(values) >= COORD_BLOCK:
                self._flush()

    def _flush(self) -> None:
        """Close the block of values (its buffer, above glibc's mmap threshold, is
        given back to the system when freed)."""
        self.coord_blocks.append(np.frombuffer(self._values, dtype=np.float64))
        self.block_first.append(self._block_start)
        self._block_start = len(self.position)
        self._values = array("d")

    def finish(self) -> None:
        """Close the last block (call once, after the last :meth:`add`)."""
        self._flush()

    def append_part(
        self,
        count: int,
        parts: dict[str, memoryview],
        blocks: list[np.ndarray],
        block_first: list[int],
        odd: dict[int, dict[str, Any]],
    ) -> None:
        """Append the ``count`` annotations that follow these in the file, read into
        another :class:`AnnotationColumns` (``parts``: the bytes of its arrays by
        name; its coordinate blocks, their ``block_first`` and its ``odd``, with
        positions counted from its first annotation)."""
        self._flush()
        first = len(self.position)
        shifted = np.frombuffer(parts["position"], dtype=np.int64) + self.count
        self.position.frombytes(shifted.tobytes())
        for name in ("ints", "crowd", "boxes", "ring_counts", "ring_lengths"):
            getattr(self, name).frombytes(parts[name])
        self.coord_blocks.extend(blocks)
        self.block_first.extend(b + first for b in block_first)
        self.odd.update((p + self.count, ann) for p, ann in odd.items())
        self.count += count
        self._block_start = len(self.position)


def stream_records(
    ann_file: str,
    class_names: Sequence[str] | None,
    chunk: int = 4 * 2**20,
    split_min_bytes: int | None = SPLIT_MIN_BYTES,
    split_log: list[str] | None = None,
) -> tuple[Records, dict[str, int], dict[str, Any]]:
    """Read, check and pack ``ann_file`` without holding it whole (``chunk``: the
    characters read at a time).

    The annotations are split with a second process (:mod:`.split_build`) where the
    array starts at least ``split_min_bytes`` before the file's end (None: never);
    ``split_log``, if given, gets the split's outcome appended.

    Returns:
        ``(records, skipped, meta)`` equal to the whole-file path's.

    Raises:
        json_stream.NotStreamedError: a file read whole instead (its errors included).
        DatasetError, ValueError, KeyError, TypeError: as the whole-file path would.
    """
    images: list[dict[str, Any]] = []
    categories: list[dict[str, Any]] = []
    columns = AnnotationColumns()
    required = {
        "images": ("id", "file_name", "height", "width"),
        "annotations": ("id", "image_id", "category_id"),
        "categories": ("id", "name"),
    }

    def on_elements(key: str, elements: list[dict[str, Any]]) -> None:
        if key == "annotations":
            columns.add(elements)
            return
        for element in elements:
            if any(k not in element for k in required[key]):
                raise KeyError(f"an entry of '{key}' lacks one of {', '.join(required[key])}")
        (images if key == "images" else categories).extend(elements)

    split = None
    if split_min_bytes is not None:
        split = TwoProcessSplit(ann_file, columns, chunk, split_min_bytes)
    enabled = gc.isenabled()
    gc.disable()  # nothing decoded here forms a cycle; collections would cost minutes
    try:
        counts = stream_coco(ann_file, on_elements, chunk, split)
        columns.finish()
    finally:
        if split is not None:
            split.close()
            if split_log is not None:
                split_log.append(split.outcome)
        if enabled:
            gc.enable()
    if "images" not in counts:
        raise KeyError("no 'images' list")
    stub: dict[str, Any] = {"images": images}
    if "categories" in counts:
        stub["categories"] = categories
    if "annotations" in counts:
        stub["annotations"] = [None] * min(counts["annotations"], 1)
    file_cats = file_categories(stub, ann_file)
    chosen: Categories = choose_categories(file_cats, class_names, ann_file)
    imgs = {img["id"]: img for img in images}  # as ImageIndex: first position, last entry
    images.clear()
    checked = check_columns(imgs, columns, chosen)
    records = assemble(imgs, columns, checked)
    meta = {
        "has_annotations": "annotations" in counts,
        "images_empty": counts["images"] == 0,
        "annotations_empty": not counts.get("annotations"),
        "categories": [{"id": c["id"], "name": c["name"]} for c in file_cats],
        "skipped": list(checked.skipped.items()),
    }
    return records, checked.skipped, meta
