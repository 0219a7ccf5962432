"""A fixed number of frames from an image, a folder or a video (for timing runs)."""

from __future__ import annotations

import sys

import numpy as np

from yolact.io.images import InputError, list_images, read_image
from yolact.io.sources import VideoSource, redact


def repeat_to(frames: list[np.ndarray], count: int) -> list[np.ndarray]:
    """``frames`` repeated in order until there are ``count`` of them."""
    return (frames * (count // max(len(frames), 1) + 1))[:count]


def image_frames(path: str, count: int) -> list[np.ndarray]:
    """One image, ``count`` times."""
    return [read_image(path)] * count


def folder_frames(folder: str, count: int) -> list[np.ndarray]:
    """The first ``count`` images of a folder, repeated to ``count``; unreadable ones are
    skipped with a ``skipping:`` line on stderr.

    Raises:
        InputError: none of them can be read.
    """
    frames = []
    for path in list_images(folder)[:count]:
        try:
            frames.append(read_image(path))
        except InputError as e:
            print(f"skipping: {e}", file=sys.stderr)
    if not frames:
        raise InputError("no readable images to benchmark in the folder")
    return repeat_to(frames, count)


def video_frames(spec: str, count: int) -> list[np.ndarray]:
    """The first ``count`` frames (at most) of a video file, webcam or stream.

    Raises:
        InputError: the source cannot be opened or gives no frame.
    """
    frames: list[np.ndarray] = []
    with VideoSource.open(spec) as source:
        while len(frames) < count and (frame := source.read()) is not None:
            frames.append(frame)
    if not frames:
        raise InputError(f"no frames could be read from {redact(spec)}")
    return frames
