"""A COCO json read piece by piece, never held whole.

:func:`stream_coco` reads the file in chunks and hands each element of the top-level
``images``, ``annotations`` and ``categories`` arrays to a callback as soon as it is
decoded (``json``'s C scanner, ``JSONDecoder.raw_decode``), so the caller can pack
it and drop it. Any layout is read: keys in any order, whitespace anywhere, extra
keys (decoded and dropped).

It reads only what it can read exactly as ``json.load`` does. Anything else raises
:class:`NotStreamedError`: invalid json (or utf-8), a top-level value that is not an
object, a key listed twice at the top level (``json`` keeps the last), one of the
three arrays that is not an array or holds a non-object. The caller then parses the
file whole with :func:`~yolact.data.coco_annotations.parse_annotations`, which
gives the usual one-line error, or the same result.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from typing import Any

STREAMED = ("images", "annotations", "categories")
_CHUNK = 4 * 2**20
_BATCH = 2**17  # characters of elements decoded at once (measured: faster than 4 MiB)
_WS = " \t\n\r"
_decode = json.JSONDecoder().raw_decode
_ws_end = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]


class NotStreamedError(ValueError):
    """The file is not read here (see the module docstring); ``json`` reads it."""


class _Reader:
    """Text of a file decoded chunk by chunk; ``buf[pos:]`` is what is left."""

    def __init__(self, path: str, chunk: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.base = 0  # characters dropped before buf
        self.eof = False

    def close(self) -> None:
        self._file.close()

    def more(self, at_least: int = 0) -> None:
        """Drop what was read and append at least one chunk (``at_least`` chars)."""
        if self.eof:
            raise NotStreamedError("the json ends too early")
        parts = [self.buf[self.pos :]]
        self.base += self.pos
        got = 0
        while not self.eof and (got == 0 or got < at_least):
            data = self._file.read(max(self.chunk, at_least))
            try:
                text = self._utf8.decode(data, final=not data)
            except UnicodeDecodeError as e:
                raise NotStreamedError(str(e)) from e
            self.eof = not data
            parts.append(text)
            got += len(text)
        self.buf, self.pos = "".join(parts), 0

    def peek(self) -> str:
        """The next character that is not json whitespace ('' at the end)."""
        while True:
            self.pos = _ws_end(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self.more()

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise NotStreamedError(f"expected {char!r}")
        self.pos += 1

    def value(self) -> Any:
        """The json value at ``pos`` (reads on until it is whole)."""
        self.peek()
        failures = 0
        while True:
            try:
                value, end = _decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.eof:
                    raise NotStreamedError(str(e)) from e
                failures += 1
                self.more(at_least=(len(self.buf) - self.pos) * failures)
                continue
            if end < len(self.buf) or self.eof:  # a number may go on in the next chunk
                self.pos = end
                return value
            self.more()


def stream_coco(
    path: str, on_elements: Callable[[str, list[Any]], None], chunk: int = _CHUNK
) -> dict[str, int]:
    """Read ``path``, calling ``on_elements(key, elements)`` with the elements of the
    top-level ``images``, ``annotations`` and ``categories`` arrays, a list at a
    time, in file order (each element a dict).

    Returns:
        The length of each of those arrays that the file has.

    Raises:
        NotStreamedError: see the module docstring.
        OSError: the file cannot be read.
    """
    reader = _Reader(path, chunk)
    try:
        return _walk(reader, on_elements)
    finally:
        reader.close()


def _walk(reader: _Reader, on_elements: Callable[[str, list[Any]], None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    seen: set[str] = set()
    reader.expect("{")
    if reader.peek() == "}":
        reader.pos += 1
    else:
        while True:
            if reader.peek() != '"':
                raise NotStreamedError("expected a key")
            key = reader.value()
            if key in seen:
                raise NotStreamedError(f"the key {key!r} is listed twice")
            seen.add(key)
            reader.expect(":")
            if key in STREAMED:
                if reader.peek() != "[":
                    raise NotStreamedError(f"{key!r} is not a list")
                counts[key] = _array(reader, key, on_elements)
            else:
                reader.value()
            char = reader.peek()
            reader.pos += 1
            if char == "}":
                break
            if char != ",":
                raise NotStreamedError("expected ',' or '}'")
    if reader.peek() != "":
        raise NotStreamedError("extra data after the json")
    return counts


def _batch_end(reader: _Reader) -> int:
    """A position after a ``}`` followed (after whitespace) by ``,``, about
    :data:`_BATCH` characters on (found among the last few ``}`` before); -1 if none."""
    buf, end = reader.buf, min(len(reader.buf), reader.pos + _BATCH)
    for _ in range(8):
        end = buf.rfind("}", reader.pos, end)
        if end < 0:
            return -1
        after = _ws_end(buf, end + 1).end()
        if after < len(buf) and buf[after] == ",":
            return end + 1
    return -1


def _array(reader: _Reader, key: str, on_elements: Callable[[str, list[Any]], None]) -> int:
    """Decode the array at ``pos``; returns its length.

    Many elements are decoded at once: ``[`` + the text up to a ``},`` + ``]``. When
    that text is valid json, it ends after a whole element (a cut inside a string
    or a nested value leaves it unclosed), so its elements are the file's. Otherwise
    (or near the end of the array) one element is decoded at a time.
    """
    reader.pos += 1  # "["
    count = 0
    if reader.peek() == "]":
        reader.pos += 1
        return 0
    single_until = 0  # after a failed cut: one at a time up to it (linear time); absolute
    while True:
        if reader.peek() != "{":
            raise NotStreamedError(f"an element of {key!r} is not an object")
        if not reader.eof and len(reader.buf) - reader.pos < reader.chunk // 2:
            reader.more()
        cut = _batch_end(reader) if reader.base + reader.pos >= single_until else -1
        elements = None
        if cut > reader.pos:
            try:
                # A "]" inside closes the array itself: its elements come up to there.
                elements, end = _decode("[" + reader.buf[reader.pos : cut] + "]")
            except json.JSONDecodeError:
                single_until = reader.base + cut
        if elements is not None and all(type(e) is dict for e in elements):
            reader.pos += end - 2 if end < cut - reader.pos + 2 else cut - reader.pos
        else:
            elements = [reader.value()]
            if type(elements[0]) is not dict:
                raise NotStreamedError(f"an element of {key!r} is not an object")
        on_elements(key, elements)
        count += len(elements)
        char = reader.peek()
        reader.pos += 1
        if char == "]":
            return count
        if char != ",":
            raise NotStreamedError("expected ',' or ']'")
