"""Calibration images for INT8 export: ``--calib`` as an image folder, a COCO
annotation file or a named dataset, read and pre-processed as the exported graph
takes them."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from yolact.backends.meta import ExportMeta
from yolact.core.family import ExportError
from yolact.core.preprocess import SquarePreprocessor
from yolact.io.images import IMAGE_EXTENSIONS, InputError, list_images, read_image

# Images read when --calib_size is not given: NNCF's and onnxruntime's statistics
# settle well before this on YOLACT's activations, and reading more only costs time.
DEFAULT_CALIB_SIZE = 100


class CalibrationError(ExportError):
    """Calibration images that cannot be found or read (one line)."""


def _spread(items: Sequence[str], limit: int) -> list[str]:
    """At most ``limit`` of ``items``, evenly spread over them, in their order."""
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def annotation_image_dir(ann_file: str) -> str | None:
    """The image folder of a COCO annotation file in a usual layout, else None:
    ``root/annotations/<split>.json`` -> ``root/<split>`` (``yolact.data.synthetic``),
    ``root/annotations/instances_<split>.json`` -> ``root/images/<split>`` or
    ``root/<split>`` (COCO)."""
    stem = os.path.splitext(os.path.basename(ann_file))[0]
    split = stem[len("instances_") :] if stem.startswith("instances_") else stem
    root = os.path.dirname(os.path.dirname(os.path.abspath(ann_file)))
    for folder in (os.path.join(root, split), os.path.join(root, "images", split)):
        if os.path.isdir(folder):
            return folder
    return None


def _annotation_images(ann_file: str, image_dir: str | None) -> list[str]:
    """The image paths an annotation file lists, in its order."""
    try:
        with open(ann_file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise CalibrationError(f"--calib {ann_file}: cannot read it ({why})") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise CalibrationError(f"--calib {ann_file}: not a COCO annotation file (no 'images')")
    folder = image_dir or annotation_image_dir(ann_file)
    if folder is None:
        raise CalibrationError(
            f"--calib {ann_file}: cannot find its image folder; give --calib_images"
        )
    names = [im.get("file_name") for im in images if isinstance(im, dict)]
    return [os.path.join(folder, n) for n in names if isinstance(n, str)]


def calibration_files(source: str, limit: int, image_dir: str | None = None) -> list[str]:
    """The calibration images of ``--calib``: at most ``limit``, evenly spread.

    Args:
        source: an image folder, a COCO annotation file (``.json``; its images in
            ``image_dir``, or found beside it: :func:`annotation_image_dir`), or a
            dataset name as eval.py's ``--dataset`` takes it (``coco2017_val``...).
        limit: the most images to use (>= 1).
        image_dir: the image folder of an annotation file.

    Raises:
        CalibrationError: a missing source, an unknown name, or no images, in one line.
    """
    from yolact.data.coco import NAMED_DATASETS, named_dataset

    if limit < 1:
        raise CalibrationError(f"--calib_size must be at least 1, got {limit}")
    if os.path.isdir(source):
        files = list_images(source)
        if not files:
            raise CalibrationError(
                f"--calib {source}: no images in it (looked for {', '.join(IMAGE_EXTENSIONS)})"
            )
        return _spread(files, limit)
    if source in NAMED_DATASETS:
        ann_file, folder = named_dataset(source)
        if not os.path.isfile(ann_file):
            raise CalibrationError(f"--calib {source}: its annotation file {ann_file} is missing")
        files = _annotation_images(ann_file, image_dir or folder)
    elif source.lower().endswith(".json") and os.path.isfile(source):
        files = _annotation_images(source, image_dir)
    elif os.path.exists(source):
        raise CalibrationError(
            f"--calib {source}: give an image folder, a COCO annotation file or a dataset name"
        )
    else:
        raise CalibrationError(
            f"--calib {source}: no such folder or file, nor a dataset name "
            f"({', '.join(NAMED_DATASETS)})"
        )
    if not files:
        raise CalibrationError(f"--calib {source}: the annotation file lists no images")
    return _spread(files, limit)


def calibration_batches(files: Sequence[str], meta: ExportMeta) -> list[np.ndarray]:
    """The images pre-processed as the graph takes them (``meta``'s size and
    normalisation), as float32 batches of the graph's batch size (1 for a dynamic
    batch; a last partial batch of a fixed size is filled with its first image).

    Raises:
        CalibrationError: an image that cannot be read, in one line naming it.
    """
    pre = SquarePreprocessor(meta.input_size, meta.pixel_mean, meta.pixel_std, meta.channels)
    size = meta.batch or 1
    batches = []
    for start in range(0, len(files), size):
        chunk = list(files[start : start + size])
        try:
            images = [read_image(f) for f in chunk]
        except InputError as e:
            raise CalibrationError(f"--calib: {e}") from None
        images += [images[0]] * (size - len(images))
        batches.append(np.ascontiguousarray(pre(images).numpy(), dtype=np.float32))
    return batches
