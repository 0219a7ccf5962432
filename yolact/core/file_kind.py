"""What a file is, when ``torch.load`` cannot read it as a checkpoint.

Everything here inspects bytes without running them: pickles are walked with
:mod:`pickletools` (which decodes opcodes and never imports or calls anything),
zip archives are listed with :mod:`zipfile`.
"""

from __future__ import annotations

import io
import os
import pickletools
import zipfile
from dataclasses import dataclass
from typing import IO

# torch.save's own pickles reference only these modules' objects.
_TRUSTED_MODULES = ("torch", "collections")
# The first pickle of torch's legacy (non-zip) format is this number.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_PROBE_BYTES = 4096
_CONTAINERS = {
    "EMPTY_DICT": "dict",
    "DICT": "dict",
    "EMPTY_LIST": "list",
    "LIST": "list",
    "EMPTY_TUPLE": "tuple",
    "TUPLE": "tuple",
    "TUPLE1": "tuple",
    "TUPLE2": "tuple",
    "TUPLE3": "tuple",
    "EMPTY_SET": "set",
    "FROZENSET": "frozenset",
}


@dataclass(frozen=True)
class FileKind:
    """A verdict on a file that is not a readable checkpoint.

    Attributes:
        verdict: ``"code"`` (a pickle that would import objects other than
            torch's: loading it could run arbitrary code), ``"truncated"`` (a
            checkpoint cut short or damaged), ``"other"`` (some other kind of
            file) or ``"unknown"`` (a torch file in which the scan finds
            nothing wrong).
        detail: for "code" up to three of those objects, else what the file is
            ("a text file", "empty", ...).
    """

    verdict: str
    detail: str = ""


def classify(path: str) -> FileKind:
    """Look at ``path``'s bytes and say what kind of file it is."""
    size = os.path.getsize(path)
    if size == 0:
        return FileKind("other", "it is empty")
    with open(path, "rb") as f:
        head = f.read(_PROBE_BYTES)
    if head.startswith(b"PK\x03\x04"):
        return _classify_zip(path)
    if head.startswith(b"\x93NUMPY"):
        return FileKind("other", "it is a NumPy .npy array")
    if head[:1] == b"\x80":
        with open(path, "rb") as f:
            return _classify_pickle_stream(f)
    if head.startswith(b"version https://git-lfs.github.com/spec/"):
        return FileKind("other", "it is a Git LFS pointer; 'git lfs pull' fetches the file")
    if _looks_like_text(head):
        lines = head.decode("utf-8", "replace").strip().splitlines()
        start = lines[0].strip() if lines else ""
        start = start if len(start) <= 40 else start[:37] + "..."
        what = f"it is a text file starting {start!r}" if start else "it is a text file"
        return FileKind("other", what)
    return FileKind("other", "it is binary data of an unknown format")


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the end of the probe.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def _classify_zip(path: str) -> FileKind:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            data = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if not data:
                return FileKind("other", "it is a zip archive not written by torch.save")
            with z.open(data[0]) as f:
                return _classify_pickle_stream(io.BytesIO(f.read()), torch_zip=True)
    except (zipfile.BadZipFile, EOFError, OSError):
        return FileKind("truncated", "an incomplete zip archive")


def _classify_pickle_stream(f: IO[bytes], torch_zip: bool = False) -> FileKind:
    """A pickle file: torch's legacy format (several pickles), a zip's data.pkl or a plain one."""
    first = _scan_pickle(f)
    if first is None:
        return FileKind("truncated", "an incomplete pickle")
    untrusted, top, value = first
    if untrusted:
        return FileKind("code", untrusted)
    if torch_zip:
        return FileKind("unknown")
    if value == _LEGACY_MAGIC:  # then protocol version, system info, the object itself
        for _ in range(3):
            scanned = _scan_pickle(f)
            if scanned is None:
                return FileKind("truncated", "an incomplete legacy PyTorch file")
            if scanned[0]:
                return FileKind("code", scanned[0])
        return FileKind("unknown")
    what = f"a pickled {top}" if top else "a Python pickle"
    return FileKind("other", f"it is {what}, not one written by torch.save")


def _scan_pickle(f: IO[bytes]) -> tuple[str, str, object] | None:
    """Walk one pickle's opcodes.

    Returns:
        ``(the objects it would import other than torch's or "", the name of
        its top-level container or "", its value when it is a single integer
        or None)``; None when the pickle is cut short or malformed.
    """
    strings: list[str] = []
    top, value, found = "", None, []
    first = True
    try:
        for op, arg, _ in pickletools.genops(f):
            name = op.name
            if name in ("PROTO", "FRAME"):
                continue
            if first:
                top = _CONTAINERS.get(name, "")
                if name in ("LONG1", "LONG4", "BININT", "BININT1", "BININT2", "INT", "LONG"):
                    value = arg
                first = False
            if "UNICODE" in name or name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                strings.append(str(arg))
            elif name in ("GLOBAL", "INST"):
                module, _, qualname = str(arg).partition(" ")
                found.append(_untrusted(module, qualname))
            elif name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(_untrusted(strings[-2], strings[-1]))
    except (ValueError, EOFError, TypeError):
        return None
    untrusted = list(dict.fromkeys(n for n in found if n))
    more = f" and {len(untrusted) - 3} more" if len(untrusted) > 3 else ""
    return ", ".join(untrusted[:3]) + more, top, value


def _untrusted(module: str, qualname: str) -> str:
    if module.split(".")[0] in _TRUSTED_MODULES:
        return ""
    return f"{module}.{qualname}"
