"""The JSON-lines output of a batch run: resumed, flushed line by line.

A run appends one line per image and flushes it, so a crash or a signal loses
at most the line being written. That line has no newline at its end; the next
run finds it, copies the complete lines beside the file, moves the copy over it
(the user's file is never cut in place) and goes on from there. Complete lines
name the images already done (their ``path``), which the next run skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from types import TracebackType
from typing import IO, Any

from yolact.io.outputs import OutputError, check_output_file

CHUNK = 1 << 20


def _scan(path: str) -> tuple[set[str], int, int]:
    """(keys of the complete lines, bytes they take, bytes of the file).

    Raises:
        OutputError: a complete line that is not a record of this format.
    """
    done: set[str] = set()
    good = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break  # the unfinished last line
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                record = None
            key = record.get("path") if isinstance(record, dict) else None
            if not isinstance(key, str):
                raise OutputError(
                    f"--out {path} is not the output of a predict run (line {number} is not "
                    "a record with a 'path'); give another --out"
                )
            done.add(key)
            good += len(line)
        size = f.seek(0, os.SEEK_END)
    return done, good, size


def _keep_first(path: str, size: int) -> None:
    """Replace ``path`` by its first ``size`` bytes: written beside, then moved."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            left = size
            while left:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(f"{path} shrank while it was copied")
                out.write(chunk)
                left -= len(chunk)
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def resume(path: str) -> tuple[set[str], int]:
    """Get ``path`` ready to be appended to.

    Returns:
        (the keys of the images it holds, the bytes of an unfinished last line
        that were dropped).

    Raises:
        OutputError: a folder, an unwritable place, a file that is not a predict
            output, or a failed repair, in one line; the file is then as it was.
    """
    check_output_file(path, f"--out {path}")
    if not os.path.exists(path):
        return set(), 0
    try:
        done, good, size = _scan(path)
        if good < size:
            _keep_first(path, good)
    except OSError as e:
        raise OutputError(f"cannot resume --out {path}: {e.strerror or e}") from None
    return done, size - good


class LineWriter:
    """Appends records to a JSON-lines file, one flushed line at a time.

    Used as a context manager (the file is opened on entry, closed on exit).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines = 0
        self._file: IO[str] | None = None

    def __enter__(self) -> LineWriter:
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed on exit)
        return self

    def write(self, line: str) -> None:
        """Append one line (ending in a newline) and flush it to the OS."""
        assert self._file is not None, "use LineWriter in a with block"
        self._file.write(line)
        self._file.flush()
        self.lines += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_records(path: str) -> list[dict[str, Any]]:
    """The complete records of a JSON-lines file (an unfinished last line left out)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n"):
                records.append(json.loads(line))
    return records
