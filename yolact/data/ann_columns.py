"""The annotations of a COCO json as columns of numbers, filled while it is read.

:class:`AnnotationColumns` is what :mod:`.stream_records` fills from the decoded
annotations and what :mod:`.record_checks` and :mod:`.split_build` read; it lives
here so that none of them imports another in a cycle.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from yolact.data.json_stream import NotStreamedError
from yolact.data.polygons import compact_polygons

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
