"""Image input checks: any array a user passes becomes 3-channel 8-bit BGR, or is
refused in one line. Shared by every predictor (reading files is :mod:`yolact.io`)."""

from __future__ import annotations

import cv2
import numpy as np


class InputError(ValueError):
    """An input that cannot be used: missing, unreadable or malformed."""


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
