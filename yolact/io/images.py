"""Reading images from files and folders, and naming their outputs; the checks that
make any image 3-channel 8-bit BGR are :mod:`yolact.core.images` (named here too)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

import cv2
import numpy as np

from yolact.core.images import InputError as InputError
from yolact.core.images import to_bgr8 as to_bgr8
from yolact.core.images import to_bgr8_batch as to_bgr8_batch
from yolact.io.redact import redact

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


_C = TypeVar("_C", bound="ClosesOnExit")


class ClosesOnExit:
    """``with obj:`` calls ``obj.close()`` on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_image(path: str) -> np.ndarray:
    """Read an image file as uint8 BGR [H, W, 3] (grayscale, RGBA and 16-bit converted).

    Raises:
        InputError: missing, unreadable or corrupt file.
    """
    if not os.path.exists(path):
        raise InputError(f"image not found: {redact(path)}")
    if os.path.isdir(path):
        raise InputError(f"expected an image file, got a folder: {redact(path)} (use --images)")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot decode image (corrupt or not an image): {redact(path)}")
    return to_bgr8(image)


def list_images(folder: str) -> list[str]:
    """Image files directly inside ``folder``, sorted by name.

    Raises:
        InputError: the folder does not exist.
    """
    if not os.path.isdir(folder):
        raise InputError(f"image folder not found: {redact(folder)}")
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )


def output_names(paths: Sequence[str], ext: str = ".png") -> list[str]:
    """File names for the drawings of ``paths`` (one folder's images), all distinct.

    The rule, stable for a given set of names: ``photo.jpg`` -> ``photo.png``;
    where several inputs share a stem (``photo.bmp``, ``photo.png``), the input
    already of type ``ext`` keeps ``photo.png`` and the others carry their own
    extension, ``photo_bmp.png``. A name still taken (compared ignoring case,
    as some file systems do) gets ``_2``, ``_3``... in input order.

    Args:
        paths: input file paths, in the order names are given out.
        ext: extension of the outputs.

    Returns:
        One output file name (no folder) per input, in the same order.
    """
    split = [os.path.splitext(os.path.basename(p)) for p in paths]
    stems: dict[str, int] = {}
    for stem, _ in split:
        stems[stem.casefold()] = stems.get(stem.casefold(), 0) + 1
    taken: set[str] = set()
    names = []
    for stem, own_ext in split:
        shared = stems[stem.casefold()] > 1 and own_ext.casefold() != ext.casefold()
        base = f"{stem}_{own_ext.lstrip('.')}" if shared else stem
        name, n = base + ext, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}_{n}{ext}"
        taken.add(name.casefold())
        names.append(name)
    return names
