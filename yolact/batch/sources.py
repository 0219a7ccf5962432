"""The image list of a batch run: from a glob, a folder, a list file or a COCO JSON,
and the part of it one shard of ``N`` takes.

Every image gets a stable key (the path the run reads it from), an ``image_id``
and a ``file_name``:

- a glob or a folder: the matching image files sorted by path; ``image_id`` is
  the place in that sorted list and ``file_name`` the file's base name (as
  ``eval.py --images DIR:OUT --output_json`` numbers and names a folder's images);
- a list file (``.txt``, one path a line, ``#`` comments): the paths sorted and
  without repeats, relative ones taken from the list file's folder; numbered
  like a glob;
- a COCO JSON: its ``images``, sorted by id; ``image_id`` is the id in the file
  and ``file_name`` its ``file_name``, read from ``image_dir`` (default: the
  JSON's folder).

A shard ``i/N`` takes the images whose key hashes (SHA-1) to ``i`` modulo ``N``:
every job computes the same split from the list alone, with no coordinator, and
adding images to the list moves no other image to another shard.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass

from yolact.io.images import IMAGE_EXTENSIONS, InputError


class SourceError(InputError):
    """A source or shard that cannot be used; one line."""


@dataclass(frozen=True)
class ImageEntry:
    """One image of a run.

    Attributes:
        path: where it is read from; the key a resumed run recognises it by.
        image_id: its COCO id, or its place in the sorted list.
        file_name: the name the results give (base name, or the COCO ``file_name``).
    """

    path: str
    image_id: int
    file_name: str


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0/1`` is the whole list)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, spec: str) -> Shard:
        """``"i/N"`` with ``0 <= i < N``.

        Raises:
            SourceError: anything else, in one line.
        """
        parts = spec.split("/")
        try:
            index, count = (int(p) for p in parts) if len(parts) == 2 else (None, None)
        except ValueError:
            index = count = None
        if index is None or count is None or count < 1 or not 0 <= index < count:
            raise SourceError(f"--shard must be i/N with 0 <= i < N (like 0/4), got {spec!r}")
        return cls(index, count)

    def takes(self, key: str) -> bool:
        """Whether this shard processes the image whose key is ``key``."""
        if self.count == 1:
            return True
        digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, entries: list[ImageEntry]) -> list[ImageEntry]:
        """The entries this shard processes, in order."""
        return [e for e in entries if self.takes(e.path)]


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(path)


def _numbered(paths: list[str]) -> list[ImageEntry]:
    ordered = sorted(set(paths))
    return [ImageEntry(p, i, os.path.basename(p)) for i, p in enumerate(ordered)]


def _from_list(path: str) -> list[str]:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or e
        raise SourceError(f"cannot read the list {path}: {why}") from None
    names = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return [n if os.path.isabs(n) else os.path.normpath(os.path.join(folder, n)) for n in names]


def _from_coco(path: str, image_dir: str | None) -> list[ImageEntry]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise SourceError(f"{path} is not JSON: {str(e).splitlines()[0]}") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise SourceError(f"{path} has no COCO 'images' list")
    root = image_dir if image_dir is not None else os.path.dirname(os.path.abspath(path))
    entries, seen = [], set()
    for i, im in enumerate(images):
        ok = isinstance(im, dict) and isinstance(im.get("file_name"), str)
        image_id = im.get("id") if ok else None
        if not ok or not isinstance(image_id, int) or isinstance(image_id, bool):
            raise SourceError(f"{path}: images[{i}] needs an integer 'id' and a 'file_name'")
        if image_id in seen:
            raise SourceError(f"{path}: image id {image_id} appears twice")
        seen.add(image_id)
        entries.append(ImageEntry(os.path.join(root, im["file_name"]), image_id, im["file_name"]))
    return sorted(entries, key=lambda e: e.image_id)


def list_source(source: str, image_dir: str | None = None) -> list[ImageEntry]:
    """Every image of ``source`` (see the module doc), in the run's order.

    Args:
        source: a glob (``"photos/**/*.jpg"``, ``**`` recursive), a folder, a
            ``.txt`` list of paths or a COCO ``.json``.
        image_dir: the folder a COCO JSON's ``file_name`` is relative to.

    Raises:
        SourceError: no such list, an unreadable list, or no image, in one line.
    """
    if image_dir is not None and not source.lower().endswith(".json"):
        raise SourceError("--image_dir goes with a COCO .json --source")
    if source.lower().endswith(".json"):
        if not os.path.isfile(source):
            raise SourceError(f"no such COCO JSON: {source}")
        entries = _from_coco(source, image_dir)
    elif source.lower().endswith(".txt"):
        if not os.path.isfile(source):
            raise SourceError(f"no such list file: {source}")
        entries = _numbered(_from_list(source))
    elif os.path.isdir(source):
        found = (os.path.join(source, n) for n in os.listdir(source))
        entries = _numbered([p for p in found if _is_image(p)])
    else:
        entries = _numbered([p for p in glob.glob(source, recursive=True) if _is_image(p)])
    if not entries:
        raise SourceError(
            f"no images in {source} (looked for files ending {', '.join(IMAGE_EXTENSIONS)})"
        )
    return entries
