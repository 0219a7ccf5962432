"""The annotations array read by two processes (yolact/data/split_build.py) gives
the records, skipped counts, metadata and cache bytes of one process reading the
whole file; a guessed boundary that is not one (inside a string, a nested value,
another array) or a second process that fails leaves the one-process result
(issue 20)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from test_json_stream import LAYOUTS, _assert_same, _old, _write  # the shared helpers

from yolact.data import split_build
from yolact.data.ann_cache import write_cache
from yolact.data.coco_scale import write_coco_scale
from yolact.data.json_stream import NotStreamedError
from yolact.data.split_build import guess_boundary
from yolact.data.stream_records import stream_records

CATS = [{"id": 1, "name": "cat"}, {"id": 3, "name": "d\u00f6g \U0001f600"}]
IMAGES = [
    {"id": 1, "file_name": "a\u00e9.jpg", "height": 40, "width": 50},
    {"id": 2, "file_name": "b.jpg", "height": 60, "width": 30},
]


def _ann(i: int, **kw: Any) -> dict[str, Any]:
    ann = {"id": i, "image_id": 1 + i % 2, "category_id": (1, 3, 9)[i % 3],
           "segmentation": [[10, 10, 30, 10.5 + i, 30, 30.25, 10, 30]],
           "bbox": [10, 10, 20 - i % 5, 20.25], "iscrowd": int(i % 7 == 0)}  # fmt: skip
    ann.update(kw)
    return ann


def _many(n: int) -> list[dict[str, Any]]:
    """Annotations of the usual form and some odd ones (RLE, no box, short polygon),
    with non-ASCII text around (bytes and characters differ)."""
    anns = [_ann(i, note="\u00e9\U0001f600" * (i % 3)) for i in range(1, n + 1)]
    anns[3]["segmentation"] = {"size": [40, 50], "counts": [5, 10, 1985]}
    anns[n // 2]["bbox"] = None
    anns[-4]["segmentation"] = [[1, 2, 3, 4]]
    return anns


def _split(path: str, chunk: int, names: list[str] | None = None) -> tuple[tuple, str]:
    log: list[str] = []
    got = stream_records(path, names, chunk=chunk, split_min_bytes=0, split_log=log)
    return got, log[0]


def test_a_generated_file_split_in_two_equals_one_process(tmp_path: Path) -> None:
    ann_file, _ = write_coco_scale(str(tmp_path), n_images=300, seed=3)
    for names in (None, ["person", "car", "dog"]):
        for chunk in (1000, 2**16):
            got, outcome = _split(ann_file, chunk, names)
            assert outcome == "joined"
            _assert_same(_old(ann_file, names), got)


def test_the_cache_bytes_are_those_of_one_process(tmp_path: Path) -> None:
    ann_file, _ = write_coco_scale(str(tmp_path), n_images=200, seed=5)
    (records, _, meta), outcome = _split(ann_file, 4096)
    assert outcome == "joined"
    one, _, one_meta = stream_records(ann_file, None, chunk=4096, split_min_bytes=None)
    write_cache(str(tmp_path / "two"), records, "ab" * 32, None, meta)
    write_cache(str(tmp_path / "one"), one, "ab" * 32, None, one_meta)
    assert (tmp_path / "two").read_bytes() == (tmp_path / "one").read_bytes()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("chunk", [7, 300, 4096])
def test_layouts_and_odd_annotations_split_equal_one_process(
    tmp_path: Path, layout: str, chunk: int
) -> None:
    data = {"images": IMAGES, "annotations": _many(60), "categories": CATS,
            "info": {"x": [{"a": '}, {"b'}]}}  # fmt: skip
    path = _write(tmp_path / "f.json", data, **LAYOUTS[layout])
    got, outcome = _split(path, chunk)
    assert outcome == "joined"
    _assert_same(_old(path), got)


def _padded_file(tmp_path: Path, where: str) -> tuple[str, int]:
    """A file whose guessed boundary (``}, {"`` past the middle) is no element
    boundary of the annotations; returns it and the guess."""
    pad = "x" * 20000
    anns = _many(10)
    cats = copy.deepcopy(CATS)
    if where == "string":
        anns[5]["note"] = pad + "}, {"
    elif where == "nested":
        anns[5]["extra"] = [{"k": pad}, {"k": 1}]
    elif where == "category name":
        cats[1]["name"] = pad + "}, {"
    data = {"images": IMAGES, "annotations": anns, "categories": cats}
    path = _write(tmp_path / f"{where}.json", data)
    text = Path(path).read_bytes()
    start = text.index(b'"annotations": [') + len(b'"annotations": [')
    return path, guess_boundary(path, start, len(text)) or -1


@pytest.mark.parametrize("where", ["string", "nested", "category name"])
def test_a_guess_that_is_no_element_boundary_is_dropped(tmp_path: Path, where: str) -> None:
    path, cut = _padded_file(tmp_path, where)
    text = Path(path).read_bytes()
    assert text[cut - 3 : cut + 2] == b'}, {"'
    if where != "nested":  # the guessed "{" is the string's last character
        assert text[cut - 20000 - 3 : cut - 3] == b"x" * 20000
    for chunk in (64, 4096):
        got, outcome = _split(path, chunk)
        assert outcome == "missed"
        _assert_same(_old(path), got)


def _split_error(path: str) -> tuple[str, str]:
    log: list[str] = []
    with pytest.raises((KeyError, NotStreamedError)) as got:
        stream_records(path, None, chunk=512, split_min_bytes=0, split_log=log)
    return f"{type(got.value).__name__}: {got.value}", log[0]


def test_a_problem_in_the_second_half_is_met_as_by_one_process(tmp_path: Path) -> None:
    anns = _many(80)
    del anns[70]["image_id"]
    path = _write(tmp_path / "missing.json", {"images": IMAGES, "annotations": anns})
    with pytest.raises(KeyError) as one:
        stream_records(path, None, chunk=512, split_min_bytes=None)
    assert _split_error(path) == (f"KeyError: {one.value}", "failed")
    anns = _many(80)
    anns[70]["segmentation"] = [[1, 2, "3", 4, 5, 6]]
    path = _write(tmp_path / "string.json", {"images": IMAGES, "annotations": anns})
    message, outcome = _split_error(path)
    assert message.startswith("NotStreamedError: a polygon value") and outcome == "failed"


def test_a_second_process_that_dies_leaves_the_one_process_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {"annotations": _many(80), "categories": CATS, "images": IMAGES}
    path = _write(tmp_path / "f.json", data)
    monkeypatch.setattr(split_build, "_read_rest", lambda *args: os._exit(3))
    got, outcome = _split(path, 512)
    assert outcome == "failed"
    _assert_same(_old(path), got)


def test_small_files_and_files_read_at_once_are_not_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork() -> int:
        raise AssertionError("forked")

    data = {"images": IMAGES, "annotations": _many(80), "categories": CATS}
    path = _write(tmp_path / "f.json", data)
    monkeypatch.setattr(split_build.os, "fork", no_fork)
    assert split_build.SPLIT_MIN_BYTES == 16 * 2**20
    log: list[str] = []
    got = stream_records(path, None, chunk=512, split_log=log)  # the default minimum
    got2 = stream_records(path, None, split_min_bytes=0, split_log=log)  # all read at once
    assert log == ["none", "none"]
    _assert_same(_old(path), got)
    _assert_same(_old(path), got2)
