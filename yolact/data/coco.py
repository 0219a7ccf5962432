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
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from yolact.data.coco_annotations import (  # noqa: F401 (the skip reasons are re-exported)
    BAD_BOX,
    BOX_OUTSIDE,
    EMPTY_BOX,
    EMPTY_MASK,
    MASK_SIZE,
    NO_SEGMENTATION,
    SHORT_POLYGON,
    UNKNOWN_CATEGORY,
    UNKNOWN_IMAGE,
    UNLISTED_CATEGORY,
    DatasetError,
    DatasetWarning,
    Entry,
    _to_rle,
    choose_categories,
    empty_list_warnings,
    file_categories,
    index_images,
    parse_annotations,
    skipped_summary,
    validate,
)
from yolact.data.coco_source import AnnotationSource

# The former private name of parse_annotations (yolact.cli.predictors imports it).
_load_json = parse_annotations

Sample = dict[str, Any]

NAMED_DATASETS: dict[str, tuple[str, str]] = {
    "coco2017_train": ("instances_train2017.json", "train2017"),
    "coco2017_val": ("instances_val2017.json", "val2017"),
    "coco2017_testdev": ("image_info_test-dev2017.json", "test2017"),
}


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
    their own counts). Construction composes the steps of
    :mod:`yolact.data.coco_annotations`: parse, choose categories, validate, index.

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
        cache: bool | None = None,
    ) -> None:
        self.ann_file = ann_file
        self.image_dir = image_dir
        self.transform = transform
        self._coco: COCO | None = None
        name = os.path.basename(ann_file)
        with contextlib.ExitStack() as stack:
            source = AnnotationSource(ann_file, image_dir, class_names, cache, stack)
            if not os.path.isdir(image_dir):
                raise DatasetError(f"image directory not found: {image_dir}")
            for message in empty_list_warnings(source.lists_stub(), name):
                warnings.warn(message, DatasetWarning, stacklevel=2)
            categories = choose_categories(source.categories(), class_names, ann_file)
            self.records, self.skipped = source.checked(categories)
        self.has_annotations: bool = source.has_annotations
        self._class_names: tuple[str, ...] = categories.class_names
        self.label_to_category_id: list[int] = categories.label_to_category_id
        self.category_id_to_label: dict[int, int] = categories.category_id_to_label
        self.cache_path: str | None = source.cache_path

        self._lazy_skipped: set[int] = set()
        self._warned_lazy = False
        if self.skipped:
            warnings.warn(f"{name}: {self._summary()}", DatasetWarning, stacklevel=2)
        served = np.arange(self.records.num_images, dtype=np.int64)
        if skip_empty:
            served = served[self.records.has_instance()]
        self._served = served  # position in the records of each served image
        self.image_ids: list[int] = self.records.image_ids[served].tolist()

    @property
    def coco(self) -> COCO:
        """pycocotools' index of the whole json (for evaluation), read from the file
        on first use: the dataset itself keeps only its compact records."""
        if self._coco is None:
            self._coco = _index(parse_annotations(self.ann_file))
        return self._coco

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

    def _summary(self) -> str:
        return skipped_summary(self.skipped)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Name of each label, in label order."""
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    def __len__(self) -> int:
        return len(self.image_ids)

    def _read_image(self, file_name: str, height: int, width: int) -> np.ndarray:
        path = os.path.join(self.image_dir, file_name)
        if not os.path.isfile(path):
            raise DatasetError(f"image file not found: {path}")
        image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise DatasetError(f"cannot read image: {path}")
        H, W = height, width
        if image.shape[:2] != (H, W):
            raise DatasetError(
                f"image is {image.shape[1]}x{image.shape[0]}, annotations say {W}x{H}: {path}"
            )
        return image

    def __getitem__(self, index: int) -> Sample:
        position = int(self._served[index])
        img_id, file_name, H, W = self.records.image(position)
        image = self._read_image(file_name, H, W)
        inst: tuple[list, list, list] = ([], [], [])  # boxes, labels, rles
        crowd: tuple[list, list] = ([], [])  # boxes, rles
        for ann_id, box, label, seg in self.records.entries(position):
            rle = _to_rle(seg, H, W)
            if int(mask_utils.area(rle)) == 0:
                self._count_lazy(ann_id, file_name)
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
            "image_id": img_id,
            "file_name": file_name,
            "height": H,
            "width": W,
        }
        return self.transform(sample) if self.transform is not None else sample

    def _count_lazy(self, ann_id: int, file_name: str) -> None:
        """Count an annotation whose decoded mask is empty (once per annotation)."""
        if ann_id in self._lazy_skipped:
            return
        self._lazy_skipped.add(ann_id)
        self.skipped[EMPTY_MASK] = self.skipped.get(EMPTY_MASK, 0) + 1
        if not self._warned_lazy:
            self._warned_lazy = True
            warnings.warn(
                f"{file_name}: skipped annotation {ann_id} ({EMPTY_MASK}); "
                "further ones are counted in dataset.skipped",
                DatasetWarning,
                stacklevel=3,
            )

    def __repr__(self) -> str:
        return (
            f"CocoDataset({self.ann_file!r}, images={len(self)}, "
            f"classes={self.num_classes}, skipped={sum(self.skipped.values())})"
        )


def _index(data: dict[str, Any]) -> COCO:
    """pycocotools' index of a parsed json (its progress prints silenced)."""
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _decode(rles: list[dict[str, Any]], height: int, width: int) -> np.ndarray:
    """Decode RLEs to uint8 masks [N, H, W] (0/1)."""
    if not rles:
        return np.zeros((0, height, width), dtype=np.uint8)
    with warnings.catch_warnings():  # pycocotools' Cython trips a numpy 2 deprecation
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        masks = mask_utils.decode(rles)  # [H, W, N]
    return np.ascontiguousarray(masks.transpose(2, 0, 1))  # [N, H, W]
