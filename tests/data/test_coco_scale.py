"""The COCO train2017-sized file generator (yolact/data/coco_scale.py) and the compact
records (yolact/data/records.py) against the per-image dicts they replace (issue 20)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yolact.data.coco import CocoDataset, _index, collate
from yolact.data.coco_annotations import (
    ImageIndex,
    _to_rle,
    choose_categories,
    file_categories,
    parse_annotations,
    validate,
)
from yolact.data.coco_scale import IMAGE_SIZES, main, write_coco_scale
from yolact.data.records import pack


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return write_coco_scale(str(tmp_path_factory.mktemp("scale")), n_images=300, seed=3)


def _load(ann_file: str, image_dir: str, **kwargs) -> CocoDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CocoDataset(ann_file, image_dir, **kwargs)


def test_generated_file_has_coco_shape(generated: tuple[str, str]) -> None:
    ann_file, image_dir = generated
    data = json.loads(Path(ann_file).read_text())
    assert len(data["images"]) == 300
    assert len(data["annotations"]) == round(300 * 860_001 / 118_287) == 2181
    assert len(data["categories"]) == 80 and data["categories"][0] == {
        "id": 1, "name": "person", "supercategory": "thing"}  # fmt: skip
    crowds = [a for a in data["annotations"] if a["iscrowd"]]
    assert crowds and all(isinstance(a["segmentation"]["counts"], list) for a in crowds)
    for a in crowds:  # uncompressed RLE runs cover the image exactly
        h, w = a["segmentation"]["size"]
        assert sum(a["segmentation"]["counts"]) == h * w
    points = [len(a["segmentation"][0]) // 2 for a in data["annotations"] if not a["iscrowd"]]
    assert min(points) == 2 and max(points) == 47  # a short (skipped) one, up to 47 points
    for info in data["images"][:20]:
        path = os.path.join(image_dir, info["file_name"])
        assert os.path.islink(path)
        assert cv2.imread(path).shape[:2] == (info["height"], info["width"])
        assert (info["height"], info["width"]) in IMAGE_SIZES


def test_generated_file_is_reproducible(tmp_path: Path, generated: tuple[str, str]) -> None:
    ann_file, _ = write_coco_scale(str(tmp_path), n_images=300, seed=3)
    assert Path(ann_file).read_bytes() == Path(generated[0]).read_bytes()
    ds = _load(*generated)
    assert len(ds) == 300 and ds.num_classes == 80
    # Every invalid kind the generator writes is skipped and counted.
    assert {"polygon with < 3 points", "unknown category"} <= set(ds.skipped)


def test_cli_writes_and_refuses_bad_counts(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "a"), "--images", "3", "--annotations", "5"]) == 0
    data = json.loads((tmp_path / "a/annotations/instances_train2017.json").read_text())
    assert (len(data["images"]), len(data["annotations"])) == (3, 5)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    run = subprocess.run(
        [sys.executable, "-m", "yolact.data.coco_scale", "--out", str(tmp_path / "b"),
         "--images", "0"], capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == ["coco_scale: --images must be >= 1 and --annotations >= 0"]
    assert not (tmp_path / "b").exists()


def test_records_hold_what_the_per_image_dicts_held(generated: tuple[str, str]) -> None:
    """Reference: validate() on pycocotools' index, the lists the dataset used to keep."""
    ann_file, image_dir = generated
    data = json.loads(Path(ann_file).read_text())
    categories = choose_categories(file_categories(data, ann_file), None, ann_file)
    coco = _index(data)
    entries, skipped = validate(coco, data, categories)
    assert validate(ImageIndex(data), data, categories) == (entries, skipped)
    ds = _load(ann_file, image_dir, cache=False)
    assert ds.skipped == skipped
    assert ds.image_ids == list(coco.imgs)
    for i, img_id in enumerate(ds.image_ids):
        info = coco.imgs[img_id]
        assert ds.records.image(i) == (img_id, info["file_name"], info["height"], info["width"])
        got = ds.records.entries(i)
        assert [(a, b, c) for a, b, c, _ in got] == [
            (ann["id"], box, label) for ann, box, label in entries[img_id]
        ]
        h, w = info["height"], info["width"]
        for (_, _, _, seg), (ann, _, _) in zip(got, entries[img_id]):
            assert _to_rle(seg, h, w) == _to_rle(ann["segmentation"], h, w)


def test_records_of_duplicate_ids_missing_annotations_and_skip_empty(tmp_path: Path) -> None:
    images = [{"id": 4, "file_name": "a.png", "height": 8, "width": 8},
              {"id": 2, "file_name": "b.png", "height": 8, "width": 8},
              {"id": 4, "file_name": "c.png", "height": 6, "width": 6}]  # fmt: skip
    tri = [[1, 1, 5, 1, 5, 5], [0, 0, 2, 0, 2, 2, 9]]  # the odd tail is dropped when drawn
    anns = [{"id": 7, "image_id": 2, "category_id": 1, "segmentation": tri, "iscrowd": 1},
            {"id": 8, "image_id": 4, "category_id": 1, "segmentation": tri[:1]}]  # fmt: skip
    data = {"images": images, "annotations": anns}
    index = ImageIndex(data)
    assert list(index.imgs) == [4, 2] and index.imgs[4]["file_name"] == "c.png"
    cats = choose_categories([{"id": 1, "name": "x"}], None, "f")
    records = pack(index.imgs.values(), validate(index, data, cats)[0])
    assert records.image(0) == (4, "c.png", 6, 6) and records.image(1) == (2, "b.png", 8, 8)
    assert records.entries(0) == [(8, (1.0, 1.0, 5.0, 5.0), 0, [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]])]
    assert records.entries(1)[0][:3] == (7, (0.0, 0.0, 8.0, 5.0), -1)  # x up to 9, clipped
    assert records.entries(1)[0][3] == [[1, 1, 5, 1, 5, 5], [0, 0, 2, 0, 2, 2, 9]]
    assert records.has_instance().tolist() == [True, False]
    assert records.coords.dtype == np.float64 and records.ring_offsets.tolist() == [0, 6, 12, 19]


def test_compact_parse_is_judged_as_the_lists(tmp_path: Path) -> None:
    """Polygons of numbers are packed at parse time; everything else stays as it was
    and gets the same verdict, box and mask."""
    tri = [1, 1, 6, 1, 6, 6]
    segs = [[tri], [tri, [0, 0, 2]], [[1, 1, 5, 5]], [], [[True, 1, 6, 1, 6, 6.5]],
            [["1", 1, 6, 1, 6, 6]], [tri, 5], [[1, 1, 6, 1, 6, 6, 7]],
            {"size": [8, 8], "counts": [64]}]  # fmt: skip
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": seg}
            for i, seg in enumerate(segs)]  # fmt: skip
    for ann in anns[2:]:  # the first two get their box from the polygon
        ann["bbox"] = [1, 1, 5, 5]
    data = {"images": [{"id": 1, "file_name": "a.png", "height": 8, "width": 8}],
            "annotations": anns, "categories": [{"id": 1, "name": "x"}]}  # fmt: skip
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    plain, compact = parse_annotations(str(path)), parse_annotations(str(path), compact=True)
    packed = [type(a["segmentation"]).__name__ for a in compact["annotations"]]
    assert packed == ["PackedPolygon"] * 5 + ["list"] * 2 + ["PackedPolygon", "dict"]
    cats = choose_categories(file_categories(plain, "f"), None, "f")
    want, want_skipped = validate(ImageIndex(plain), plain, cats)
    got, got_skipped = validate(ImageIndex(compact), compact, cats)
    assert got_skipped == want_skipped == {"mask with no pixel inside the image": 1,
        "polygon with < 3 points": 1, "missing or malformed segmentation": 2}  # fmt: skip
    assert [(a["id"], box, label) for a, box, label in got[1]] == [
        (a["id"], box, label) for a, box, label in want[1]]  # fmt: skip
    for (a, _, _), (b, _, _) in zip(got[1], want[1]):
        assert _to_rle(a["segmentation"], 8, 8) == _to_rle(b["segmentation"], 8, 8)


def test_workers_read_the_same_samples(generated: tuple[str, str]) -> None:
    ds = _load(*generated, cache=False)
    indices = [0, 7, 123, 299]
    expected = [ds[i] for i in indices]
    subset = torch.utils.data.Subset(ds, indices)
    loader = torch.utils.data.DataLoader(subset, batch_size=2, num_workers=2, collate_fn=collate)
    got = [sample for batch in loader for sample in _unbatch(batch)]
    for want, have in zip(expected, got):
        assert want["image_id"] == have["image_id"] and want["file_name"] == have["file_name"]
        for key in ("image", "boxes", "labels", "masks", "crowd_boxes", "crowd_masks"):
            np.testing.assert_array_equal(want[key], have[key], err_msg=key)


def _unbatch(batch: dict) -> list[dict]:
    size = len(batch["image_id"])
    return [{key: value[i] for key, value in batch.items()} for i in range(size)]


def test_coco_index_is_read_on_demand(generated: tuple[str, str]) -> None:
    ds = _load(*generated, cache=False)
    assert ds._coco is None
    assert len(ds.coco.dataset["annotations"]) == 2181 and ds.coco is ds.coco
