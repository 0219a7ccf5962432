"""The steps CocoDataset's constructor composes (yolact/data/coco_annotations.py):
parse, categories, validation with skip counts, and the image index (issue 17, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yolact.data.coco import CocoDataset, _index
from yolact.data.coco_annotations import (
    DatasetError,
    check_annotation,
    choose_categories,
    empty_list_warnings,
    file_categories,
    index_images,
    parse_annotations,
    skipped_summary,
    validate,
)

IMAGES = [
    {"id": 1, "file_name": "a.jpg", "height": 10, "width": 10},
    {"id": 2, "file_name": "b.jpg", "height": 10, "width": 10},
]
CATS = [{"id": 3, "name": "x"}, {"id": 1, "name": "y"}, {"id": 5, "name": "x"}]
TRIANGLE = [[1, 1, 5, 1, 5, 5]]
ANNS = [
    {"id": 1, "image_id": 1, "category_id": 3, "segmentation": TRIANGLE, "bbox": [1, 1, 4, 4]},
    {"id": 2, "image_id": 1, "category_id": 9, "segmentation": TRIANGLE},
    {"id": 3, "image_id": 7, "category_id": 3, "segmentation": TRIANGLE},
    {"id": 4, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 5, 1]]},
    {"id": 5, "image_id": 2, "category_id": 5, "segmentation": TRIANGLE, "bbox": [20, 20, 3, 3]},
    {"id": 6, "image_id": 2, "category_id": 5, "segmentation": TRIANGLE, "iscrowd": 1},
]
DATA = {"images": IMAGES, "annotations": ANNS, "categories": CATS}


def test_parse_annotations_reads_and_checks_the_structure(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(DATA))
    assert parse_annotations(str(path)) == DATA
    path.write_text(json.dumps({"images": [{"id": 1}]}))
    message = f"not a COCO annotation file (an entry of 'images' lacks one of id, file_name, height, width): {path}"  # noqa: E501
    with pytest.raises(DatasetError) as e:
        parse_annotations(str(path))
    assert str(e.value) == message
    with pytest.raises(DatasetError, match="^annotation file not found: "):
        parse_annotations(str(tmp_path / "missing.json"))


def test_file_categories_sorts_by_id_and_gives_an_image_list_coco_classes() -> None:
    assert [c["id"] for c in file_categories(DATA, "f.json")] == [1, 3, 5]
    coco = file_categories({"images": IMAGES}, "f.json")
    assert len(coco) == 80 and coco[0] == {"id": 1, "name": "person"}
    with pytest.raises(DatasetError) as e:
        file_categories({"images": IMAGES, "annotations": []}, "f.json")
    no_names = "no 'categories' list: the annotations' category ids have no names: f.json"
    assert str(e.value) == no_names
    with pytest.raises(DatasetError) as e:
        file_categories({**DATA, "categories": []}, "f.json")
    assert str(e.value) == "'categories' is empty: the dataset names no class: f.json"


def test_empty_list_warnings() -> None:
    assert empty_list_warnings(DATA, "f.json") == []
    assert empty_list_warnings({**DATA, "images": []}, "f.json") == ["f.json: 'images' is empty"]
    assert empty_list_warnings({**DATA, "annotations": []}, "f.json") == [
        "f.json: 'annotations' is empty: every image is background"
    ]


def test_choose_categories_by_name_takes_the_lowest_id() -> None:
    cats = file_categories(DATA, "f.json")
    every = choose_categories(cats, None, "f.json")
    assert every.class_names == ("y", "x", "x") and every.label_to_category_id == [1, 3, 5]
    chosen = choose_categories(cats, ["x", "y"], "f.json")
    assert chosen.label_to_category_id == [3, 1]
    assert chosen.category_id_to_label == {3: 0, 1: 1}
    assert chosen.known_ids == {1, 3, 5}
    with pytest.raises(DatasetError) as e:
        choose_categories(cats, ["z"], "f.json")
    assert str(e.value) == "classes not in the categories of f.json: ['z']"


def test_validate_keeps_usable_entries_and_counts_the_rest() -> None:
    categories = choose_categories(file_categories(DATA, "f.json"), None, "f.json")
    entries, skipped = validate(_index(DATA), DATA, categories)
    assert {k: [(a["id"], box, label) for a, box, label in v] for k, v in entries.items()} == {
        1: [(1, (1.0, 1.0, 5.0, 5.0), 1)],
        2: [(6, (1.0, 1.0, 5.0, 5.0), -1)],
    }
    assert skipped == {"unknown category": 1, "polygon with < 3 points": 1,
                       "box outside the image": 1, "unknown image id": 1}  # fmt: skip
    only_x = choose_categories(file_categories(DATA, "f.json"), ["x"], "f.json")
    entries, skipped = validate(_index(DATA), DATA, only_x)
    assert [a["id"] for a, _, _ in entries[1]] == [1] and entries[2] == []
    assert list(skipped.items()) == [
        ("category not in class_names", 3),
        ("unknown category", 1),
        ("unknown image id", 1),
    ]  # most common first
    assert check_annotation(ANNS[3], 10, 10, only_x) == "category not in class_names"
    assert skipped_summary({"a": 2, "b": 1}) == "skipped 3 annotations: 2 a, 1 b"
    assert skipped_summary({"a": 1}) == "skipped 1 annotation: 1 a"


def test_index_images_with_and_without_skip_empty() -> None:
    entries = {1: [({}, (0.0, 0.0, 1.0, 1.0), 0)], 2: [({}, (0.0, 0.0, 1.0, 1.0), -1)], 3: []}
    assert index_images([1, 2, 3], entries, skip_empty=False) == [1, 2, 3]
    assert index_images([1, 2, 3], entries, skip_empty=True) == [1]


def test_the_dataset_is_the_composition(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(DATA))
    with pytest.warns(UserWarning, match="skipped 5 annotations") as caught:
        ds = CocoDataset(str(path), str(tmp_path), class_names=["x"], skip_empty=True)
    assert caught[0].filename == __file__  # the warning points at the caller
    assert ds.skipped == {"category not in class_names": 3, "unknown category": 1,
                          "unknown image id": 1}  # fmt: skip
    assert ds.image_ids == [1] and ds.class_names == ("x",)
