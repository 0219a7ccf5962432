"""Where :class:`yolact.data.coco.CocoDataset` gets its checked records from: the
json (parsed, checked and packed) or a whole cache of them (:mod:`.ann_cache`).

The dataset calls the steps in the order its messages come in: the file's errors,
then the image folder's, the empty-list warnings, the category errors, and the
skipped-annotation summary, the same with or without a cache.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import warnings
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from yolact.data.ann_cache import (
    AUTO_CACHE_BYTES,
    Cached,
    CacheError,
    build_lock,
    file_sha256,
    find_cache,
    read_cache,
    release_free_memory,
    save_cache,
)
from yolact.data.coco_annotations import (
    Categories,
    DatasetError,
    DatasetWarning,
    ImageIndex,
    choose_categories,
    file_categories,
    parse_annotations,
    validate,
)
from yolact.data.records import Records, pack
from yolact.data.stream_records import stream_records


def wants_cache(ann_file: str, cache: bool | None) -> bool:
    """``cache`` itself, or with None whether the file is at least
    :data:`~yolact.data.ann_cache.AUTO_CACHE_BYTES` large."""
    if cache is not None or not os.path.isfile(ann_file):
        return bool(cache) and os.path.isfile(ann_file)
    return os.path.getsize(ann_file) >= AUTO_CACHE_BYTES


class AnnotationSource:
    """The annotation file, parsed, or its cache, loaded.

    Args:
        ann_file: the COCO json.
        image_dir: its images (a missing folder is an error: no cache is built).
        class_names: the chosen classes (part of the cache's key).
        cache: True to use and write a cache, False never, None for files of at
            least 8 MiB.
        stack: holds the build lock (released when the caller's ``with`` ends).

    Raises:
        DatasetError: the file is missing, unreadable or not COCO-shaped.
    """

    def __init__(
        self,
        ann_file: str,
        image_dir: str,
        class_names: Sequence[str] | None,
        cache: bool | None,
        stack: contextlib.ExitStack,
    ) -> None:
        self.ann_file = ann_file
        self.class_names = None if class_names is None else list(class_names)
        self.cache_path: str | None = None
        self.sha256: str | None = None
        self.cached: Cached | None = None
        self.data: dict[str, Any] | None = None
        if wants_cache(ann_file, cache):
            try:
                self.sha256 = file_sha256(ann_file)
            except OSError:
                self.sha256 = None  # parse_annotations says why
        if self.sha256 is not None:
            self.cached = self._find()
            if self.cached is None:
                stack.enter_context(build_lock(ann_file))
                self.cached = self._find()  # built by another process while we waited
            if self.cached is None and os.path.isdir(image_dir):  # else no cache is left
                self.cached = self._build_in_child()
        if self.cached is None:
            self.data = parse_annotations(ann_file, compact=True)

    def _build_in_child(self) -> Cached | None:
        """Parse, check and cache in a forked child and load its cache: the parse's
        garbage dies with the child, so this process (and the DataLoader workers it
        forks) stays as small as after a cached start. None when the child found a
        problem or wrote no cache (this process then parses, to report the problem
        in the usual order, or to keep the records in memory)."""
        assert self.sha256 is not None
        ctx = multiprocessing.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=_build_cache, args=(self.ann_file, self.sha256, self.class_names, send)
        )
        child.start()
        send.close()
        try:
            path = receive.recv() if receive.poll(None) else None
        except EOFError:  # the child died without a word
            path = None
        child.join()
        receive.close()
        if not isinstance(path, str):
            return None
        with contextlib.suppress(CacheError, OSError):
            cached = read_cache(path, self.sha256, self.class_names, check_payload=False)
            self.cache_path = path
            return cached
        return None

    def _find(self) -> Cached | None:
        assert self.sha256 is not None
        cached, problems = find_cache(self.ann_file, self.sha256, self.class_names)
        for message in problems:
            warnings.warn(message, DatasetWarning, stacklevel=4)
        if cached is not None:
            self.cache_path = cached.path
        return cached

    @property
    def has_annotations(self) -> bool:
        if self.cached is not None:
            return bool(self.cached.meta["has_annotations"])
        assert self.data is not None
        return "annotations" in self.data

    def lists_stub(self) -> dict[str, Any]:
        """A dict whose ``images`` and ``annotations`` are empty where the file's are
        (for :func:`~yolact.data.coco_annotations.empty_list_warnings`)."""
        if self.cached is None:
            assert self.data is not None
            return self.data
        meta = self.cached.meta
        stub: dict[str, Any] = {"images": [None] * (not meta["images_empty"])}
        if meta["has_annotations"]:
            stub["annotations"] = [None] * (not meta["annotations_empty"])
        return stub

    def categories(self) -> list[dict[str, Any]]:
        """The file's categories sorted by id (see ``file_categories``)."""
        if self.cached is not None:
            return [dict(c) for c in self.cached.meta["categories"]]
        assert self.data is not None
        return file_categories(self.data, self.ann_file)

    def checked(self, categories: Categories) -> tuple[Records, dict[str, int]]:
        """The records and the skipped counts per reason; a parsed file is checked,
        packed, dropped and (when caching) cached."""
        if self.cached is not None:
            return self.cached.records, dict(self.cached.meta["skipped"])
        data, self.data = self.data, None
        assert data is not None
        records, skipped, meta = _check_and_pack(data, categories, self.ann_file)
        del data
        self.cached = Cached(records, meta)
        if self.sha256 is not None:
            self.cache_path = save_cache(self.ann_file, self.sha256, self.class_names, self.cached)
        if self.cache_path is not None:
            # Serve the mapped file, as a later start does: forked workers then share
            # the page cache instead of the heap (whose freed parse memory they would
            # copy as they allocate into it).
            with contextlib.suppress(CacheError, OSError):
                assert self.sha256 is not None
                self.cached = read_cache(self.cache_path, self.sha256, self.class_names)
                records = self.cached.records
        release_free_memory()
        return records, skipped


def _check_and_pack(
    data: dict[str, Any], categories: Categories, ann_file: str
) -> tuple[Records, dict[str, int], dict[str, Any]]:
    """Validate and pack a parsed file: its records, skipped counts and the metadata
    a cache keeps."""
    index = ImageIndex(data)
    entries, skipped = validate(index, data, categories)
    try:
        records = pack(index.imgs.values(), entries)
    except ValueError as e:
        raise DatasetError(f"not a COCO annotation file ({e}): {ann_file}") from e
    meta = {
        "has_annotations": "annotations" in data,
        "images_empty": not data["images"],
        "annotations_empty": not data.get("annotations"),
        "categories": [{"id": c["id"], "name": c["name"]} for c in file_categories(data, ann_file)],
        "skipped": list(skipped.items()),
    }
    return records, skipped, meta


def build_records(
    ann_file: str, class_names: Sequence[str] | None
) -> tuple[Records, dict[str, Any]]:
    """The checked records of ``ann_file`` and the metadata a cache keeps: read piece
    by piece (:func:`~yolact.data.stream_records.stream_records`), or whole where the
    streaming reader leaves the file to ``json`` (whose errors then propagate)."""
    try:
        records, _, meta = stream_records(ann_file, class_names)
        return records, meta
    except DatasetError:  # of the categories, read after the whole file: json's too
        raise
    except Exception:  # noqa: BLE001 (the whole-file path gives the result or the error)
        release_free_memory()
    data = parse_annotations(ann_file, compact=True)
    categories = choose_categories(file_categories(data, ann_file), class_names, ann_file)
    records, _, meta = _check_and_pack(data, categories, ann_file)
    return records, meta


def _build_cache(
    ann_file: str, sha256: str, class_names: list[str] | None, send: Connection
) -> None:
    """In the forked child: parse, check, pack and cache; send the cache's path (None
    on any problem, which the parent then meets itself)."""
    path = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records, meta = build_records(ann_file, class_names)
            path = save_cache(ann_file, sha256, class_names, Cached(records, meta))
    except Exception:  # noqa: BLE001 (the parent parses again and reports it)
        path = None
    send.send(path)
    send.close()
