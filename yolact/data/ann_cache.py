"""A cache of checked annotations beside the annotation file.

The cache of ``instances_train2017.json`` is a file named
``instances_train2017.json.<sha256 of the json, 16 hex>.<key>.yolact-records`` where
``key`` hashes :data:`PARSER_VERSION` and the chosen ``class_names``. It lies in the
annotation file's folder, or in ``$XDG_CACHE_HOME/yolact`` (``~/.cache/yolact``)
where that folder is not writable. A changed json has another sha256, so it is
parsed again; an edit that keeps size and modification time is caught too, which a
size + mtime key would miss (hashing train2017's 448 MB takes about a second).

File layout: ``MAGIC`` (8 bytes), the header length (uint64), the blake2b digest
of the header (32 bytes), the header (json: source sha256, key, metadata, each
array's dtype, shape and offset, the payload length and its blake2b digest), zero
padding to 64 bytes, then the arrays, each at a 64-byte aligned offset. A reader
checks the magic, both digests and the length, so a truncated or damaged file is
never taken for a whole one (it is rebuilt with one warning). Writers write a
temporary file in the same folder and move it into place.

Several processes (DDP ranks) starting together: the first to take an exclusive
``flock`` on the annotation file builds, the others wait for the lock and then load
its cache. Where locks are not supported, each builds and moves its (identical)
file into place; the last move wins.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from yolact.data.records import Records

PARSER_VERSION = 1
MAGIC = b"YLCTREC1"
SUFFIX = ".yolact-records"
AUTO_CACHE_BYTES = 8 * 2**20  # cache=None caches files at least this large
_ALIGN = 64
_CHUNK = 8 * 2**20


class CacheError(ValueError):
    """A cache file is truncated, damaged or of another source."""


@dataclass(frozen=True)
class Cached:
    """A loaded cache: the records and the metadata of the file they came from."""

    records: Records
    meta: dict[str, Any]
    path: str | None = None


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes (read in 8 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(class_names: Sequence[str] | None) -> str:
    """12 hex digits naming the parser version and the class selection."""
    names = None if class_names is None else list(class_names)
    text = json.dumps([PARSER_VERSION, names], ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def cache_folders(ann_file: str) -> list[str]:
    """Where a cache may lie: beside the file, then ``$XDG_CACHE_HOME/yolact``."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [os.path.dirname(os.path.abspath(ann_file)), os.path.join(xdg, "yolact")]


def cache_name(ann_file: str, sha256: str, class_names: Sequence[str] | None) -> str:
    """The cache's file name (no folder)."""
    return f"{os.path.basename(ann_file)}.{sha256[:16]}.{cache_key(class_names)}{SUFFIX}"


def _layout(records: Records) -> tuple[list[dict[str, Any]], int]:
    """Each array's entry of the header (offsets within the payload) and the
    payload length."""
    entries, offset = [], 0
    for name, array in records.arrays().items():
        entries.append(
            {"name": name, "dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        )
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    return entries, offset


def _payload_chunks(records: Records) -> Iterator[bytes | memoryview]:
    for array in records.arrays().values():
        data = np.ascontiguousarray(array)
        yield data.reshape(-1).view(np.uint8).data
        yield b"\0" * (-data.nbytes % _ALIGN)


def write_cache(
    path: str, records: Records, sha256: str, class_names: Sequence[str] | None, meta: dict
) -> None:
    """Write the cache to a temporary file beside ``path`` and move it into place.

    Raises:
        OSError: the folder is missing or not writable (no file is left behind).
    """
    entries, payload_len = _layout(records)
    digest = hashlib.blake2b(digest_size=32)
    for chunk in _payload_chunks(records):
        digest.update(chunk)
    header = json.dumps({
        "version": PARSER_VERSION, "source_sha256": sha256,
        "class_names": None if class_names is None else list(class_names), "meta": meta,
        "arrays": entries, "payload_bytes": payload_len, "payload_blake2b": digest.hexdigest(),
    }).encode("utf-8")  # fmt: skip
    head = MAGIC + len(header).to_bytes(8, "little")
    head += hashlib.blake2b(header, digest_size=32).digest() + header
    head += b"\0" * (-len(head) % _ALIGN)
    folder, base = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for chunk in _payload_chunks(records):
                f.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def read_cache(
    path: str, sha256: str, class_names: Sequence[str] | None, check_payload: bool = True
) -> Cached:
    """Check a cache file whole and map its arrays read-only (shared page cache).

    ``check_payload=False`` skips the payload's digest (header, length, source and
    key are still checked): for a cache this process's own child wrote moments ago
    from the arrays it digested (saves reading 400 MB again at a cold start).

    Raises:
        CacheError: wrong magic, header or payload digest, length, source or key.
        OSError: the file cannot be read.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        fixed = f.read(48)
        if len(fixed) < 48 or fixed[:8] != MAGIC:
            raise CacheError("not a cache file or truncated header")
        header_len = int.from_bytes(fixed[8:16], "little")
        if 48 + header_len > size:
            raise CacheError("truncated header")
        raw = f.read(header_len)
        if hashlib.blake2b(raw, digest_size=32).digest() != fixed[16:48]:
            raise CacheError("damaged header")
        header = json.loads(raw.decode("utf-8"))
        start = 48 + header_len + (-(48 + header_len) % _ALIGN)
        if size != start + header["payload_bytes"]:
            raise CacheError(f"{size} bytes, the header says {start + header['payload_bytes']}")
        names = None if class_names is None else list(class_names)
        if (header["source_sha256"], header["version"], header["class_names"]) != (
            sha256, PARSER_VERSION, names):  # fmt: skip
            raise CacheError("made from another file, parser version or class selection")
        if check_payload:
            f.seek(start)
            digest = hashlib.blake2b(digest_size=32)
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
            if digest.hexdigest() != header["payload_blake2b"]:
                raise CacheError("damaged payload")
    buffer = np.memmap(path, dtype=np.uint8, mode="r")
    arrays: dict[str, np.ndarray] = {}
    for entry in header["arrays"]:
        dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
        offset = start + entry["offset"]
        count = int(np.prod(shape)) * dtype.itemsize
        arrays[entry["name"]] = buffer[offset : offset + count].view(dtype).reshape(shape)
    if set(arrays) != {f.name for f in fields(Records)}:
        raise CacheError("arrays of another layout")
    return Cached(Records(**arrays), header["meta"], path)


def find_cache(
    ann_file: str, sha256: str, class_names: Sequence[str] | None
) -> tuple[Cached | None, list[str]]:
    """The first whole cache in :func:`cache_folders`, and a message per cache file
    found damaged (each is removed, where allowed, to be rebuilt)."""
    problems: list[str] = []
    name = cache_name(ann_file, sha256, class_names)
    for folder in cache_folders(ann_file):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            return read_cache(path, sha256, class_names), problems
        except (CacheError, OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"annotation cache {path} is unusable ({e}): rebuilding it")
            with contextlib.suppress(OSError):
                os.remove(path)
    return None, problems


def save_cache(
    ann_file: str, sha256: str, class_names: Sequence[str] | None, cached: Cached
) -> str | None:
    """Write the cache into the first writable folder of :func:`cache_folders`;
    returns its path, or None when no folder takes it.

    Beside the json, the caches of its earlier contents (same name and key, another
    sha256) are removed; in the shared ``$XDG_CACHE_HOME/yolact`` nothing else is
    touched (another folder's json may have the same name).
    """
    name = cache_name(ann_file, sha256, class_names)
    for i, folder in enumerate(cache_folders(ann_file)):
        try:
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, name)
            write_cache(path, cached.records, sha256, class_names, cached.meta)
        except OSError:
            continue
        if i == 0:
            _remove_stale(folder, os.path.basename(ann_file), name)
        return path
    return None


def _remove_stale(folder: str, base: str, keep: str) -> None:
    """Remove ``<base>.<16 hex>.<key>.yolact-records`` files of the same key but
    ``keep``."""
    key_part = keep[len(base) + 1 + 16 :]  # ".<key>.yolact-records"
    for entry in os.listdir(folder):
        middle = entry[len(base) + 1 : len(base) + 17]
        stale = (
            entry != keep
            and entry.startswith(base + ".")
            and entry[len(base) + 17 :] == key_part
            and len(middle) == 16
            and all(c in "0123456789abcdef" for c in middle)
        )
        if stale:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, entry))


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; a
    no-op elsewhere): after a parse, the process and the workers it forks are then
    as small as after a cached start."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def build_lock(ann_file: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the annotation file (waits for another
    process's); does nothing where the file system has no locks."""
    try:
        fd = os.open(ann_file, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
