"""COCO-format instance segmentation dataset.

A *sample* is a plain dict shared by augmentation, loss and evaluation:

- ``image``: uint8 [H, W, 3] BGR.
- ``boxes``: float32 [N, 4] (x1, y1, x2, y2) absolute pixels.
- ``labels``: int64 [N] contiguous 0-based class index.
- ``masks``: uint8 [N, H, W] with values 0/1.
- ``crowd_boxes``: float32 [M, 4] xyxy of ``iscrowd`` regions (to be ignored).
- ``crowd_masks``: uint8 [M, H, W].
- ``image_id`` (int, the COCO id), ``file_name`` (str), ``height``, ``width`` (int).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from yolact.core.data_names import COCO_CATEGORY_IDS, COCO_CLASSES

Sample = dict[str, Any]

# Reasons an annotation is skipped (keys of ``CocoDataset.skipped``).
SHORT_POLYGON = "polygon with < 3 points"
EMPTY_BOX = "zero or negative area box"
BOX_OUTSIDE = "box outside the image"
EMPTY_MASK = "mask with no pixel inside the image"
UNKNOWN_CATEGORY = "unknown category"
UNLISTED_CATEGORY = "category not in class_names"
UNKNOWN_IMAGE = "unknown image id"
NO_SEGMENTATION = "missing or malformed segmentation"
MASK_SIZE = "mask size differs from the image"
BAD_BOX = "malformed box"

NAMED_DATASETS: dict[str, tuple[str, str]] = {
    "coco2017_train": ("instances_train2017.json", "train2017"),
    "coco2017_val": ("instances_val2017.json", "val2017"),
    "coco2017_testdev": ("image_info_test-dev2017.json", "test2017"),
}


class DatasetError(ValueError):
    """A dataset file or folder is missing, unreadable or not in COCO format."""


class DatasetWarning(UserWarning):
    """Annotations were skipped because they cannot be used."""


def named_dataset(name: str, root: str = "data") -> tuple[str, str]:
    """Annotation file and image folder of a named COCO 2017 dataset.

    Args:
        name: one of ``coco2017_train``, ``coco2017_val``, ``coco2017_testdev``.
        root: the data folder holding ``coco/annotations`` and ``coco/images``.

    Returns:
        ``(ann_file, image_dir)``, e.g. ``data/coco/annotations/instances_val2017.json``
        and ``data/coco/images/val2017``.
    """
    if name not in NAMED_DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(NAMED_DATASETS)}")
    ann_name, image_folder = NAMED_DATASETS[name]
    coco_root = os.path.join(root, "coco")
    return (
        os.path.join(coco_root, "annotations", ann_name),
        os.path.join(coco_root, "images", image_folder),
    )


def collate(batch: list[Sample]) -> dict[str, Any]:
    """Batch samples for a DataLoader.

    ``image`` is stacked into [B, ...] when every image is a tensor of the same shape
    (after a transform that makes tensors); every other key, and images that cannot
    be stacked, stay as per-image lists of length B.
    """
    if not batch:
        return {}
    keys = list(batch[0])
    for i, sample in enumerate(batch):
        if set(sample) != set(keys):
            raise DatasetError(f"sample {i} of the batch has keys {sorted(sample)}, not {keys}")
    out: dict[str, Any] = {key: [sample[key] for sample in batch] for key in keys}
    images = out.get("image", [])
    tensors = bool(images) and all(isinstance(im, torch.Tensor) for im in images)
    if tensors and len({tuple(im.shape) for im in images}) == 1:
        out["image"] = torch.stack(images)  # [B, ...]
    return out


def _load_json(ann_file: str) -> dict[str, Any]:
    """Read and check the top-level structure of a COCO json."""
    if not os.path.isfile(ann_file):
        raise DatasetError(f"annotation file not found: {ann_file}")
    try:
        with open(ann_file, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"not a COCO annotation file (invalid json: {e}): {ann_file}") from e
    except OSError as e:
        raise DatasetError(f"cannot read annotation file ({e.strerror}): {ann_file}") from e

    def bad(why: str) -> DatasetError:
        return DatasetError(f"not a COCO annotation file ({why}): {ann_file}")

    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise bad("no 'images' list")
    for key, required in (
        ("images", ("id", "file_name", "height", "width")),
        ("annotations", ("id", "image_id", "category_id")),
        ("categories", ("id", "name")),
    ):
        entries = data.get(key, [])
        if not isinstance(entries, list):
            raise bad(f"'{key}' is not a list")
        for entry in entries:
            if not isinstance(entry, dict) or any(k not in entry for k in required):
                raise bad(f"an entry of '{key}' lacks one of {', '.join(required)}")
    return data


def _clipped_box(
    ann: dict[str, Any], height: int, width: int
) -> tuple[float, float, float, float] | str:
    """The annotation's box as xyxy clipped to the image, or the reason it is unusable."""
    H, W = height, width
    bbox = ann.get("bbox")
    if bbox is None:  # derive it from the segmentation
        seg = ann["segmentation"]
        if isinstance(seg, list):
            xs = [v for ring in seg for v in ring[0::2]]
            ys = [v for ring in seg for v in ring[1::2]]
            bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        else:
            bbox = mask_utils.toBbox(_to_rle(seg, H, W)).tolist()
    try:
        x, y, w, h = float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])
    except (TypeError, ValueError, IndexError, KeyError):
        return BAD_BOX
    if len(bbox) != 4 or not math.isfinite(x + y + w + h):  # nan/inf in any term
        return BAD_BOX
    if w <= 0 or h <= 0:
        return EMPTY_BOX
    x1, y1 = min(max(x, 0.0), W), min(max(y, 0.0), H)
    x2, y2 = min(max(x + w, 0.0), W), min(max(y + h, 0.0), H)
    if x2 <= x1 or y2 <= y1:
        return BOX_OUTSIDE
    return x1, y1, x2, y2


def _segmentation_problem(seg: Any, height: int, width: int) -> str | None:
    """Why a segmentation cannot be used (cheap checks, no decoding), or None."""
    if isinstance(seg, list):  # polygons: a ring needs 3 points (6 numbers)
        problem: str | None = NO_SEGMENTATION if not seg else SHORT_POLYGON
        for ring in seg:
            if not isinstance(ring, list):
                return NO_SEGMENTATION
            if len(ring) >= 6:
                problem = None
        return problem
    if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
        return NO_SEGMENTATION
    if list(seg["size"]) != [height, width]:
        return MASK_SIZE
    counts = seg["counts"]
    if isinstance(counts, list):  # uncompressed RLE: runs must cover the image exactly
        if sum(counts) != height * width:
            return NO_SEGMENTATION
        return EMPTY_MASK if sum(counts[1::2]) == 0 else None
    if not isinstance(counts, (str, bytes)):
        return NO_SEGMENTATION
    return EMPTY_MASK if int(mask_utils.area(_to_rle(seg, height, width))) == 0 else None


def _to_rle(seg: Any, height: int, width: int) -> dict[str, Any]:
    """Compressed RLE of a polygon list, uncompressed RLE or compressed RLE segmentation."""
    if isinstance(seg, list):
        rings = [ring[: len(ring) // 2 * 2] for ring in seg if len(ring) >= 6]
        return mask_utils.merge(mask_utils.frPyObjects(rings, height, width))
    if isinstance(seg["counts"], list):
        return mask_utils.frPyObjects(seg, height, width)
    if isinstance(seg["counts"], str):
        return {"size": [height, width], "counts": seg["counts"].encode("ascii")}
    return seg


class CocoDataset(Dataset):
    """Images and instance annotations of a COCO-format json.

    Categories sorted by id become contiguous labels ``0..C-1``. ``categories`` must
    be a non-empty list (one-line ``DatasetError`` otherwise), except that an image
    list without it and without ``annotations`` (inference only) gets COCO's 80
    classes. Empty ``images`` or ``annotations`` lists get a ``DatasetWarning``.
    Unusable annotations (of unknown images or categories, with bad boxes or masks)
    are skipped and counted by reason in ``skipped``; one ``DatasetWarning`` summarises
    them at construction. Masks that turn out empty only when decoded are counted the
    first time their image is loaded (in the loading process: DataLoader workers keep
    their own counts).

    Args:
        ann_file: path of the COCO json (``instances_*.json`` or ``image_info_*.json``).
        image_dir: folder holding the images named by ``file_name``.
        transform: called on every sample dict; its result is returned.
        class_names: when given, label ``i`` is the category named ``class_names[i]``
            and annotations of other categories are skipped; default: every category.
        skip_empty: drop images with no usable (non-crowd) instance.
    """

    def __init__(
        self,
        ann_file: str,
        image_dir: str,
        transform: Callable[[Sample], Sample] | None = None,
        class_names: Sequence[str] | None = None,
        skip_empty: bool = False,
    ) -> None:
        data = _load_json(ann_file)
        if not os.path.isdir(image_dir):
            raise DatasetError(f"image directory not found: {image_dir}")
        self.ann_file = ann_file
        self.image_dir = image_dir
        self.transform = transform
        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()

        name = os.path.basename(ann_file)
        self.has_annotations = "annotations" in data
        cats = sorted(data.get("categories", []), key=lambda c: c["id"])
        if "categories" not in data:
            if self.has_annotations:
                raise DatasetError(
                    f"no 'categories' list: the annotations' category ids have no names: {ann_file}"
                )
            # An image list (inference only, like image_info_test-dev2017.json): COCO's classes.
            cats = [{"id": i, "name": n} for i, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES)]
        elif not cats:
            raise DatasetError(f"'categories' is empty: the dataset names no class: {ann_file}")
        if not data["images"]:
            warnings.warn(f"{name}: 'images' is empty", DatasetWarning, stacklevel=2)
        elif self.has_annotations and not data["annotations"]:
            warnings.warn(
                f"{name}: 'annotations' is empty: every image is background",
                DatasetWarning,
                stacklevel=2,
            )
        known_ids = {int(c["id"]) for c in cats}
        if class_names is None:
            chosen = cats
        else:
            by_name = {c["name"]: c for c in reversed(cats)}
            missing = [n for n in class_names if n not in by_name]
            if missing:
                raise DatasetError(f"classes not in the categories of {ann_file}: {missing}")
            chosen = [by_name[n] for n in class_names]
        self._class_names: tuple[str, ...] = tuple(str(c["name"]) for c in chosen)
        self.label_to_category_id: list[int] = [int(c["id"]) for c in chosen]
        self.category_id_to_label: dict[int, int] = {
            cat_id: label for label, cat_id in enumerate(self.label_to_category_id)
        }

        self.skipped: dict[str, int] = {}
        self._lazy_skipped: set[int] = set()
        self._warned_lazy = False
        # Per image: (annotation, clipped xyxy box, label or -1 for crowd).
        self._entries: dict[int, list[tuple[dict[str, Any], tuple[float, ...], int]]] = {}
        reasons: Counter[str] = Counter()
        for img_id, info in self.coco.imgs.items():
            H, W = int(info["height"]), int(info["width"])
            entries = []
            for ann in self.coco.imgToAnns.get(img_id, []):
                result = self._check(ann, H, W, known_ids)
                if isinstance(result, str):
                    reasons[result] += 1
                else:
                    entries.append(result)
            self._entries[img_id] = entries
        orphans = sum(a["image_id"] not in self.coco.imgs for a in data.get("annotations", []))
        if orphans:
            reasons[UNKNOWN_IMAGE] = orphans
        self.skipped = dict(reasons.most_common())
        if reasons:
            warnings.warn(f"{name}: {self._summary()}", DatasetWarning, stacklevel=2)

        self.image_ids: list[int] = [
            img_id
            for img_id in self.coco.imgs
            if not skip_empty or any(label >= 0 for _, _, label in self._entries[img_id])
        ]

    def check_trainable(self) -> None:
        """Raise a one-line ``DatasetError`` when the dataset cannot be trained on.

        A file without an ``annotations`` list is an image list (for inference only),
        and a set without images gives nothing to learn from. A set whose images
        carry no object is allowed (its construction warned about it).
        """
        if not self.has_annotations:
            raise DatasetError(
                f"no 'annotations' list (an image list, for inference only): "
                f"cannot train on {self.ann_file}"
            )
        if len(self) == 0:
            raise DatasetError(f"the training set has no images: {self.ann_file}")

    def _check(
        self, ann: dict[str, Any], height: int, width: int, known_ids: set[int]
    ) -> tuple[dict[str, Any], tuple[float, ...], int] | str:
        """One annotation's (ann, box, label) entry, or the reason to skip it."""
        cat_id = ann["category_id"]
        if cat_id not in known_ids:
            return UNKNOWN_CATEGORY
        if cat_id not in self.category_id_to_label:
            return UNLISTED_CATEGORY
        problem = _segmentation_problem(ann.get("segmentation"), height, width)
        if problem is not None:
            return problem
        box = _clipped_box(ann, height, width)
        if isinstance(box, str):
            return box
        label = -1 if ann.get("iscrowd", 0) else self.category_id_to_label[cat_id]
        return ann, box, label

    def _summary(self) -> str:
        total = sum(self.skipped.values())
        parts = ", ".join(f"{n} {reason}" for reason, n in self.skipped.items())
        return f"skipped {total} annotation{'s' if total != 1 else ''}: {parts}"

    @property
    def class_names(self) -> tuple[str, ...]:
        """Name of each label, in label order."""
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    def __len__(self) -> int:
        return len(self.image_ids)

    def _read_image(self, info: dict[str, Any]) -> np.ndarray:
        path = os.path.join(self.image_dir, info["file_name"])
        if not os.path.isfile(path):
            raise DatasetError(f"image file not found: {path}")
        image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise DatasetError(f"cannot read image: {path}")
        H, W = int(info["height"]), int(info["width"])
        if image.shape[:2] != (H, W):
            raise DatasetError(
                f"image is {image.shape[1]}x{image.shape[0]}, annotations say {W}x{H}: {path}"
            )
        return image

    def __getitem__(self, index: int) -> Sample:
        img_id = self.image_ids[index]
        info = self.coco.imgs[img_id]
        image = self._read_image(info)
        H, W = image.shape[:2]
        inst: tuple[list, list, list] = ([], [], [])  # boxes, labels, rles
        crowd: tuple[list, list] = ([], [])  # boxes, rles
        for ann, box, label in self._entries[img_id]:
            rle = _to_rle(ann["segmentation"], H, W)
            if int(mask_utils.area(rle)) == 0:
                self._count_lazy(ann, info["file_name"])
                continue
            if label < 0:
                crowd[0].append(box)
                crowd[1].append(rle)
            else:
                inst[0].append(box)
                inst[1].append(label)
                inst[2].append(rle)
        sample: Sample = {
            "image": image,
            "boxes": np.asarray(inst[0], dtype=np.float32).reshape(-1, 4),
            "labels": np.asarray(inst[1], dtype=np.int64),
            "masks": _decode(inst[2], H, W),
            "crowd_boxes": np.asarray(crowd[0], dtype=np.float32).reshape(-1, 4),
            "crowd_masks": _decode(crowd[1], H, W),
            "image_id": int(img_id),
            "file_name": str(info["file_name"]),
            "height": int(H),
            "width": int(W),
        }
        return self.transform(sample) if self.transform is not None else sample

    def _count_lazy(self, ann: dict[str, Any], file_name: str) -> None:
        """Count an annotation whose decoded mask is empty (once per annotation)."""
        if ann["id"] in self._lazy_skipped:
            return
        self._lazy_skipped.add(ann["id"])
        self.skipped[EMPTY_MASK] = self.skipped.get(EMPTY_MASK, 0) + 1
        if not self._warned_lazy:
            self._warned_lazy = True
            warnings.warn(
                f"{file_name}: skipped annotation {ann['id']} ({EMPTY_MASK}); "
                "further ones are counted in dataset.skipped",
                DatasetWarning,
                stacklevel=3,
            )

    def __repr__(self) -> str:
        return (
            f"CocoDataset({self.ann_file!r}, images={len(self)}, "
            f"classes={self.num_classes}, skipped={sum(self.skipped.values())})"
        )


def _decode(rles: list[dict[str, Any]], height: int, width: int) -> np.ndarray:
    """Decode RLEs to uint8 masks [N, H, W] (0/1)."""
    if not rles:
        return np.zeros((0, height, width), dtype=np.uint8)
    with warnings.catch_warnings():  # pycocotools' Cython trips a numpy 2 deprecation
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        masks = mask_utils.decode(rles)  # [H, W, N]
    return np.ascontiguousarray(masks.transpose(2, 0, 1))  # [N, H, W]
