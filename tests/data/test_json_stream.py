"""The streamed cold build (yolact/data/json_stream.py, stream_records.py,
record_checks.py) gives the records, skipped counts and cache metadata of the
whole-file path, byte for byte, on any json layout; what it does not read it leaves
to ``json``, so errors stay the same one line (issue 20)."""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from yolact.data import coco_source
from yolact.data.ann_cache import CacheError, file_sha256, read_cache, write_cache
from yolact.data.coco import CocoDataset
from yolact.data.coco_annotations import (
    DatasetError,
    choose_categories,
    file_categories,
    parse_annotations,
)
from yolact.data.coco_scale import write_coco_scale
from yolact.data.coco_source import _check_and_pack, build_records
from yolact.data.json_stream import NotStreamedError
from yolact.data.stream_records import stream_records

CATS = [
    {"id": 1, "name": "cat"},
    {"id": 3, "name": "dog"},
    {"id": 7, "name": "ca\u00e9t \U0001f600"},
]
SQUARE = [[10, 10, 30, 10.5, 30, 30.25, 10, 30]]


def _ann(i: int, image_id: Any, cat: Any = 1, **kw: Any) -> dict[str, Any]:
    ann = {"id": i, "image_id": image_id, "category_id": cat, "segmentation": SQUARE,
           "bbox": [10, 10, 20, 20.25], "iscrowd": 0}  # fmt: skip
    ann.update(kw)
    return ann


def _edge_file() -> dict[str, Any]:
    """Images, categories and annotations covering every check and odd form."""
    images = [
        {"id": 1, "file_name": "a\u00e9.jpg", "height": 40, "width": 50},
        {"id": 2, "file_name": "b.jpg", "height": 60, "width": 30, "extra": {"x": [1, 2]}},
        {"id": 3, "file_name": "c.jpg", "height": 20, "width": 20},
        {"id": 2, "file_name": "b2.jpg", "height": 60, "width": 40},  # a repeated id
    ]
    rle_list = {"size": [20, 20], "counts": [5, 10, 385]}
    anns = [
        _ann(1, 1),
        _ann(2, 2, 3, iscrowd=1),
        _ann(3, 1, 99),  # unknown category
        _ann(4, 42),  # unknown image
        _ann(5, 1, segmentation=[[1, 2, 3, 4]]),  # short polygon
        _ann(6, 1, bbox=[1, 1, 0, 5]),  # empty box
        _ann(7, 1, bbox=[100, 100, 5, 5]),  # outside
        _ann(8, 3, segmentation=rle_list, iscrowd=1),  # RLE, counts as a list
        _ann(9, 3, segmentation={"size": [20, 20], "counts": "Y45b0"}, iscrowd=True),
        _ann(10, 2, segmentation=[], bbox=[1, 2, 3, 4]),  # no ring
        _ann(11, 2, bbox=None),  # box from the polygon
        _ann(12, 2, bbox=[1, 2, 3]),  # malformed box
        _ann(13, 2, bbox=["1", 2, 3, 4]),  # strings float() reads
        _ann(14, 2, bbox=[1.5, float("nan"), 3, 4]),
        _ann(15, 1.0),  # a float image id: image 1
        _ann(16.0, 1, 7.0),  # float ids
        _ann(17, 1, segmentation=[SQUARE[0], 5]),  # a ring that is not a list
        _ann(18, 3, segmentation={"size": [10, 10], "counts": [100]}),  # other size
        _ann(19, 2, segmentation=[[-0, 0.0, -0.0, 1e2, 2e-1, 5, 7, 9], [1, 2, 3]], iscrowd=2),
        _ann(20, 2, bbox=[-5, -5, 200, 200], extra={"segmentation": [[1, 2]]}),
        _ann(21, 1, True),  # category True == 1
        _ann(22, 3, segmentation=[[True, False, 1, 2, 3, 4]]),
    ]
    return {"annotations": anns, "info": {"year": 2024, "list": [{"a": "}, {"}]},
            "images": images, "licenses": [], "categories": CATS}  # fmt: skip


def _old(path: str, class_names: list[str] | None = None) -> tuple[Any, dict, dict]:
    data = parse_annotations(path, compact=True)
    cats = choose_categories(file_categories(data, path), class_names, path)
    return _check_and_pack(data, cats, path)


def _assert_same(a: tuple[Any, dict, dict], b: tuple[Any, dict, dict]) -> None:
    for name, x in a[0].arrays().items():
        y = getattr(b[0], name)
        assert (x.dtype, x.shape) == (y.dtype, y.shape), name
        assert x.tobytes() == y.tobytes(), name
    assert a[1] == b[1] and list(a[1]) == list(b[1])
    assert a[2] == b[2]


def _write(path: Path, data: Any, **dump: Any) -> str:
    path.write_text(json.dumps(data, **dump), encoding="utf-8")
    return str(path)


LAYOUTS = {
    "minified": {"separators": (",", ":")},
    "spaced": {},
    "pretty": {"indent": 2},
    "ascii_escapes": {"indent": "\t", "ensure_ascii": True},
    "raw_utf8": {"ensure_ascii": False},
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("chunk", [7, 64, 4 * 2**20])
def test_edge_cases_equal_the_whole_file_path(tmp_path: Path, layout: str, chunk: int) -> None:
    path = _write(tmp_path / "edge.json", _edge_file(), **LAYOUTS[layout])
    for names in (None, ["dog", "cat"]):
        _assert_same(_old(path, names), stream_records(path, names, chunk=chunk))


def test_key_orders_empty_lists_and_missing_lists(tmp_path: Path) -> None:
    edge = _edge_file()
    variants = [
        {"categories": CATS, "images": edge["images"], "annotations": edge["annotations"]},
        {"images": edge["images"], "categories": CATS, "annotations": []},
        {"images": edge["images"], "categories": CATS},
        {"images": [], "categories": CATS, "annotations": []},
        {"images": edge["images"]},  # an image list: COCO's classes
        {"x": None, "images": edge["images"], "annotations": edge["annotations"][:2],
         "categories": CATS, "y": [[], {}, "\\\"]"]},
    ]  # fmt: skip
    for i, data in enumerate(variants):
        path = _write(tmp_path / f"v{i}.json", data)
        for chunk in (5, 4 * 2**20):
            _assert_same(_old(path, None), stream_records(path, None, chunk=chunk))


def test_a_generated_file_equals_the_whole_file_path(tmp_path: Path) -> None:
    ann_file, _ = write_coco_scale(str(tmp_path), n_images=120, seed=11)
    for names in (None, ["person", "car", "dog"]):
        _assert_same(_old(ann_file, names), stream_records(ann_file, names, chunk=1000))


BROKEN = {
    "truncated": '{"images": [{"id": 1, "file_name": "a", "height": 2, "width": 2}',
    "extra data": '{"images": []} []',
    "bad token": '{"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": x}]}',
    "not an object": "[1, 2]",
    "images not a list": '{"images": {}}',
    "no images": '{"annotations": []}',
    "an element not an object": '{"images": [1]}',
    "a missing key": '{"images": [{"id": 1, "height": 2, "width": 2}]}',
    "annotations null": '{"images": [], "annotations": null}',
    "bom": '\ufeff{"images": []}',
    "no categories": '{"images": [], "annotations": []}',
    "empty categories": '{"images": [], "annotations": [], "categories": []}',
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_give_the_whole_file_paths_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(BROKEN[case], encoding="utf-8")
    with pytest.raises(DatasetError) as expected:
        _old(str(path), None)
    with pytest.raises(DatasetError) as got:
        build_records(str(path), None)
    assert str(got.value) == str(expected.value) and "\n" not in str(got.value)


def test_invalid_utf8_gives_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"images": [{"id": 1, "file_name": "\xe9", "height": 2, "width": 2}]}')
    with pytest.raises(NotStreamedError):
        stream_records(str(path), None)
    with pytest.raises(DatasetError) as expected:
        _old(str(path), None)
    with pytest.raises(DatasetError) as got:
        build_records(str(path), None)
    assert str(got.value) == str(expected.value)


def _outcome(build: Any) -> Any:
    try:
        return build()
    except DatasetError as e:
        return str(e)


def test_files_left_to_json_give_its_result(tmp_path: Path) -> None:
    """A repeated top-level key (json keeps the last) or polygon values that are not
    numbers: streaming declines, the whole-file path decides (a result or an error)."""
    edge = _edge_file()
    repeated = json.dumps(edge)[:-1] + ', "annotations": ' + json.dumps(edge["annotations"][:3])
    texts = {"repeated": repeated + "}"}
    for i, value in enumerate(["7", None, [1]]):
        odd = copy.deepcopy(edge)
        odd["annotations"][1]["segmentation"] = [[1, 2, 3, value, 5, 6]]
        texts[f"value{i}"] = json.dumps(odd)
    for name, text in texts.items():
        path = str(tmp_path / f"{name}.json")
        Path(path).write_text(text)
        with pytest.raises(NotStreamedError):
            stream_records(path, None)
        old = _outcome(lambda p=path: _old(p, None))
        new = _outcome(lambda p=path: build_records(p, None))
        if isinstance(old, str):
            assert new == old, name
        else:
            _assert_same(old, (new[0], dict(new[1]["skipped"]), new[1]))


def test_huge_polygon_ints_are_read_as_json_reads_them(tmp_path: Path) -> None:
    huge = copy.deepcopy(_edge_file())
    huge["annotations"][0]["segmentation"] = [[2**70, 1, 2**63 + 1, 3, -(2**64), 5, 2**53 + 1, 0]]
    path = _write(tmp_path / "huge.json", huge)
    _assert_same(_old(path, None), stream_records(path, None))


def test_a_cached_dataset_of_the_edge_file_equals_an_uncached_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "images").mkdir()
    path = _write(tmp_path / "edge.json", _edge_file(), indent=1)
    with warnings.catch_warnings(record=True) as caught_a:
        warnings.simplefilter("always")
        plain = CocoDataset(path, str(tmp_path / "images"), cache=False)
    with warnings.catch_warnings(record=True) as caught_b:
        warnings.simplefilter("always")
        cached = CocoDataset(path, str(tmp_path / "images"), cache=True)
    assert cached.cache_path is not None and plain.cache_path is None
    assert [str(w.message) for w in caught_a] == [str(w.message) for w in caught_b]
    for name, x in plain.records.arrays().items():
        np.testing.assert_array_equal(x, getattr(cached.records, name), err_msg=name)
    assert plain.skipped == cached.skipped and list(plain.skipped) == list(cached.skipped)
    assert coco_source.stream_records is stream_records


def test_a_cold_start_skips_only_the_payload_digest(tmp_path: Path) -> None:
    """The parent maps its child's fresh cache without hashing its payload again, but
    still refuses a truncated one or one of another file."""
    path = _write(tmp_path / "edge.json", _edge_file())
    records, meta = build_records(path, None)
    sha = file_sha256(path)
    cache = str(tmp_path / "edge.cache")
    write_cache(cache, records, sha, None, meta)
    loaded = read_cache(cache, sha, None, check_payload=False)
    for name, x in records.arrays().items():
        assert x.tobytes() == getattr(loaded.records, name).tobytes(), name
    with pytest.raises(CacheError):
        read_cache(cache, "0" * 64, None, check_payload=False)
    with open(cache, "r+b") as f:
        f.truncate(os.path.getsize(cache) - 64)
    with pytest.raises(CacheError):
        read_cache(cache, sha, None, check_payload=False)
