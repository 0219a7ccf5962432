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
from collections.abc import Sequence
from typing import Any

from yolact.data.ann_columns import AnnotationColumns
from yolact.data.coco_annotations import Categories, choose_categories, file_categories
from yolact.data.json_stream import stream_coco
from yolact.data.record_checks import assemble, check_columns
from yolact.data.records import Records
from yolact.data.split_build import SPLIT_MIN_BYTES, TwoProcessSplit


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
