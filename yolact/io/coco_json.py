"""Detections as COCO results JSON (boxes and RLE masks)."""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from yolact.core.data_names import COCO_CATEGORY_IDS, COCO_CLASSES
from yolact.core.structures import Detections
from yolact.io.outputs import atomic_write, write_or_rescue


def category_ids_for(class_names: Sequence[str]) -> list[int]:
    """Category id of each class: COCO's own ids (1..90 with gaps) for the 80
    COCO classes, else 1..N in order."""
    if tuple(class_names) == COCO_CLASSES:
        return list(COCO_CATEGORY_IDS)
    return list(range(1, len(class_names) + 1))


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """Compressed COCO RLE of each mask, JSON-ready.

    Args:
        masks: [N, H, W] bool or 0/1 array.

    Returns:
        N dicts ``{"size": [H, W], "counts": str}``.
    """
    if masks.shape[0] == 0:
        return []
    stacked = np.asfortranarray(masks.astype(np.uint8).transpose(1, 2, 0))  # [H, W, N]
    rles = mask_utils.encode(stacked)
    return [
        {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
        for rle in rles
    ]


def detections_to_coco(
    det: Detections,
    image_id: int | str,
    file_name: str | None = None,
    category_ids: Sequence[int] | None = None,
    source: int | None = None,
) -> list[dict[str, Any]]:
    """One COCO result dict per detection.

    Args:
        det: detections of one image.
        image_id: the image's id in the ground-truth file (a video frame's index
            in its source).
        file_name: stored with each result when given.
        category_ids: category id of each class index; default ``label + 1``
            (use ``category_ids_for(det.class_names)`` for COCO's gapped ids).
        source: stored with each result when given: which of a run's sources the
            image came from (0-based, in the order given).

    Returns:
        Dicts with ``image_id``, ``source`` and ``file_name`` (when given),
        ``category_id``, ``bbox`` [x, y, w, h] pixels, ``score`` and, when ``det.masks`` is set,
        ``segmentation`` as compressed RLE with a str ``counts``, and ``track_id``
        for the detections a tracker followed (``det.track_ids`` >= 0).

    Raises:
        ValueError: a label has no entry in ``category_ids``.
    """
    if isinstance(image_id, numbers.Integral) and not isinstance(image_id, bool):
        image_id = int(image_id)
    elif not isinstance(image_id, str):
        raise ValueError(f"image_id must be an int or a str, got {type(image_id).__name__}")
    n = len(det)
    if n == 0:
        return []
    labels = det.labels.tolist()
    if category_ids is not None:
        if max(labels) >= len(category_ids) or min(labels) < 0:
            raise ValueError(
                f"labels go up to {max(labels)} but only {len(category_ids)} category ids given"
            )
        cats = [int(category_ids[label]) for label in labels]
    else:
        cats = [label + 1 for label in labels]
    xyxy = det.boxes.detach().float().cpu()  # [N, 4]
    xywh = _xyxy_to_xywh(xyxy.numpy()).tolist()
    scores = det.scores.detach().float().cpu().tolist()
    segms = encode_masks(det.masks.cpu().numpy()) if det.masks is not None else None
    track_ids = [-1] * n if det.track_ids is None else det.track_ids.tolist()

    results = []
    for i in range(n):
        entry: dict[str, Any] = {"image_id": image_id}
        if source is not None:
            entry["source"] = int(source)
        if file_name is not None:
            entry["file_name"] = file_name
        entry["category_id"] = cats[i]
        entry["bbox"] = xywh[i]
        entry["score"] = scores[i]
        if segms is not None:
            entry["segmentation"] = segms[i]
        if track_ids[i] >= 0:
            entry["track_id"] = int(track_ids[i])
        results.append(entry)
    return results


def _xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """[N, 4] (x1, y1, x2, y2) -> [N, 4] (x, y, w, h), float64."""
    boxes = boxes.astype(np.float64)
    out: np.ndarray = boxes.copy()
    out[:, 2:] = boxes[:, 2:] - boxes[:, :2]
    return out


class CocoJsonWriter:
    """Collects COCO results over many images and writes them as one JSON list.

    The file is written atomically (a temporary file in the same folder, then
    ``os.replace``); the folder is created when missing. Used as a context
    manager it writes when the block ends without an exception.
    """

    def __init__(self, path: str) -> None:
        if not path:
            raise ValueError("the COCO JSON output path is empty")
        self.path = path
        self.results: list[dict[str, Any]] = []
        self.images = 0  # images (or frames) added, with or without detections

    def __len__(self) -> int:
        return len(self.results)

    def add(
        self,
        det: Detections,
        image_id: int | str,
        file_name: str | None = None,
        category_ids: Sequence[int] | None = None,
        source: int | None = None,
    ) -> None:
        """Append the results of one image (see ``detections_to_coco``); counted in
        ``images`` even without detections."""
        self.results.extend(detections_to_coco(det, image_id, file_name, category_ids, source))
        self.images += 1

    def to_bytes(self) -> bytes:
        """The JSON text of all results collected so far, UTF-8."""
        return json.dumps(self.results).encode("utf-8")

    def write(self) -> str:
        """Write all results collected so far.

        Returns:
            The path written.

        Raises:
            OSError: the folder cannot be created or the file cannot be written;
                an existing file is then left as it was.
        """
        atomic_write(self.path, self.to_bytes())
        return self.path

    def save(self) -> str:
        """``write``, and where that fails keep the results under another name.

        Returns:
            The path written.

        Raises:
            OutputError: ``path`` could not be written; the one-line message says
                why and where the results were saved instead (beside ``path``, in
                the current folder or in the temporary folder), or that no place
                could be written.
        """
        what = f"{len(self)} detections of {self.images} images"
        return write_or_rescue(self.path, self.to_bytes(), what)

    def __enter__(self) -> CocoJsonWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.write()
