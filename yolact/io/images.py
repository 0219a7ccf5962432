"""Reading images and normalising them to 3-channel 8-bit BGR."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

import cv2
import numpy as np

from yolact.io.redact import redact

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class InputError(ValueError):
    """An input that cannot be used: missing, unreadable or malformed."""


_C = TypeVar("_C", bound="ClosesOnExit")


class ClosesOnExit:
    """``with obj:`` calls ``obj.close()`` on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


IMAGE_IS_NONE = (
    "is None: cv2.imread could not read the file (missing path, no permission or not an image)"
)


def to_bgr8(image: object, what: str = "image") -> np.ndarray:
    """Any grayscale / BGR / BGRA image of 8 or 16 bits (or float in [0, 1])
    -> contiguous uint8 [H, W, 3] BGR.

    Args:
        image: [H, W], [H, W, 1], [H, W, 3] (BGR) or [H, W, 4] (BGRA); uint8,
            uint16 (divided by 257) or float (in [0, 1], else taken as 0..255).
        what: how error messages name the image (e.g. "images[2]").

    Raises:
        InputError: None, not an array, empty, or of an unusable shape or dtype;
            the message is one line.
    """
    if image is None:
        raise InputError(f"{what} {IMAGE_IS_NONE}")
    if not isinstance(image, np.ndarray):
        kind = type(image)
        raise InputError(
            f"{what} must be a numpy array [H, W, 3] (BGR, as cv2.imread returns), "
            f"got {kind.__module__}.{kind.__qualname__}"
        )
    if image.ndim not in (2, 3):
        hint = "; pass several images as a list" if image.ndim == 4 else ""
        raise InputError(
            f"{what} must be [H, W] or [H, W, C], got a {image.ndim}-D array "
            f"of shape {tuple(image.shape)}{hint}"
        )
    if image.size == 0:
        raise InputError(f"{what} is empty: shape {tuple(image.shape)}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 3, 4):
        raise InputError(
            f"{what} must have 1, 3 or 4 channels (gray, BGR, BGRA), got {channels} "
            f"(shape {tuple(image.shape)})"
        )
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.rint(np.nan_to_num(image) * scale), 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(
            f"{what} has unsupported dtype {image.dtype} (use uint8, uint16 or float in [0, 1])"
        )
    if channels == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif channels == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def to_bgr8_batch(images: object) -> tuple[list[np.ndarray], bool]:
    """A predictor's input as a list of uint8 BGR images [H, W, 3] (see ``to_bgr8``).

    Args:
        images: one image array, or a list / tuple of them (sizes may differ).

    Returns:
        ``(batch, single)``: the converted images and whether one image was given.

    Raises:
        InputError: the input, or an item of the list, is not a usable image; the
            message names the item (``images[2] is None: ...``).
    """
    if images is None or isinstance(images, np.ndarray):
        return [to_bgr8(images)], True
    if not isinstance(images, (list, tuple)):
        kind = type(images)
        raise InputError(
            "expected an image (numpy array [H, W, 3], BGR) or a list of them, got "
            f"{kind.__module__}.{kind.__qualname__}"
        )
    return [to_bgr8(im, f"images[{i}]") for i, im in enumerate(images)], False


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
