"""What every frame source shares: its one-line error, its protocol, one-line messages.

They live apart from :mod:`yolact.io.sources` so that :mod:`yolact.io.reader` can
use them without importing it; :mod:`yolact.io.sources` re-exports them.
"""

from __future__ import annotations

from typing import Any, Protocol

from yolact.io.images import InputError

__all__ = ["FrameSource", "SourceError", "one_line"]


class SourceError(InputError):
    """A video source or sink that cannot be used; the message is one line."""


class FrameSource(Protocol):
    """What a :class:`FrameReader` reads: a video source, an image folder, frames in memory.

    ``read`` returns the next frame (or a marker the consumer understands, such as
    an image that was skipped), None at the end.
    """

    name: str

    @property
    def is_live(self) -> bool: ...

    def read(self) -> Any: ...

    def close(self) -> None: ...


def one_line(err: BaseException | str) -> str:
    """The first non-empty line of an exception message (or its type name)."""
    for line in str(err).splitlines():
        if line.strip():
            return line.strip()
    return type(err).__name__ if isinstance(err, BaseException) else ""
