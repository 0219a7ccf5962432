"""COCO results JSON: boxes, RLE masks, category ids and the file writer."""

from __future__ import annotations

import contextlib
import io
import json
import os
from functools import partial

import numpy as np
import pytest
import torch
from conftest import DET_NAMES, DET_SIZE
from conftest import make_det as make_det_1x
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolact.core.data_names import COCO_CLASSES
from yolact.core.structures import Detections
from yolact.io.coco_json import (
    CocoJsonWriter,
    category_ids_for,
    detections_to_coco,
    encode_masks,
)

H, W = DET_SIZE
NAMES = DET_NAMES
# Box and mask scores are the scores halved and quartered, so tests can tell the three apart.
make_det = partial(make_det_1x, box_score_scale=0.5, mask_score_scale=0.25)


def sample_masks() -> torch.Tensor:
    """[4, H, W]: a rectangle, an empty mask, a full mask, a random blob."""
    masks = torch.zeros((4, H, W), dtype=torch.bool)
    masks[0, 5:30, 10:50] = True
    masks[2] = True
    masks[3] = torch.rand(H, W, generator=torch.Generator().manual_seed(0)) > 0.7
    return masks


def decode(segmentation: dict) -> np.ndarray:
    rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    return mask_utils.decode(rle)


def test_bbox_xyxy_to_xywh() -> None:
    det = make_det(
        [[10, 5, 50, 30], [0, 0, 60, 40], [3, 7, 3, 7]], [0, 1, 2], [0.9, 0.5, 0.1], None
    )
    res = detections_to_coco(det, image_id=4)
    assert [r["bbox"] for r in res] == [[10, 5, 40, 25], [0, 0, 60, 40], [3, 7, 0, 0]]
    assert all(isinstance(v, float) for r in res for v in r["bbox"])
    assert [r["score"] for r in res] == pytest.approx([0.9, 0.5, 0.1])
    assert all(type(r["score"]) is float for r in res)
    assert [r["image_id"] for r in res] == [4, 4, 4]
    assert all("segmentation" not in r and "file_name" not in r for r in res)


def test_rle_round_trip_exact() -> None:
    masks = sample_masks()
    det = make_det([[10, 5, 50, 30], [0, 0, 1, 1], [0, 0, 60, 40], [0, 0, 60, 40]],
                   [0, 1, 2, 0], [0.9, 0.8, 0.7, 0.6], masks)  # fmt: skip
    res = detections_to_coco(det, image_id=1)
    assert len(res) == 4
    for r, m in zip(res, masks.numpy()):
        seg = r["segmentation"]
        assert isinstance(seg["counts"], str)
        assert seg["size"] == [H, W]
        back = decode(seg)
        assert back.shape == (H, W) and back.dtype == np.uint8
        assert np.array_equal(back.astype(bool), m)
    # areas: 25 * 40 rectangle, empty, full image
    areas = [int(mask_utils.area({**r["segmentation"]})) for r in res[:3]]
    assert areas == [1000, 0, H * W]
    json.dumps(res)


def test_encode_masks_matches_one_at_a_time() -> None:
    masks = sample_masks().numpy()
    batched = encode_masks(masks)
    for m, rle in zip(masks, batched):
        single = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert rle["counts"] == single["counts"].decode("ascii")
    assert encode_masks(np.zeros((0, H, W), bool)) == []


def test_category_ids_for_coco_and_custom() -> None:
    ids = category_ids_for(COCO_CLASSES)
    assert len(ids) == 80
    assert ids[0] == 1 and ids[11] == 13 and ids[79] == 90
    assert category_ids_for(list(COCO_CLASSES)) == ids
    assert category_ids_for(NAMES) == [1, 2, 3]
    assert category_ids_for(COCO_CLASSES[:79]) == list(range(1, 80))


def test_category_id_mapping() -> None:
    boxes = [[0, 0, 5, 5]] * 3
    det = make_det(boxes, [0, 79, 11], [0.9, 0.8, 0.7], None, class_names=COCO_CLASSES)
    res = detections_to_coco(det, 1, category_ids=category_ids_for(det.class_names))
    assert [r["category_id"] for r in res] == [1, 90, 13]
    # without category ids: label + 1
    assert [r["category_id"] for r in detections_to_coco(det, 1)] == [1, 80, 12]
    custom = make_det(boxes, [0, 2, 1], [0.9, 0.8, 0.7], None)
    res = detections_to_coco(custom, 1, category_ids=category_ids_for(NAMES))
    assert [r["category_id"] for r in res] == [1, 3, 2]
    res = detections_to_coco(custom, 1, category_ids=[7, 9, 11])
    assert [r["category_id"] for r in res] == [7, 11, 9]
    with pytest.raises(ValueError, match="category ids"):
        detections_to_coco(custom, 1, category_ids=[7, 9])


def test_file_name_and_image_id_types() -> None:
    det = make_det([[1, 2, 3, 4]], [0], [0.5], None)
    (r,) = detections_to_coco(det, np.int64(12), file_name="a/b.jpg")
    assert r["image_id"] == 12 and type(r["image_id"]) is int
    assert r["file_name"] == "a/b.jpg"
    assert list(r) == ["image_id", "file_name", "category_id", "bbox", "score"]
    (r,) = detections_to_coco(det, "img_007")
    assert r["image_id"] == "img_007"
    with pytest.raises(ValueError, match="image_id"):
        detections_to_coco(det, 1.5)  # type: ignore[arg-type]


def test_empty_detections() -> None:
    assert detections_to_coco(Detections.empty((H, W), NAMES), 3) == []
    assert detections_to_coco(Detections.empty((H, W), NAMES, with_masks=False), 3) == []


def ground_truth(masks_per_image: dict[int, list[tuple[np.ndarray, int]]]) -> COCO:
    """A tiny COCO dataset held in memory: images of H x W, categories 1..3."""
    images, anns = [], []
    for image_id, items in masks_per_image.items():
        images.append({"id": image_id, "width": W, "height": H, "file_name": f"{image_id}.jpg"})
        for m, cat in items:
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            anns.append({
                "id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")},
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0,
            })  # fmt: skip
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def test_writer_output_loads_and_evaluates(tmp_path) -> None:
    m1 = torch.zeros((2, H, W), dtype=torch.bool)
    m1[0, 5:30, 10:50] = True
    m1[1, 20:38, 2:20] = True
    m2 = torch.zeros((1, H, W), dtype=torch.bool)
    m2[0, 0:40, 30:60] = True
    det1 = make_det([[10, 5, 50, 30], [2, 20, 20, 38]], [0, 2], [0.9, 0.6], m1)
    det2 = make_det([[30, 0, 60, 40]], [1], [0.8], m2)
    gt = ground_truth({1: [(m1[0].numpy(), 1), (m1[1].numpy(), 3)], 2: [(m2[0].numpy(), 2)]})

    path = tmp_path / "out" / "nested" / "results.json"
    with CocoJsonWriter(str(path)) as writer:
        writer.add(det1, 1, file_name="1.jpg", category_ids=category_ids_for(NAMES))
        writer.add(det2, 2, file_name="2.jpg")
        writer.add(Detections.empty((H, W), NAMES), 3)
        assert len(writer) == 3
        assert not path.exists()
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left

    data = json.loads(path.read_text())
    assert [d["category_id"] for d in data] == [1, 3, 2]
    assert data[0]["bbox"] == [10, 5, 40, 25]

    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(str(path))
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert len(dt.getAnnIds()) == 3
    assert ev.stats[0] == pytest.approx(1.0)  # every mask matches its ground truth exactly


def test_writer_replaces_existing_file(tmp_path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")
    writer = CocoJsonWriter(str(path))
    assert len(writer) == 0
    assert writer.write() == str(path)
    assert json.loads(path.read_text()) == []
    writer.add(make_det([[1, 2, 3, 4]], [0], [0.5], None), 5)
    writer.write()
    assert len(json.loads(path.read_text())) == 1
    assert os.listdir(tmp_path) == ["r.json"]


def test_writer_no_write_when_block_raises(tmp_path) -> None:
    path = tmp_path / "r.json"
    with pytest.raises(RuntimeError), CocoJsonWriter(str(path)) as writer:
        writer.add(make_det([[1, 2, 3, 4]], [0], [0.5], None), 5)
        raise RuntimeError("boom")
    assert not path.exists()


def test_writer_failures(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        CocoJsonWriter(str(blocker / "r.json")).write()  # parent is a file
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(OSError):
        CocoJsonWriter(str(folder)).write()  # target is a folder
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]  # no temp file
    with pytest.raises(ValueError, match="empty"):
        CocoJsonWriter("")
