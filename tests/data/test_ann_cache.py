"""The cache of checked annotations (yolact/data/ann_cache.py): a hit equals a fresh
parse, damaged caches are rebuilt with one warning, a changed file is parsed again,
unwritable folders fall back, and processes starting together parse once (issue 20)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from yolact.data import ann_cache, coco_source
from yolact.data.ann_cache import CacheError, cache_name, file_sha256, read_cache
from yolact.data.coco import CocoDataset
from yolact.data.coco_annotations import DatasetError, DatasetWarning
from yolact.data.coco_scale import write_coco_scale
from yolact.data.records import records_equal

SAMPLE_KEYS = ("image", "boxes", "labels", "masks", "crowd_boxes", "crowd_masks")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src")
    write_coco_scale(str(root), n_images=200, seed=5)
    return root


@pytest.fixture()
def coco(tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the generated set (images are links) and a private XDG cache."""
    shutil.copytree(source, tmp_path / "set", symlinks=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "set"


def _make(root: Path, **kwargs) -> tuple[CocoDataset, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = CocoDataset(
            str(root / "annotations/instances_train2017.json"), str(root / "images"), **kwargs
        )
    return ds, [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]


def _same_dataset(a: CocoDataset, b: CocoDataset) -> None:
    assert records_equal(a.records, b.records)
    assert a.skipped == b.skipped and list(a.skipped) == list(b.skipped)
    assert a.image_ids == b.image_ids and a.class_names == b.class_names
    assert a.has_annotations == b.has_annotations
    for i in (0, len(a) // 2, len(a) - 1):
        x, y = a[i], b[i]
        for key in SAMPLE_KEYS:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
        assert x["image_id"] == y["image_id"] and x["file_name"] == y["file_name"]


def _ann(root: Path) -> Path:
    return root / "annotations/instances_train2017.json"


def test_a_hit_equals_a_fresh_parse_and_does_not_parse(
    coco: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh, fresh_warnings = _make(coco, cache=False)
    assert fresh.cache_path is None and os.listdir(coco / "annotations") == [_ann(coco).name]
    built, built_warnings = _make(coco, cache=True)
    name = cache_name(str(_ann(coco)), file_sha256(str(_ann(coco))), None)
    assert built.cache_path == str(coco / "annotations" / name)
    assert sorted(os.listdir(coco / "annotations")) == sorted([_ann(coco).name, name])
    assert isinstance(built.records.coords, np.memmap)  # the built file is served mapped
    assert not isinstance(fresh.records.coords, np.memmap)

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed although the cache is whole")

    monkeypatch.setattr(coco_source, "parse_annotations", no_parse)
    hit, hit_warnings = _make(coco, cache=True)
    assert hit.cache_path == built.cache_path
    assert isinstance(hit.records.coords, np.memmap)  # mapped, not read into the heap
    assert fresh_warnings == built_warnings == hit_warnings and len(hit_warnings) == 1
    _same_dataset(fresh, hit)
    _same_dataset(fresh, built)


def test_class_names_and_skip_empty_with_a_cache(coco: Path) -> None:
    fresh, _ = _make(coco, cache=False, class_names=["dog", "person"], skip_empty=True)
    _make(coco, cache=True, class_names=["dog", "person"], skip_empty=True)
    hit, _ = _make(coco, cache=True, class_names=["dog", "person"], skip_empty=True)
    assert hit.cache_path is not None and "category not in class_names" in hit.skipped
    assert len(os.listdir(coco / "annotations")) == 2
    _same_dataset(fresh, hit)
    everything, _ = _make(coco, cache=True)  # another selection: another cache file
    assert everything.cache_path != hit.cache_path and len(everything) == 200


@pytest.mark.parametrize("damage", ["flip a payload byte", "truncate", "flip a header byte"])
def test_a_damaged_cache_is_rebuilt_with_one_warning(coco: Path, damage: str) -> None:
    fresh, _ = _make(coco, cache=False)
    built, _ = _make(coco, cache=True)
    assert built.cache_path is not None
    path = Path(built.cache_path)
    del built  # its mapping would see the damage done in place below
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 1000]
    else:
        data[len(data) - 100 if damage == "flip a payload byte" else 60] ^= 0xFF
    path.write_bytes(bytes(data))
    sha = file_sha256(str(_ann(coco)))
    with pytest.raises(CacheError):
        read_cache(str(path), sha, None)
    rebuilt, messages = _make(coco, cache=True)
    (message,) = [m for m in messages if "annotation cache" in m]
    assert message.startswith(f"annotation cache {path} is unusable (") and "\n" not in message
    assert message.endswith("): rebuilding it")
    _same_dataset(fresh, rebuilt)
    read_cache(str(path), sha, None)  # whole again
    again, messages = _make(coco, cache=True)
    assert not [m for m in messages if "annotation cache" in m]


def test_a_changed_file_is_parsed_again(coco: Path) -> None:
    first, _ = _make(coco, cache=True)
    ann = _ann(coco)
    text = ann.read_text()
    stat = os.stat(ann)
    # Same size, same modification time, one annotation moved to another category.
    changed = text.replace('"category_id":1,', '"category_id":2,', 1)
    assert len(changed) == len(text) and changed != text
    ann.write_text(changed)
    os.utime(ann, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    other_key, _ = _make(coco, cache=True, class_names=["person"])  # kept: another key
    second, _ = _make(coco, cache=True)
    assert second.cache_path is not None and first.cache_path is not None
    assert second.cache_path != first.cache_path
    assert sorted(os.listdir(coco / "annotations")) == sorted(  # the stale one is gone
        [ann.name, os.path.basename(second.cache_path), os.path.basename(other_key.cache_path)]
    )
    fresh, _ = _make(coco, cache=False)
    _same_dataset(fresh, second)
    assert not np.array_equal(first.records.labels, second.records.labels)


def test_unwritable_folders_fall_back(coco: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = ann_cache.write_cache
    refused: set[str] = {str(coco / "annotations")}

    def write(path: str, *args: object) -> None:
        if os.path.dirname(path) in refused:
            raise PermissionError(13, "Permission denied", path)
        real_write(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ann_cache, "write_cache", write)
    fresh, _ = _make(coco, cache=False)
    built, _ = _make(coco, cache=True)
    xdg = coco.parent / "xdg" / "yolact"
    assert built.cache_path is not None and os.path.dirname(built.cache_path) == str(xdg)
    assert os.listdir(coco / "annotations") == [_ann(coco).name]
    hit, _ = _make(coco, cache=True)
    assert hit.cache_path == built.cache_path
    _same_dataset(fresh, hit)

    shutil.rmtree(xdg)
    refused.add(str(xdg))
    nowhere, messages = _make(coco, cache=True)
    assert nowhere.cache_path is None and len(messages) == 1  # only the skipped summary
    assert not os.listdir(xdg) and os.listdir(coco / "annotations") == [_ann(coco).name]
    _same_dataset(fresh, nowhere)


def test_small_files_are_not_cached_unless_asked(coco: Path) -> None:
    auto, _ = _make(coco)  # about 1 MB: below AUTO_CACHE_BYTES
    assert auto.cache_path is None and os.listdir(coco / "annotations") == [_ann(coco).name]


def _build(ann_file: str, image_dir: str, barrier: object, out: object) -> None:
    barrier.wait(timeout=300)  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = CocoDataset(ann_file, image_dir, cache=True)
    out.put((ds.cache_path, ds.records.labels.tolist()))  # type: ignore[attr-defined]


def _logged(parse: Any, log: Path, line: str | None) -> Any:
    """``parse`` writing ``line`` (or the process id) to ``log`` on each call."""

    def logging_parse(*args: object, **kwargs: object) -> Any:
        with open(log, "a") as f:
            f.write(f"{os.getpid() if line is None else line}\n")
        return parse(*args, **kwargs)

    return logging_parse


def test_processes_starting_together_parse_once(
    coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "parses.log"
    for name in ("parse_annotations", "stream_records"):  # whole or streamed
        monkeypatch.setattr(coco_source, name, _logged(getattr(coco_source, name), log, "parse"))
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    args = (str(_ann(coco)), str(coco / "images"), barrier, out)
    procs = [ctx.Process(target=_build, args=args) for _ in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    assert log.read_text() == "parse\n"
    assert len({path for path, _ in results}) == 1
    assert all(labels == results[0][1] for _, labels in results)


def test_a_cold_build_parses_in_a_child(
    coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "pids.log"
    for name in ("parse_annotations", "stream_records"):  # whole or streamed
        monkeypatch.setattr(coco_source, name, _logged(getattr(coco_source, name), log, None))
    ds, _ = _make(coco, cache=True)
    (pid,) = log.read_text().split()
    assert int(pid) != os.getpid() and ds.cache_path is not None


@pytest.mark.parametrize("cache", [False, True])
def test_errors_are_the_same_with_a_cache(coco: Path, cache: bool) -> None:
    ann, images = str(_ann(coco)), str(coco / "images")
    with pytest.raises(DatasetError) as e:
        CocoDataset(ann, images, class_names=["zebra", "unicorn"], cache=cache)
    assert str(e.value) == f"classes not in the categories of {ann}: ['unicorn']"
    with pytest.raises(DatasetError) as e:
        CocoDataset(ann, str(coco / "nope"), cache=cache)
    assert str(e.value) == f"image directory not found: {coco / 'nope'}"
    broken = coco / "annotations" / "broken.json"
    broken.write_text('{"images": [' + " " * 100)
    with pytest.raises(DatasetError) as e:
        CocoDataset(str(broken), images, cache=cache)
    assert str(e.value).startswith("not a COCO annotation file (invalid json: ")
    assert str(e.value).endswith(f": {broken}") and "\n" not in str(e.value)
    assert sorted(os.listdir(coco / "annotations")) == sorted([_ann(coco).name, broken.name])
