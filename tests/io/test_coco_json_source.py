"""COCO results of a run over several sources: each entry names its ``source``."""

from __future__ import annotations

import json

import numpy as np
from conftest import make_det

from yolact.io.coco_json import CocoJsonWriter, detections_to_coco


def test_source_is_stored_after_image_id() -> None:
    det = make_det([[10, 5, 50, 30], [0, 0, 60, 40]], [0, 1], [0.9, 0.5], None)
    res = detections_to_coco(det, 7, "cam.mp4", source=np.int64(2))
    assert [list(r)[:3] for r in res] == [["image_id", "source", "file_name"]] * 2
    assert [(r["image_id"], r["source"]) for r in res] == [(7, 2), (7, 2)]
    assert all(type(r["source"]) is int for r in res)
    assert all("source" not in r for r in detections_to_coco(det, 7))  # not given: absent


def test_writer_keeps_each_entry_s_source(tmp_path) -> None:
    one = make_det([[1, 1, 9, 9]], [0], [0.8], None)
    two = make_det([[2, 2, 8, 8], [3, 3, 7, 7]], [1, 0], [0.7, 0.6], None)
    writer = CocoJsonWriter(str(tmp_path / "d.json"))
    writer.add(one, 0, "a.mp4", source=0)
    writer.add(two, 0, "b.mp4", source=1)
    writer.add(one, 5, "a.mp4", source=0)
    writer.write()
    entries = json.loads((tmp_path / "d.json").read_text())
    assert [(e["source"], e["image_id"], e["file_name"]) for e in entries] == [
        (0, 0, "a.mp4"),
        (1, 0, "b.mp4"),
        (1, 0, "b.mp4"),
        (0, 5, "a.mp4"),
    ]
    assert writer.images == 3
