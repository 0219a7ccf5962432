"""Reading images and normalising them to 3-channel 8-bit BGR."""

from __future__ import annotations

import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class InputError(ValueError):
    """An input that cannot be used: missing, unreadable or malformed."""


class ClosesOnExit:
    """``with obj:`` calls ``obj.close()`` on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any grayscale / BGR / BGRA image of 8 or 16 bits (or float in [0, 1])
    -> contiguous uint8 [H, W, 3] BGR.

    Raises:
        InputError: not an image array.
    """
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        shape = getattr(image, "shape", None)
        raise InputError(f"expected an image array [H, W] or [H, W, C], got shape {shape}")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"unsupported image dtype {image.dtype}")
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.shape[2] != 3:
        raise InputError(f"expected 1, 3 or 4 channels, got {image.shape[2]}")
    return np.ascontiguousarray(image)


def read_image(path: str) -> np.ndarray:
    """Read an image file as uint8 BGR [H, W, 3] (grayscale, RGBA and 16-bit converted).

    Raises:
        InputError: missing, unreadable or corrupt file.
    """
    if not os.path.exists(path):
        raise InputError(f"image not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"expected an image file, got a folder: {path} (use --images)")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot decode image (corrupt or not an image): {path}")
    return to_bgr8(image)


def list_images(folder: str) -> list:
    """Image files directly inside ``folder``, sorted by name.

    Raises:
        InputError: the folder does not exist.
    """
    if not os.path.isdir(folder):
        raise InputError(f"image folder not found: {folder}")
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )
