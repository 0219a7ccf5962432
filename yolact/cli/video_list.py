"""The sources of ``eval.py --video=SRC1,SRC2,...`` and ``--streams=FILE``.

Each item is ``SRC[:OUT]`` as ``--video`` takes one source (see
:func:`yolact.io.sources.split_in_out`). The comma rule of a ``--video`` list:

* a value whose input part holds a comma and names an existing file or folder is
  one source (what ``--video`` always did);
* otherwise every comma separates two sources, except a comma inside a URL (after
  ``scheme://`` and before the item's ``:OUT``): it stays in the URL unless what
  follows starts a source of its own, that is another ``scheme://`` URL, an
  existing file or folder, or a webcam index (digits) where the comma is not in
  the URL's query (after ``?``, where lists of numbers such as ``640,480`` are
  common, digits stay in the URL).

A ``--streams`` file holds one item per line, taken as written (no comma rule):
blank lines and lines starting with ``#`` are skipped, as are the spaces around
an item. It is the way to give a URL whose comma is followed by an existing path,
or by digits outside its query (or write the comma as ``%2C``), a webcam after a
URL with a query, and an OUT whose name holds a comma.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from yolact.cli.predictors import UsageError
from yolact.io.images import InputError
from yolact.io.sources import SourceError, split_in_out

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True)
class VideoItem:
    """One source of a video run: its input and where its drawing goes.

    Attributes:
        src: a video file, a webcam index or a stream URL.
        out: the drawn video's path, None when not written.
    """

    src: str
    out: str | None


def _input_part(item: str) -> str:
    """The input part of ``item`` (all of it when it has none)."""
    try:
        return split_in_out(item)[0]
    except SourceError:
        return item


def _exists(item: str) -> bool:
    """Whether the input part of ``item`` names an existing file or folder."""
    try:
        src = split_in_out(item)[0]
    except SourceError:
        return False
    return os.path.exists(os.path.expanduser(src))


def _starts_source(piece: str, in_query: bool) -> bool:
    """Whether text after a comma inside a URL begins a source of its own: a URL, an
    existing path, or (outside the URL's query, where lists of numbers are common) a
    webcam index."""
    if _SCHEME.match(piece) or _exists(piece):
        return True
    src = piece.split(":", 1)[0]
    return not in_query and src.isascii() and src.isdigit()


def _in_url(item: str) -> bool:
    """Whether a comma at the end of ``item`` would fall inside a URL's input part."""
    if not _SCHEME.match(item):
        return False
    try:
        return split_in_out(item)[1] is None
    except SourceError:
        return False


def split_video_list(value: str) -> list[str]:
    """The items of a ``--video`` value by the comma rule of this module.

    Raises:
        UsageError: an empty item (``a.mp4,,b.mp4``, a comma at either end).
    """
    if "," in _input_part(value) and _exists(value):
        return [value]
    pieces = value.split(",")
    items = [pieces[0]]
    for piece in pieces[1:]:
        if _in_url(items[-1]) and piece and not _starts_source(piece, "?" in items[-1]):
            items[-1] += "," + piece
        else:
            items.append(piece)
    for number, item in enumerate(items, 1):
        if not item.strip():
            raise UsageError(f"--video: item {number} of {len(items)} is empty in {value!r}")
    return items


def read_streams_file(path: str) -> list[str]:
    """The items of a ``--streams`` file: one a line, blank lines and ``#`` lines skipped.

    Raises:
        InputError: the file is missing, a folder, unreadable or lists no source.
    """
    full = os.path.expanduser(path)
    if os.path.isdir(full):
        raise InputError(f"--streams: expected a text file, got a folder: {path}")
    try:
        with open(full, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError(f"--streams: file not found: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"--streams: {path} is not UTF-8 text") from None
    except OSError as err:
        raise InputError(f"--streams: cannot read {path}: {err.strerror or err}") from None
    items = [line.strip() for line in text.splitlines()]
    items = [item for item in items if item and not item.startswith("#")]
    if not items:
        raise InputError(f"--streams: {path} lists no source (only blank or # lines)")
    return items


def video_items(video: str | None, streams: str | None) -> list[VideoItem]:
    """The sources of a run's ``--video`` or ``--streams`` value, in order.

    Raises:
        UsageError: both flags, or an empty item.
        InputError: a ``--streams`` file that cannot be used, or an item with
            nothing before its ``:OUT``.
    """
    if video and streams:
        raise UsageError("give --video or --streams, not both")
    if streams:
        flag, items = "--streams", read_streams_file(streams)
    elif video:
        flag, items = "--video", split_video_list(video)
    else:
        return []
    found = []
    for item in items:
        try:
            src, out = split_in_out(item)
        except SourceError as err:
            raise InputError(f"{flag}: {err}") from None
        found.append(VideoItem(src, out))
    return found
