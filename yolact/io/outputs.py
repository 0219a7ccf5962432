"""Output places: checked before any work, written beside the target and moved into place.

A run refuses an output that is one of its inputs (whatever spelling reaches it:
``./p.jpg``, an absolute path, ``..``, a symbolic or a hard link) and an output
whose folder cannot be written, before the model is even built. Files are
written under a temporary name in the target's folder and then moved over the
target with ``os.replace``, so a failed write never leaves a partial file
where the user's file was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable

from yolact.io.images import InputError


class OutputError(InputError):
    """An output place that cannot be used (an input, a folder, unwritable); one line."""


def _real(path: str) -> str:
    """The real path of ``path`` (symbolic links resolved), case-folded where the OS does."""
    return os.path.normcase(os.path.realpath(path))


class FileSet:
    """Files to protect (a run's inputs); ``find`` tells whether a path reaches one.

    A path that exists is matched by device and inode (symbolic and hard links,
    any spelling); one that does not yet exist by its real path (the file it
    would create, through any symbolic link on its way). Lookups cost one
    ``stat`` each, however many files the set holds.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self._ids: dict[tuple[int, int], str] = {}
        self._real: dict[str, str] = {}
        for path in paths:
            full = os.path.expanduser(path)
            with contextlib.suppress(OSError):
                st = os.stat(full)
                self._ids.setdefault((st.st_dev, st.st_ino), path)
            self._real.setdefault(_real(full), path)

    def find(self, path: str) -> str | None:
        """The member that ``path`` is the same file as, else None."""
        full = os.path.expanduser(path)
        try:
            st = os.stat(full)
        except OSError:
            return self._real.get(_real(full))
        return self._ids.get((st.st_dev, st.st_ino)) or self._real.get(_real(full))


def same_file(a: str, b: str) -> bool:
    """True when paths ``a`` and ``b`` name the same file (see ``FileSet``)."""
    return FileSet([b]).find(a) is not None


def _nearest_existing(folder: str) -> str:
    """``folder`` or its nearest ancestor that exists (a folder or not)."""
    while not os.path.lexists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def check_folder_writable(folder: str, what: str) -> None:
    """Raise unless files can be created in ``folder`` (or the folders up to it made).

    Args:
        folder: the folder that will hold the output (may not exist yet).
        what: how the message names the output (``--output_json res.json``).

    Raises:
        OutputError: a part of the path is a file, or the nearest existing folder
            is not writable.
    """
    folder = os.path.abspath(os.path.expanduser(folder or "."))
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        raise OutputError(f"{what}: cannot create folder {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: cannot write in folder {existing} (permission denied)")


def check_output_file(path: str, what: str) -> None:
    """Raise unless ``path`` can be written as a file: not a folder, its folder writable.

    Raises:
        OutputError: one line naming ``what`` and the cause.
    """
    full = os.path.expanduser(path)
    if os.path.isdir(full):
        raise OutputError(f"{what}: {path} is a folder, expected a file name")
    check_folder_writable(os.path.dirname(os.path.abspath(full)), what)


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then move it over ``path``.

    The folder is created when missing (also when it was removed since the
    up-front check). A failure leaves ``path`` as it was and
    no temporary file behind.

    Raises:
        OSError: the folder cannot be created or the file cannot be written.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:  # a file where a folder goes
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder) from None
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def rescue_write(path: str, data: bytes) -> str:
    """Save ``data`` that could not be written to ``path`` under a new, unique name.

    Tries ``path``'s folder, then the current folder, then the system's temporary
    folder; never replaces an existing file.

    Returns:
        The path written.

    Raises:
        OSError: no place could be written.
    """
    stem, ext = os.path.splitext(os.path.basename(path))
    folders = [os.path.dirname(os.path.abspath(path))]
    with contextlib.suppress(OSError):  # the current folder may have been removed
        folders.append(os.getcwd())
    folders.append(tempfile.gettempdir())
    error: OSError | None = None
    for folder in dict.fromkeys(folders):
        try:
            fd, saved = tempfile.mkstemp(prefix=f"{stem}.unsaved-", suffix=ext, dir=folder)
        except OSError as e:
            error = e
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(saved, 0o644)
            return saved
        except OSError as e:
            error = e
            with contextlib.suppress(OSError):
                os.remove(saved)
    assert error is not None
    raise error


def write_or_rescue(path: str, data: bytes, what: str) -> str:
    """``atomic_write``, and where that fails ``rescue_write``, said in one line.

    Args:
        path: the requested file.
        data: its content.
        what: how the message names the content ("12 detections of 3 images").

    Returns:
        ``path``, written.

    Raises:
        OutputError: ``path`` could not be written; the message says why and
            where ``data`` was saved instead, or that no place could be written.
    """
    try:
        atomic_write(path, data)
        return path
    except OSError as e:
        reason = e.strerror or str(e)
    try:
        saved = rescue_write(path, data)
    except OSError as e:
        raise OutputError(f"cannot write {path} ({reason}), nor save the {what} anywhere "
                          f"else ({e.strerror or e})") from None  # fmt: skip
    raise OutputError(f"cannot write {path} ({reason}); saved the {what} to {saved}")
