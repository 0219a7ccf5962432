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

A :class:`Splitter` may have the rest of one array decoded elsewhere (another
process, :mod:`.split_build`): it names a guessed element boundary further on, the
reader pauses there, and only where the array's own elements end exactly there are
the elements from there on taken from the splitter; anywhere else the reader reads
on as if nothing had been guessed.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from typing import Any, Protocol

STREAMED = ("images", "annotations", "categories")
_CHUNK = 4 * 2**20
_BATCH = 2**17  # characters of elements decoded at once (measured: faster than 4 MiB)
_WS = " \t\n\r"
_decode = json.JSONDecoder().raw_decode
_ws_end = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]


class NotStreamedError(ValueError):
    """The file is not read here (see the module docstring); ``json`` reads it."""


class Splitter(Protocol):
    """Has the elements of the array ``key`` from a guessed boundary on decoded
    elsewhere (see the module docstring)."""

    key: str

    def begin(self, start: int, read: int) -> int | None:
        """The array ``key`` begins (its first element at or after byte ``start``;
        ``read`` bytes read so far): the byte offset, past ``read``, of a guessed
        element boundary at which to pause, or None for no split."""

    def join(self) -> tuple[int, int] | None:
        """The array's elements end exactly at the guessed boundary: the number of
        elements from there on, handed to the caller's columns, and the byte offset
        after the array's ``]``; None when they are not to be had (read on)."""

    def missed(self) -> None:
        """The guess was no boundary of the array: the reader reads on past it."""


class _Reader:
    """Text of a file (from byte ``start``) decoded chunk by chunk; ``buf[pos:]`` is
    what is left. Reads pause at byte ``stop`` when set (``held``) until
    :meth:`lift`."""

    def __init__(self, path: str, chunk: int, start: int = 0) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._file.seek(start)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.base = 0  # characters dropped before buf
        self.eof = False
        self.read = start  # file offset of the next byte read
        self.stop: int | None = None
        self.held = False
        self.on_lift: Callable[[], None] | None = None

    def close(self) -> None:
        self._file.close()

    def more(self, at_least: int = 0) -> None:
        """Drop what was read and append at least one chunk (``at_least`` chars; less
        where reads pause at ``stop``). Reading past a pause lifts it."""
        if self.held:
            self.lift()
        elif self.eof:
            raise NotStreamedError("the json ends too early")
        parts = [self.buf[self.pos :]]
        self.base += self.pos
        got = 0
        while not self.eof and not self.held and (got == 0 or got < at_least):
            size = max(self.chunk, at_least)
            if self.stop is not None:
                size = min(size, self.stop - self.read)
            data = self._file.read(size)
            self.read += len(data)
            try:
                text = self._utf8.decode(data, final=not data)
            except UnicodeDecodeError as e:
                raise NotStreamedError(str(e)) from e
            self.eof = not data
            self.held = self.read == self.stop
            parts.append(text)
            got += len(text)
        self.buf, self.pos = "".join(parts), 0

    def lift(self) -> None:
        """Read on past ``stop`` (telling ``on_lift``)."""
        self.stop, self.held = None, False
        if self.on_lift is not None:
            self.on_lift()

    def at_stop(self) -> bool:
        """Whether only whitespace is left before a pause."""
        return self.held and _ws_end(self.buf, self.pos).end() == len(self.buf)

    def byte_pos(self) -> int:
        """The file offset of ``pos``."""
        pending = len(self._utf8.getstate()[0])
        return self.read - pending - len(self.buf[self.pos :].encode("utf-8"))

    def jump(self, offset: int) -> None:
        """Go on reading at byte ``offset`` (a character's first byte)."""
        self._file.seek(offset)
        self._utf8.reset()
        self.read, self.base = offset, self.base + len(self.buf)
        self.buf, self.pos, self.eof, self.stop, self.held = "", 0, False, None, False

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
    path: str,
    on_elements: Callable[[str, list[Any]], None],
    chunk: int = _CHUNK,
    splitter: Splitter | None = None,
) -> dict[str, int]:
    """Read ``path``, calling ``on_elements(key, elements)`` with the elements of the
    top-level ``images``, ``annotations`` and ``categories`` arrays, a list at a
    time, in file order (each element a dict); with a ``splitter``, those of its
    array from its boundary on may go to it instead (see :class:`Splitter`).

    Returns:
        The length of each of those arrays that the file has.

    Raises:
        NotStreamedError: see the module docstring.
        OSError: the file cannot be read.
    """
    reader = _Reader(path, chunk)
    try:
        return _walk(reader, on_elements, splitter)
    finally:
        reader.close()


def read_elements(
    path: str, start: int, key: str, on_elements: Callable[[str, list[Any]], None], chunk: int
) -> tuple[int, int]:
    """Decode the elements of an array from byte ``start`` (an element's first byte)
    to its ``]``, as :func:`stream_coco` would.

    Returns:
        The number of elements and the byte offset after the ``]``.

    Raises:
        NotStreamedError: what is there is not such elements.
    """
    reader = _Reader(path, chunk, start)
    try:
        return _elements(reader, key, on_elements, None), reader.byte_pos()
    finally:
        reader.close()


def _walk(
    reader: _Reader, on_elements: Callable[[str, list[Any]], None], splitter: Splitter | None
) -> dict[str, int]:
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
                counts[key] = _array(reader, key, on_elements, splitter)
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


def _array(
    reader: _Reader,
    key: str,
    on_elements: Callable[[str, list[Any]], None],
    splitter: Splitter | None,
) -> int:
    """Decode the array at ``pos``; returns its length."""
    reader.pos += 1  # "["
    if reader.peek() == "]":
        reader.pos += 1
        return 0
    if splitter is None or key != splitter.key or reader.stop is not None:
        return _elements(reader, key, on_elements, None)
    stop = splitter.begin(reader.byte_pos(), reader.read)
    if stop is None or stop <= reader.read:
        return _elements(reader, key, on_elements, None)
    reader.stop, reader.on_lift = stop, splitter.missed
    count = _elements(reader, key, on_elements, splitter)
    if reader.stop is not None:  # the array ended before the guess
        reader.lift()
    return count


def _elements(
    reader: _Reader,
    key: str,
    on_elements: Callable[[str, list[Any]], None],
    splitter: Splitter | None,
) -> int:
    """Decode the elements from ``pos`` (the first one's) to the array's ``]`` (read
    past it); returns their number.

    Many elements are decoded at once: ``[`` + the text up to a ``},`` + ``]``. When
    that text is valid json, it ends after a whole element (a cut inside a string
    or a nested value leaves it unclosed), so its elements are the file's. Otherwise
    (or near the end of the array) one element is decoded at a time. Where the
    reader pauses right after an element's ``,``, the rest is the splitter's.
    """
    count = 0
    single_until = 0  # after a failed cut: one at a time up to it (linear time); absolute
    while True:
        if splitter is not None and reader.at_stop():
            joined = splitter.join()
            if joined is not None:
                reader.jump(joined[1])
                return count + joined[0]
            reader.lift()
        if reader.peek() != "{":
            raise NotStreamedError(f"an element of {key!r} is not an object")
        if not (reader.eof or reader.held) and len(reader.buf) - reader.pos < reader.chunk // 2:
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
