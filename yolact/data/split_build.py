"""The ``annotations`` array of a large json decoded by two processes (two cores).

:class:`TwoProcessSplit` is the :class:`~yolact.data.json_stream.Splitter` of
:func:`~yolact.data.stream_records.stream_records`. When the array begins, it
guesses an element boundary about halfway from there to the end of the file (the
first ``{`` past the middle that follows ``}`` and ``,`` and precedes ``"``,
whitespace allowed between) and forks a process that decodes the elements from
there to the array's ``]`` into its own
:class:`~yolact.data.ann_columns.AnnotationColumns`. This process reads on up to
the guess. Only where its own elements end exactly there is the guess an element
boundary: the text from there on is then what the other process read, its columns
come through a pipe as raw buffers, read straight into their arrays (its coordinate
blocks one at a time, each freed once sent), and are appended to these; the result
is that of one process reading the whole. Otherwise (the guess fell inside a
string, a nested value or another array), or where the other process met a problem
(this one then reads those elements itself and meets it), the other process is
killed and this one reads on alone, as without a split.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import re
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from yolact.data.json_stream import read_elements

if TYPE_CHECKING:
    from yolact.data.ann_columns import AnnotationColumns

SPLIT_MIN_BYTES = 16 * 2**20  # from the array's start to the file's end; less: one process
KEY = "annotations"
_WINDOW = 2**20  # bytes searched for a boundary from the middle on
_BOUNDARY = re.compile(rb'\}[ \t\n\r]*,[ \t\n\r]*(\{)[ \t\n\r]*"')
COLUMNS = ("position", "ints", "crowd", "boxes", "ring_counts", "ring_lengths")


def guess_boundary(path: str, start: int, end: int) -> int | None:
    """The offset of the first ``{`` at or past the middle of bytes ``start`` to
    ``end`` of ``path`` that follows ``}`` and ``,`` and precedes ``"`` (json
    whitespace between), searched within 1 MiB; None if there is none."""
    middle = start + (end - start) // 2
    with open(path, "rb") as f:
        f.seek(middle)
        found = _BOUNDARY.search(f.read(_WINDOW))
    return None if found is None else middle + found.start(1)


class TwoProcessSplit:
    """Splits the ``annotations`` of ``path`` with a forked process (see the module
    docstring), appending what it read to ``columns``.

    Args:
        path: the json.
        columns: this process's columns (the other process fills one of its type).
        chunk: characters read at a time.
        min_bytes: no split where the array starts less than this before the end.

    Attributes:
        outcome: ``"none"`` (no split: a small array, no boundary found),
            ``"joined"``, ``"missed"`` (the guess was no element boundary),
            ``"failed"`` (the other process met a problem or died) or ``"ended"``
            (this process stopped first, on an error of its own).
    """

    key = KEY

    def __init__(
        self, path: str, columns: AnnotationColumns, chunk: int, min_bytes: int = SPLIT_MIN_BYTES
    ) -> None:
        self.path, self.columns, self.chunk, self.min_bytes = path, columns, chunk, min_bytes
        self.outcome = "none"
        self._pid: int | None = None
        self._fd: int | None = None  # the pipe's end that reads

    def begin(self, start: int, read: int) -> int | None:
        """Guess a boundary past ``read`` and fork the process that reads from it."""
        if self.outcome != "none":
            return None
        end = os.path.getsize(self.path)
        if end - start < self.min_bytes:
            return None
        cut = guess_boundary(self.path, start, end)
        if cut is None or cut <= read:
            return None
        receive, send = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # Linux: fewer, larger writes
            fcntl.fcntl(send, fcntl.F_SETPIPE_SZ, 2**20)
        pid = os.fork()
        if pid == 0:  # the other process: never returns
            try:
                os.close(receive)
                _read_rest(self.path, cut, self.chunk, type(self.columns)(), send)
            finally:
                os._exit(0)
        os.close(send)
        self._pid, self._fd, self.outcome = pid, receive, "started"
        return cut

    def join(self) -> tuple[int, int] | None:
        """Append the other process's columns: (their annotations, the byte after
        the array); None where it failed."""
        assert self._fd is not None
        try:
            size = np.empty(1, dtype="<i8")
            _read_into(self._fd, size)
            head = np.empty(int(size[0]), dtype=np.uint8)
            _read_into(self._fd, head)
            sent = pickle.loads(head.data)
            if sent is None:
                raise EOFError
            parts = {}
            for name in COLUMNS:
                parts[name] = np.empty(sent["column_bytes"][name], dtype=np.uint8)
                _read_into(self._fd, parts[name])
            blocks = []
            for count in sent["block_sizes"]:
                blocks.append(np.empty(count, dtype=np.float64))
                _read_into(self._fd, blocks[-1])
        except (EOFError, OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError):
            self._end("failed")
            return None
        self._end("joined")
        columns = {name: part.data for name, part in parts.items()}
        self.columns.append_part(sent["count"], columns, blocks, sent["block_first"], sent["odd"])
        return sent["count"], sent["end"]

    def missed(self) -> None:
        """The guess was no boundary: kill the other process."""
        if self.outcome == "started":
            self._end("missed")

    def close(self) -> None:
        """Kill the other process if it still runs (this one stopped on an error)."""
        if self.outcome == "started":
            self._end("ended")

    def _end(self, outcome: str) -> None:
        self.outcome = outcome
        if self._pid is not None:
            if outcome != "joined":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_rest(path: str, start: int, chunk: int, columns: AnnotationColumns, fd: int) -> None:
    """In the forked process: decode the elements from ``start`` into ``columns``
    and write them to ``fd`` (the head's length and pickle, the columns' bytes, then
    each coordinate block), or a head of None on any problem."""
    try:
        count, end = read_elements(path, start, KEY, _adder(columns), chunk)
        columns.finish()
    except Exception:  # noqa: BLE001 (the first process reads these itself and meets it)
        _write_head(fd, None)
        return
    blocks, columns.coord_blocks = columns.coord_blocks, []
    _write_head(fd, {
        "count": count, "end": end, "odd": columns.odd, "block_first": columns.block_first,
        "block_sizes": [block.size for block in blocks],
        "column_bytes": {name: len(getattr(columns, name)) * getattr(columns, name).itemsize
                         for name in COLUMNS},
    })  # fmt: skip
    for name in COLUMNS:
        _write_all(fd, memoryview(getattr(columns, name)))
    blocks.reverse()
    while blocks:
        _write_all(fd, blocks.pop().data)  # each block is freed once written


def _write_head(fd: int, head: Any) -> None:
    data = pickle.dumps(head, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, memoryview(len(data).to_bytes(8, "little") + data))


def _write_all(fd: int, data: memoryview) -> None:
    view = data.cast("B")
    while view:
        view = view[os.write(fd, view) :]


def _read_into(fd: int, array: np.ndarray) -> None:
    """Fill ``array`` from ``fd`` (EOFError if the writer stops first)."""
    view = array.reshape(-1).view(np.uint8).data
    while view:
        got = os.readv(fd, [view])
        if not got:
            raise EOFError
        view = view[got:]


def _adder(columns: AnnotationColumns) -> Callable[[str, list[dict[str, Any]]], None]:
    def add(_key: str, elements: list[dict[str, Any]]) -> None:
        columns.add(elements)

    return add
