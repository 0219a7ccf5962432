"""Writing an exported file (or a slim checkpoint) without ever leaving a bad one.

The new file or folder is written under a temporary name beside the target, in the
same folder (so the final move is a rename on one file system), checked there, and
only then moved into place. Until that move, whatever the target held is untouched;
a failure, a failed check or an interrupt removes the temporary file and leaves it so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable


class WriteError(Exception):
    """An output that cannot be written (one line)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable_folder(folder: str) -> None:
    """Check up front that ``folder`` exists or can be made, and takes new files.

    Nothing is created: the nearest existing folder is probed with a temporary
    file, removed at once.

    Raises:
        WriteError: an existing part of the path is not a folder, or it cannot be
            written (read-only, no permission), in one line.
    """
    folder = os.path.abspath(folder)
    existing = folder
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        where = "not a folder" if existing == folder else f"{existing} is not a folder"
        raise WriteError(f"cannot write to {folder}: {where}")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".yolact-write-check-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise WriteError(f"cannot write to {existing}: {e.strerror or e}") from None


def make_folder(folder: str) -> None:
    """``os.makedirs`` that fails in one line.

    Raises:
        WriteError: it cannot be made.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise WriteError(f"cannot make the folder {folder}: {e.strerror or e}") from None


def _parts(target: str) -> tuple[str, str, str]:
    """``dir/name.ext`` -> (absolute folder, "name", ".ext")."""
    folder, base = os.path.split(os.path.abspath(target))
    stem, ext = os.path.splitext(base)
    return folder, stem, ext


def write_file(
    target: str, write: Callable[[str], None], check: Callable[[str], None] | None = None
) -> None:
    """Write ``target`` by ``write(tmp)`` to ``.name.XXXX.partial.ext`` beside it,
    ``check(tmp)``, then move it over ``target`` (the folder is made if missing).

    Raises:
        WriteError: the folder or the move failed, in one line; whatever ``write``
            or ``check`` raise, after the temporary file is removed.
    """
    folder, stem, ext = _parts(target)
    make_folder(folder)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=f".partial{ext}")
    except OSError as e:
        raise WriteError(f"cannot write to {folder}: {e.strerror or e}") from None
    os.close(fd)
    try:
        write(tmp)
        if check is not None:
            check(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # on disk before it replaces anything
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private
        os.replace(tmp, target)
    except OSError as e:
        raise WriteError(f"cannot write {target}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_folder(
    target: str, write: Callable[[str], None], check: Callable[[str], None] | None = None
) -> None:
    """Write the folder ``target`` by ``write(tmp)`` into ``.name.XXXX.partial`` beside
    it, ``check(tmp)``, then swap it in: the old folder (if any) is renamed aside,
    the new one renamed into place (on failure the old one is put back), and only
    then is the old one removed.

    Raises:
        WriteError: as :func:`write_file`.
    """
    folder, stem, ext = _parts(target)
    make_folder(folder)
    name = stem + ext
    try:
        tmp = tempfile.mkdtemp(dir=folder, prefix=f".{name}.", suffix=".partial")
    except OSError as e:
        raise WriteError(f"cannot write to {folder}: {e.strerror or e}") from None
    try:
        write(tmp)
        if check is not None:
            check(tmp)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private
        _swap_in(tmp, os.path.join(folder, name))
    except OSError as e:
        raise WriteError(f"cannot write {target}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: str, target: str) -> None:
    if not os.path.lexists(target):
        os.rename(new, target)
        return
    aside = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".replaced-")
    old = os.path.join(aside, "old")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def check_replaceable_folder(target: str, allowed: Iterable[str]) -> None:
    """Check that an existing ``target`` is a folder holding only ``allowed`` names
    (so replacing it destroys nothing else).

    Raises:
        WriteError: a file of that name, or a folder with other files, in one line.
    """
    if not os.path.lexists(target):
        return
    if not os.path.isdir(target) or os.path.islink(target):
        raise WriteError(f"{target} exists and is not a folder; give another --output")
    try:
        others = sorted(set(os.listdir(target)) - set(allowed))
    except OSError as e:
        raise WriteError(f"cannot read {target}: {e.strerror or e}") from None
    if others:
        raise WriteError(
            f"{target} holds other files than an exported model ({', '.join(others[:3])}"
            f"{', ...' if len(others) > 3 else ''}); remove them or give another --output"
        )


def check_replaceable_file(target: str) -> None:
    """Check that ``target`` is absent or a file (a folder is not replaced).

    Raises:
        WriteError: in one line.
    """
    if os.path.isdir(target):
        raise WriteError(f"{target} is a folder; give a file name")
