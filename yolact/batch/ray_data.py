"""Ray Data: a model loaded once per actor, mapping batches of images to detections.

::

    import ray
    from yolact.batch.ray_data import YolactMapper

    ray.init(address="auto")        # or RAY_ADDRESS=ray://head:10001; ray.init() alone: local
    ds = ray.data.read_images("s3://bucket/photos/", include_paths=True, mode="RGB")
    out = ds.map_batches(
        YolactMapper, fn_constructor_kwargs={"model_path": "yolact_base_54_800000.pth"},
        concurrency=8, num_cpus=1, batch_size=4,   # or num_gpus=1 per actor
    )
    out.write_json("s3://bucket/detections/")

Batches are the dicts of numpy arrays Ray Data hands to ``map_batches``:
``image`` (RGB arrays, as ``read_images`` decodes them; gray and RGBA taken as
such) or ``bytes`` (encoded files, as ``read_binary_files`` gives them, decoded
here with OpenCV exactly as ``eval.py`` and ``yolact predict`` read files), and
``path`` when the reader was asked for it. Each output row has ``path`` (when
given), ``file_name``, ``height``, ``width``, ``num_detections``, ``detections``
(the JSON text of the detections list of a :mod:`yolact.batch.records` record)
and ``error`` (empty, or why the image could not be used; its detections are
then ``[]``). This module does not import Ray: the class is a plain callable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from yolact.batch.fixed import FixedBatchPredictor
from yolact.batch.records import detection_entries
from yolact.core.images import InputError, to_bgr8
from yolact.io.coco_json import category_ids_for


def decode(data: bytes | np.ndarray) -> np.ndarray:
    """An encoded image file's bytes as uint8 BGR [H, W, 3], as ``eval.py`` reads files.

    Raises:
        InputError: bytes that are no image.
    """
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None:
        raise InputError("cannot decode image (corrupt or not an image)")
    return to_bgr8(image)


def from_rgb(image: np.ndarray) -> np.ndarray:
    """An image as ``read_images`` gives it (RGB, RGBA or gray) as uint8 BGR."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = image[..., [2, 1, 0, *([3] if image.shape[2] == 4 else [])]]
    return to_bgr8(np.ascontiguousarray(image))


class YolactMapper:
    """The callable class for ``Dataset.map_batches``: one predictor per actor.

    Args:
        model_path: a checkpoint, an ``.onnx`` file or an OpenVINO folder, readable
            on every node (a shared file system or the same path everywhere).
        batch_size: images per network call; every call is padded to it, so an
            image's detections do not depend on its batch (as ``yolact predict``).
        score_threshold: keep detections scoring above this (0: all).
        device: "cpu", "cuda" (an actor with ``num_gpus=1``); default CUDA if any.
        threads: torch threads of each actor (default: Ray's ``OMP_NUM_THREADS``,
            the actor's ``num_cpus``).
        config: a registered config name, when the file does not say.
    """

    def __init__(
        self,
        model_path: str,
        *,
        batch_size: int = 4,
        score_threshold: float = 0.0,
        device: str | None = None,
        threads: int | None = None,
        config: str | None = None,
    ) -> None:
        self.predictor = FixedBatchPredictor.load(
            model_path, batch_size, score_threshold=score_threshold, device=device,
            threads=threads, config=config,
        )  # fmt: skip
        self.category_ids = category_ids_for(self.predictor.class_names)

    def _images(self, batch: dict[str, Any]) -> list[np.ndarray | str]:
        """Each row's BGR image, or the reason it cannot be used."""
        convert: Callable[[Any], np.ndarray]
        if "bytes" in batch:
            rows, convert = batch["bytes"], decode
        elif "image" in batch:
            rows, convert = batch["image"], from_rgb
        else:
            raise KeyError(f"a batch needs an 'image' or a 'bytes' column, got {sorted(batch)}")
        out: list[np.ndarray | str] = []
        for row in rows:
            try:
                out.append(convert(row))
            except InputError as e:
                out.append(str(e))
        return out

    def __call__(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """Detections of one batch of rows (see the module doc for the columns)."""
        images = self._images(batch)
        good = [im for im in images if isinstance(im, np.ndarray)]
        dets = iter(self.predictor(good))
        heights, widths, texts, counts, errors = [], [], [], [], []
        for im in images:
            if isinstance(im, str):
                entries: list[dict[str, Any]] = []
                height = width = 0
                errors.append(im)
            else:
                entries = detection_entries(next(dets), self.category_ids)
                height, width = im.shape[:2]
                errors.append("")
            heights.append(height)
            widths.append(width)
            texts.append(json.dumps(entries, separators=(",", ":")))
            counts.append(len(entries))
        out = {
            "height": np.array(heights, np.int64),
            "width": np.array(widths, np.int64),
            "num_detections": np.array(counts, np.int64),
            "detections": np.array(texts, dtype=object),
            "error": np.array(errors, dtype=object),
        }
        if "path" in batch:
            paths = [str(p) for p in batch["path"]]
            out["path"] = np.array(paths, dtype=object)
            out["file_name"] = np.array([os.path.basename(p) for p in paths], dtype=object)
        return out


def row_record(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the mapped dataset as a :mod:`yolact.batch.records` record."""
    record: dict[str, Any] = {}
    for key in ("file_name", "path"):
        if key in row:
            record[key] = str(row[key])
    record["height"], record["width"] = int(row["height"]), int(row["width"])
    record["detections"] = json.loads(row["detections"])
    return record
