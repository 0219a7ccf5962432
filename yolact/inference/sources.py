"""What :func:`yolact.inference.stream.stream` reads: every kind of source as a frame source.

A source is a path (an image file, a folder of images, a video file), a webcam
index (``0`` or ``"0"``), a stream URL (``rtsp://``, ``http://``), an opened
:class:`~yolact.io.sources.VideoSource` or :class:`ImageFiles`, or any iterable of
BGR frames. :func:`open_source` turns each into an object a
:class:`~yolact.io.sources.FrameReader` reads on its own thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from yolact.io.images import IMAGE_EXTENSIONS, InputError, list_images, read_image, to_bgr8
from yolact.io.sources import FrameSource, SourceError, VideoSource, parse_source, redact

_END = object()
SourceSpec = Any
"""A path, webcam index, URL, opened source or iterable of frames (see the module doc)."""


@dataclass(frozen=True)
class Skipped:
    """An image of a folder that could not be read: it takes its place in the numbering."""

    path: str
    error: InputError


class ImageFiles:
    """Image files read in order: a folder's images (sorted) or one image.

    An unreadable image of a folder is returned as :class:`Skipped`; that of a
    single image ends the run with its error.

    Args:
        files: the image paths.
        name: what messages call the source.
        skip_unreadable: return :class:`Skipped` for an unreadable image instead of failing.
        all_files: the whole listing the files were taken from (default: ``files``).
    """

    kind = "images"
    is_live = False
    fps: float | None = None

    def __init__(
        self,
        files: list[str],
        name: str,
        skip_unreadable: bool = True,
        all_files: list[str] | None = None,
    ) -> None:
        self.files = list(files)
        self.all_files = list(all_files) if all_files is not None else self.files
        self.name = redact(name)
        self.skip_unreadable = skip_unreadable
        self._next = 0

    @classmethod
    def folder(cls, path: str, max_images: int = -1) -> ImageFiles:
        """The images of ``path``, sorted by name; the first ``max_images`` (-1: all).

        Raises:
            InputError: not a folder, or no image in it.
        """
        files = list_images(path)
        if not files:
            raise InputError(f"no images in {path} (looked for {', '.join(IMAGE_EXTENSIONS)})")
        return cls(files if max_images < 0 else files[:max_images], path, all_files=files)

    @property
    def frame_count(self) -> int:
        """How many images will be read."""
        return len(self.files)

    def read(self) -> np.ndarray | Skipped | None:
        """The next image as BGR uint8, a :class:`Skipped`, or None after the last."""
        if self._next >= len(self.files):
            return None
        path = self.files[self._next]
        self._next += 1
        try:
            return read_image(path)
        except InputError as err:
            if self.skip_unreadable:
                return Skipped(path, err)
            raise SourceError(str(err)) from None

    def close(self) -> None:
        """Read nothing more."""
        self._next = len(self.files)


class FrameIterable:
    """Frames from any iterable (a list, a generator, a camera SDK), converted to BGR uint8.

    Every frame is read, in order (not live) unless ``live`` is set, in which case a
    slow consumer gets only the newest frame.
    """

    kind = "frames"
    fps: float | None = None
    frame_count: int | None = None

    def __init__(self, frames: Iterable[Any], name: str = "frames", live: bool = False) -> None:
        self.name = name
        self._live = live
        self._frames: Iterator[Any] | None = iter(frames)
        self._index = 0
        if isinstance(frames, (list, tuple)):
            self.frame_count = len(frames)

    @property
    def is_live(self) -> bool:
        """Whether stale frames may be dropped."""
        return self._live

    def read(self) -> np.ndarray | None:
        """The next frame as BGR uint8 [H, W, 3]; None at the end.

        Raises:
            SourceError: a frame that is not an image (the message names its index).
        """
        if self._frames is None:
            return None
        frame = next(self._frames, _END)
        if frame is _END:
            self._frames = None
            return None
        self._index += 1
        try:
            return to_bgr8(frame, f"{self.name}[{self._index - 1}]")
        except InputError as err:
            raise SourceError(str(err)) from None

    def close(self) -> None:
        """Read nothing more (a generator is closed)."""
        frames, self._frames = self._frames, None
        close = getattr(frames, "close", None)
        if callable(close):
            close()


def _is_spec(item: object) -> bool:
    """Whether ``item`` is one source (a path, index, URL, opened source or iterable of
    frames) rather than a frame."""
    if isinstance(item, np.ndarray):
        return False
    kinds = (str, int, os.PathLike, VideoSource, ImageFiles, FrameIterable, Iterable)
    return isinstance(item, kinds)


def split_sources(source: SourceSpec) -> list[SourceSpec]:
    """One source, or a list of them: a list or tuple whose items are all sources (a
    list of arrays is one source: its frames)."""
    if isinstance(source, (list, tuple)) and source and all(_is_spec(s) for s in source):
        return list(source)
    return [source]


def open_source(source: SourceSpec) -> FrameSource:
    """The frame source for one source spec (see the module doc); opened now, so a
    missing file, an empty folder or a stream that does not answer fails here.

    Raises:
        InputError: the source cannot be used (one line).
    """
    if isinstance(source, (VideoSource, ImageFiles, FrameIterable)):
        return source
    if isinstance(source, bool):
        raise InputError(f"not a video source: {source!r}")
    if isinstance(source, int):
        return VideoSource.open(str(source))
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str):
        kind, target = parse_source(source)
        path = os.path.expanduser(str(target))
        if kind == "file" and os.path.isdir(path):
            return ImageFiles.folder(path)
        if kind == "file" and path.lower().endswith(IMAGE_EXTENSIONS):
            return ImageFiles([path], path, skip_unreadable=False)
        return VideoSource.open(source)
    if isinstance(source, np.ndarray):
        return FrameIterable([source], "image")
    if isinstance(source, Iterable):
        return FrameIterable(source)
    kind_name = type(source).__name__
    raise InputError(f"not a source (a path, webcam index, URL or iterable of frames): {kind_name}")
