"""One JSON line per image: the record format of ``yolact predict``, Ray Data and Serve.

A record::

    {"image_id": 3, "file_name": "a.jpg", "path": "photos/a.jpg", "height": 480,
     "width": 640, "detections": [{"category_id": 1, "bbox": [x, y, w, h],
     "score": 0.93, "segmentation": {"size": [480, 640], "counts": "..."}}, ...]}

Each detection has the fields of an ``eval.py --output_json`` entry (without the
``image_id`` and ``file_name`` the record holds once): :func:`to_coco_results`
turns records back into exactly that list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from yolact.core.structures import Detections
from yolact.io.coco_json import category_ids_for, detections_to_coco


def detection_entries(det: Detections, category_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The COCO result dicts of one image's detections, without ``image_id``."""
    entries = detections_to_coco(det, 0, None, category_ids)
    for entry in entries:
        del entry["image_id"]
    return entries


def make_record(
    det: Detections,
    *,
    image_id: int | None,
    file_name: str | None,
    path: str | None,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """The record of one image (fields left out where given None)."""
    height, width = det.image_size
    record: dict[str, Any] = {}
    for key, value in (("image_id", image_id), ("file_name", file_name), ("path", path)):
        if value is not None:
            record[key] = value
    record["height"], record["width"] = int(height), int(width)
    record["detections"] = detection_entries(det, category_ids_for(class_names))
    return record


def dump_line(record: dict[str, Any]) -> str:
    """The record as one line of JSON, newline included."""
    return json.dumps(record, separators=(",", ":")) + "\n"


def to_coco_results(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``eval.py --output_json`` list of records: each detection with its
    record's ``image_id`` and ``file_name`` put first, records in the order given."""
    out = []
    for rec in records:
        for det in rec["detections"]:
            head = {"image_id": rec.get("image_id", 0)}
            if "file_name" in rec:
                head["file_name"] = rec["file_name"]
            out.append({**head, **det})
    return out
