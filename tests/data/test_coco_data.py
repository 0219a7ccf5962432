"""CocoDataset on small hand-written COCO jsons."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from yolact.data import CocoDataset, DatasetError, DatasetWarning, collate, named_dataset

# Image 1: 60x80, image 5: 40x50, image 9: 30x30 (no annotations).
SIZES = {1: (60, 80), 5: (40, 50), 9: (30, 30)}


def _rle_mask(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _compressed(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": list(mask.shape), "counts": rle["counts"].decode("ascii")}


def _uncompressed(mask: np.ndarray) -> dict:
    """Column-major run lengths starting with a run of zeros (COCO's iscrowd format)."""
    flat = mask.flatten(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": [int(c) for c in counts]}


RLE_MASK = _rle_mask(60, 80, 40, 50, 50, 70)  # image 1, compressed RLE
CROWD_MASK = _rle_mask(60, 80, 0, 8, 60, 80)  # image 1, iscrowd
UNCOMPRESSED_MASK = _rle_mask(40, 50, 5, 15, 20, 45)  # image 5


def _ann(ann_id: int, image_id: int, cat: int, seg, bbox, iscrowd: int = 0) -> dict:
    return {
        "id": ann_id, "image_id": image_id, "category_id": cat, "segmentation": seg,
        "bbox": bbox, "area": 0.0, "iscrowd": iscrowd,
    }  # fmt: skip


def _dataset_json() -> dict:
    square = [10, 10, 30, 10, 30, 30, 10, 30]  # axis-aligned 20x20 square
    anns = [
        _ann(1, 1, 3, [square], [10, 10, 20, 20]),
        _ann(2, 1, 7, _compressed(RLE_MASK), [50, 40, 20, 10]),
        _ann(3, 1, 12, _uncompressed(CROWD_MASK), [60, 0, 20, 8], iscrowd=1),
        _ann(4, 5, 12, _uncompressed(UNCOMPRESSED_MASK), [20, 5, 25, 10]),
        # Box partly outside image 5 (W=50): clipped to x2 = 50.
        _ann(5, 5, 3, [[40, 20, 60, 20, 60, 30, 40, 30]], [40, 20, 20, 10]),
        # Unusable ones, all on image 5.
        _ann(10, 5, 3, [[1, 1, 5, 5]], [1, 1, 4, 4]),  # 2 points
        _ann(11, 5, 3, [[1, 1, 5, 1, 5, 5]], [1, 1, 0, 4]),  # zero width box
        _ann(12, 5, 3, [[1, 1, 5, 1, 5, 5]], [1, 1, 4, -2]),  # negative height box
        _ann(13, 5, 7, [[100, 100, 120, 100, 120, 120]], [100, 100, 20, 20]),  # outside
        _ann(14, 5, 99, [square], [10, 10, 20, 20]),  # unknown category
        _ann(15, 5, 7, _compressed(np.zeros((40, 50), np.uint8)), [1, 1, 5, 5]),  # empty RLE
        # Polygon outside the image but a box inside: empty only once decoded.
        _ann(16, 5, 7, [[-30, -30, -10, -30, -10, -10]], [0, 0, 5, 5]),
    ]
    return {
        "images": [
            {"id": i, "file_name": f"img{i}.png", "height": h, "width": w}
            for i, (h, w) in SIZES.items()
        ],
        "annotations": anns,
        # Not sorted by id on purpose; labels follow the ids 3, 7, 12.
        "categories": [{"id": 7, "name": "b"}, {"id": 12, "name": "c"}, {"id": 3, "name": "a"}],
    }


@pytest.fixture()
def coco_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for image_id, (h, w) in SIZES.items():
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        assert cv2.imwrite(str(tmp_path / "images" / f"img{image_id}.png"), image)
    (tmp_path / "ann.json").write_text(json.dumps(_dataset_json()))
    return tmp_path


def _load(root: Path, **kwargs) -> tuple[CocoDataset, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = CocoDataset(str(root / "ann.json"), str(root / "images"), **kwargs)
    return ds, [w for w in caught if issubclass(w.category, DatasetWarning)]


def test_categories_map_to_contiguous_labels(coco_dir: Path) -> None:
    ds, _ = _load(coco_dir)
    assert ds.class_names == ("a", "b", "c")
    assert ds.label_to_category_id == [3, 7, 12]
    assert ds.category_id_to_label == {3: 0, 7: 1, 12: 2}
    assert len(ds) == 3 and ds.image_ids == [1, 5, 9]
    assert ds.num_classes == 3


def test_polygon_rle_and_crowd_of_first_image(coco_dir: Path) -> None:
    ds, _ = _load(coco_dir)
    s = ds[0]
    assert s["image_id"] == 1 and s["file_name"] == "img1.png"
    assert (s["height"], s["width"]) == (60, 80)
    assert s["image"].shape == (60, 80, 3) and s["image"].dtype == np.uint8
    expected_image = cv2.imread(str(coco_dir / "images" / "img1.png"))
    np.testing.assert_array_equal(s["image"], expected_image)
    assert s["labels"].dtype == np.int64 and s["labels"].tolist() == [0, 1]
    assert s["masks"].dtype == np.uint8 and s["masks"].shape == (2, 60, 80)
    assert set(np.unique(s["masks"])) <= {0, 1}
    # Polygon (10,10)-(30,30): area 20 * 20 = 400 pixels, rows/cols 10..29.
    assert s["masks"][0].sum() == 20 * 20
    assert s["masks"][0][10:30, 10:30].all()
    np.testing.assert_array_equal(s["masks"][1], RLE_MASK)
    assert s["boxes"].dtype == np.float32
    np.testing.assert_allclose(s["boxes"], [[10, 10, 30, 30], [50, 40, 70, 50]])
    # The crowd region is an ignore region, not an instance.
    assert s["crowd_boxes"].dtype == np.float32
    np.testing.assert_allclose(s["crowd_boxes"], [[60, 0, 80, 8]])
    assert s["crowd_masks"].dtype == np.uint8 and s["crowd_masks"].shape == (1, 60, 80)
    np.testing.assert_array_equal(s["crowd_masks"][0], CROWD_MASK)


def test_uncompressed_rle_and_clipped_box(coco_dir: Path) -> None:
    ds, _ = _load(coco_dir)
    with pytest.warns(DatasetWarning, match="annotation 16"):
        s = ds[1]
    assert s["labels"].tolist() == [2, 0]
    np.testing.assert_array_equal(s["masks"][0], UNCOMPRESSED_MASK)
    # The second polygon is cut by the right border at x = 50.
    assert s["masks"][1].sum() == 10 * 10
    np.testing.assert_allclose(s["boxes"], [[20, 5, 45, 15], [40, 20, 50, 30]])
    assert s["crowd_boxes"].shape == (0, 4) and s["crowd_masks"].shape == (0, 40, 50)
    # Labels map back to the json's category ids.
    assert [ds.label_to_category_id[i] for i in s["labels"]] == [12, 3]


def test_image_without_annotations_is_empty(coco_dir: Path) -> None:
    ds, _ = _load(coco_dir)
    s = ds[2]
    assert s["image_id"] == 9 and s["image"].shape == (30, 30, 3)
    expected = {
        "boxes": ((0, 4), np.float32), "labels": ((0,), np.int64),
        "masks": ((0, 30, 30), np.uint8), "crowd_boxes": ((0, 4), np.float32),
        "crowd_masks": ((0, 30, 30), np.uint8),
    }  # fmt: skip
    for key, (shape, dtype) in expected.items():
        assert s[key].shape == shape and s[key].dtype == dtype, key


def test_bad_annotations_are_counted_with_one_warning(coco_dir: Path) -> None:
    ds, caught = _load(coco_dir)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "\n" not in message
    assert "skipped 6 annotations" in message
    assert "1 polygon with < 3 points" in message and "1 unknown category" in message
    assert ds.skipped == {
        "zero or negative area box": 2,
        "polygon with < 3 points": 1,
        "box outside the image": 1,
        "unknown category": 1,
        "mask with no pixel inside the image": 1,
    }
    # The polygon lying outside the image is found empty when its image is decoded,
    # counted once, and warned about once.
    with warnings.catch_warnings(record=True) as lazy:
        warnings.simplefilter("always")
        for _ in range(2):
            assert len(ds[1]["labels"]) == 2
    assert len([w for w in lazy if issubclass(w.category, DatasetWarning)]) == 1
    assert ds.skipped["mask with no pixel inside the image"] == 2


def test_skip_empty_drops_images_without_instances(coco_dir: Path) -> None:
    ds, _ = _load(coco_dir, skip_empty=True)
    assert ds.image_ids == [1, 5]


def test_class_names_select_and_order_labels(coco_dir: Path) -> None:
    ds, caught = _load(coco_dir, class_names=["c", "a"])
    assert ds.class_names == ("c", "a")
    assert ds.label_to_category_id == [12, 3]
    assert ds[1]["labels"].tolist() == [0, 1]
    assert ds[0]["labels"].tolist() == [1]  # the category 7 instance is left out
    # Annotations 2, 13, 15 and 16 are of category 7; it comes before the other checks.
    assert ds.skipped["category not in class_names"] == 4
    with pytest.raises(DatasetError, match="zebra"):
        CocoDataset(str(coco_dir / "ann.json"), str(coco_dir / "images"), class_names=["zebra"])


def test_transform_is_applied(coco_dir: Path) -> None:
    def transform(sample: dict) -> dict:
        return {**sample, "image": torch.from_numpy(sample["image"]).permute(2, 0, 1)}

    ds, _ = _load(coco_dir, transform=transform)
    assert ds[0]["image"].shape == (3, 60, 80)


def test_collate_stacks_equal_tensor_images_only(coco_dir: Path) -> None:
    ds, _ = _load(coco_dir)
    with pytest.warns(DatasetWarning):
        samples = [ds[0], ds[1]]
    batch = collate(samples)
    assert isinstance(batch["image"], list) and len(batch["image"]) == 2
    assert batch["image_id"] == [1, 5]
    assert [b.shape for b in batch["boxes"]] == [(2, 4), (2, 4)]
    assert batch["masks"][1].shape == (2, 40, 50)

    same = [{**s, "image": torch.zeros(3, 32, 32)} for s in samples]
    batch = collate(same)
    assert batch["image"].shape == (2, 3, 32, 32)
    assert len(batch["labels"]) == 2 and isinstance(batch["labels"][0], np.ndarray)
    different = [
        {**samples[0], "image": torch.zeros(3, 32, 32)},
        {**samples[1], "image": torch.zeros(3, 16, 32)},
    ]
    assert isinstance(collate(different)["image"], list)
    assert collate([]) == {}

    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate)
    (only,) = list(loader)
    assert only["image_id"] == [1, 5, 9]


def _one_line_error(match: str, *args, **kwargs) -> str:
    with pytest.raises(DatasetError, match=match) as info:
        CocoDataset(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_files_raise_one_line_errors(coco_dir: Path, tmp_path: Path) -> None:
    ann, images = str(coco_dir / "ann.json"), str(coco_dir / "images")
    assert str(tmp_path / "nope.json") in _one_line_error(
        "annotation file", str(tmp_path / "nope.json"), images
    )
    assert str(tmp_path / "nope") in _one_line_error("image directory", ann, str(tmp_path / "nope"))

    (tmp_path / "list.json").write_text("[1, 2]")
    _one_line_error("not a COCO", str(tmp_path / "list.json"), images)
    (tmp_path / "broken.json").write_text("{not json")
    _one_line_error("not a COCO", str(tmp_path / "broken.json"), images)
    (tmp_path / "noid.json").write_text(json.dumps({"images": [{"file_name": "a.png"}]}))
    _one_line_error("not a COCO", str(tmp_path / "noid.json"), images)

    ds, _ = _load(coco_dir)
    os.remove(coco_dir / "images" / "img9.png")
    with pytest.raises(DatasetError, match="img9.png") as info:
        ds[2]
    assert "\n" not in str(info.value)
    (coco_dir / "images" / "img5.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="cannot read image.*img5.png"):
        ds[1]


def test_image_info_json_without_annotations(coco_dir: Path) -> None:
    data = _dataset_json()
    del data["annotations"]  # like image_info_test-dev2017.json
    (coco_dir / "info.json").write_text(json.dumps(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = CocoDataset(str(coco_dir / "info.json"), str(coco_dir / "images"))
    assert len(ds) == 3 and ds.skipped == {}
    assert ds[0]["masks"].shape == (0, 60, 80)


def test_named_dataset() -> None:
    assert named_dataset("coco2017_val") == (
        os.path.join("data", "coco", "annotations", "instances_val2017.json"),
        os.path.join("data", "coco", "images", "val2017"),
    )
    ann, images = named_dataset("coco2017_train", root="/d")
    assert ann == "/d/coco/annotations/instances_train2017.json"
    assert images == "/d/coco/images/train2017"
    ann, images = named_dataset("coco2017_testdev")
    assert ann.endswith("image_info_test-dev2017.json") and images.endswith("test2017")
    with pytest.raises(DatasetError, match="coco2017_val"):
        named_dataset("coco2014")


def test_box_from_segmentation_when_bbox_is_missing(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((40, 50, 3), np.uint8))
    polygon = _ann(1, 1, 1, [[5, 6, 25, 6, 25, 16, 5, 16]], None)
    rle = _ann(2, 1, 1, _compressed(UNCOMPRESSED_MASK), None)
    wrong_size = _ann(3, 1, 1, _compressed(RLE_MASK), [1, 1, 5, 5])  # RLE of a 60x80 image
    for ann in (polygon, rle):
        del ann["bbox"]
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 50}],
        "annotations": [polygon, rle, wrong_size],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(data))
    ds, caught = _load(tmp_path)
    assert ds.skipped == {"mask size differs from the image": 1} and len(caught) == 1
    np.testing.assert_allclose(ds[0]["boxes"], [[5, 6, 25, 16], [20, 5, 45, 15]])


def _write(tmp_path: Path, name: str, data: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_files_that_are_not_what_they_seem(coco_dir: Path) -> None:
    images = str(coco_dir / "images")
    no_categories = _dataset_json()
    del no_categories["categories"]
    message = _one_line_error(
        "no 'categories' list", _write(coco_dir, "nocat.json", no_categories), images
    )
    assert message.endswith("nocat.json")
    empty_categories = {**_dataset_json(), "categories": []}
    _one_line_error(
        "'categories' is empty", _write(coco_dir, "emptycat.json", empty_categories), images
    )
    no_images = _dataset_json()
    del no_images["images"]
    _one_line_error("no 'images' list", _write(coco_dir, "noimg.json", no_images), images)

    # An image list (no annotations, no categories) reads, for inference only.
    image_list = {"images": _dataset_json()["images"]}
    ds = CocoDataset(_write(coco_dir, "list.json", image_list), images)
    assert ds.num_classes == 80 and not ds.has_annotations
    with pytest.raises(DatasetError, match=r"no 'annotations' list .*cannot train on") as info:
        ds.check_trainable()
    assert "\n" not in str(info.value) and str(info.value).endswith("list.json")


def test_explicitly_empty_lists_warn(coco_dir: Path) -> None:
    images = str(coco_dir / "images")
    background = {**_dataset_json(), "annotations": []}
    with pytest.warns(DatasetWarning, match=r"^bg.json: 'annotations' is empty: every image is"):
        ds = CocoDataset(_write(coco_dir, "bg.json", background), images)
    assert len(ds) == 3 and ds.num_classes == 3 and ds.skipped == {}
    assert all(len(ds[i]["labels"]) == 0 for i in range(3))
    ds.check_trainable()  # a legitimately empty set trains (on background)

    nothing = {**_dataset_json(), "images": [], "annotations": []}
    with pytest.warns(DatasetWarning, match=r"^none.json: 'images' is empty$"):
        ds = CocoDataset(_write(coco_dir, "none.json", nothing), images)
    with pytest.raises(DatasetError, match=r"^the training set has no images: .*none.json$"):
        ds.check_trainable()


def test_annotations_of_unknown_images_and_categories_are_skipped(coco_dir: Path) -> None:
    data = _dataset_json()
    square = [10, 10, 30, 10, 30, 30, 10, 30]
    data["annotations"] = [
        _ann(1, 1, 3, [square], [10, 10, 20, 20]),
        _ann(2, 42, 3, [square], [10, 10, 20, 20]),  # no image 42
        _ann(3, 43, 7, [square], [10, 10, 20, 20]),  # no image 43
        _ann(4, 1, 5, [square], [10, 10, 20, 20]),  # no category 5
    ]
    with pytest.warns(DatasetWarning) as caught:
        ds = CocoDataset(_write(coco_dir, "orph.json", data), str(coco_dir / "images"))
    messages = [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]
    assert messages == ["orph.json: skipped 3 annotations: 2 unknown image id, 1 unknown category"]
    assert ds.skipped == {"unknown image id": 2, "unknown category": 1}
    assert ds[0]["labels"].tolist() == [0] and len(ds) == 3
