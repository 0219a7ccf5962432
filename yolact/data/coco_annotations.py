"""Reading a COCO json, validating its annotations and indexing them per image.

:class:`yolact.data.coco.CocoDataset` composes these steps:

1. :func:`parse_annotations`: the json, with COCO's top-level structure checked.
2. :func:`file_categories` and :func:`choose_categories`: the file's categories and
   the labels ``0..C-1`` given to the chosen ones.
3. :func:`validate`: per image, the usable annotations with their clipped boxes and
   labels, and per reason the number of annotations skipped.
4. :func:`index_images`: the image ids the dataset serves.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from yolact.core.data_names import COCO_CATEGORY_IDS, COCO_CLASSES
from yolact.data.polygons import PackedPolygon, compact_polygons

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


class DatasetError(ValueError):
    """A dataset file or folder is missing, unreadable or not in COCO format."""


class DatasetWarning(UserWarning):
    """Annotations were skipped because they cannot be used."""


def parse_annotations(ann_file: str, compact: bool = False) -> dict[str, Any]:
    """Read a COCO json and check its top-level structure.

    Args:
        ann_file: the json.
        compact: hold polygon segmentations of numbers as
            :class:`~yolact.data.polygons.PackedPolygon` (for the dataset's checks
            and records; a fifth of the memory of lists).

    Returns:
        The json: an ``images`` list and, where present, ``annotations`` and
        ``categories`` lists whose entries are dicts with the keys COCO requires.

    Raises:
        DatasetError: the file is missing, unreadable, not json or not COCO-shaped.
    """
    if not os.path.isfile(ann_file):
        raise DatasetError(f"annotation file not found: {ann_file}")
    try:
        with open(ann_file, encoding="utf-8") as f:
            data = json.load(f, object_hook=compact_polygons if compact else None)
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


class AnnotationIndex(Protocol):
    """What :func:`validate` reads of an index: pycocotools' ``COCO`` or
    :class:`ImageIndex`."""

    imgs: dict[int, dict[str, Any]]
    imgToAnns: Mapping[int, list[dict[str, Any]]]  # noqa: N815 (pycocotools' name)


class ImageIndex:
    """The images by id and the annotations by image id, grouped as pycocotools'
    ``COCO.createIndex`` groups them (an id listed twice keeps its first position and
    its last entry; annotations in file order), without its other indexes."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.imgs: dict[int, dict[str, Any]] = {img["id"]: img for img in data["images"]}
        by_image: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
        for ann in data.get("annotations", []):
            by_image[ann["image_id"]].append(ann)
        self.imgToAnns: Mapping[int, list[dict[str, Any]]] = by_image  # noqa: N815


# One usable annotation: (the annotation, its clipped xyxy box, its label or -1 for crowd).
Entry = tuple[dict[str, Any], tuple[float, ...], int]


@dataclass(frozen=True)
class Categories:
    """The categories of a file and the labels given to the chosen ones.

    Attributes:
        known_ids: the id of every category in the file.
        class_names: the name of each label, in label order.
        label_to_category_id: the category id of each label.
        category_id_to_label: the label of each chosen category id.
    """

    known_ids: frozenset[int]
    class_names: tuple[str, ...]
    label_to_category_id: list[int]
    category_id_to_label: dict[int, int]


def file_categories(data: dict[str, Any], ann_file: str) -> list[dict[str, Any]]:
    """The file's categories sorted by id.

    An image list without ``categories`` and ``annotations`` (inference only, like
    ``image_info_test-dev2017.json``) gets COCO's 80 classes.

    Raises:
        DatasetError: annotations without a ``categories`` list, or an empty one.
    """
    cats = sorted(data.get("categories", []), key=lambda c: c["id"])
    if "categories" not in data:
        if "annotations" in data:
            raise DatasetError(
                f"no 'categories' list: the annotations' category ids have no names: {ann_file}"
            )
        return [{"id": i, "name": n} for i, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES)]
    if not cats:
        raise DatasetError(f"'categories' is empty: the dataset names no class: {ann_file}")
    return cats


def empty_list_warnings(data: dict[str, Any], name: str) -> list[str]:
    """The warning for an empty ``images`` list or else an empty ``annotations`` list."""
    if not data["images"]:
        return [f"{name}: 'images' is empty"]
    if "annotations" in data and not data["annotations"]:
        return [f"{name}: 'annotations' is empty: every image is background"]
    return []


def choose_categories(
    cats: list[dict[str, Any]], class_names: Sequence[str] | None, ann_file: str
) -> Categories:
    """Labels for ``class_names`` (label ``i`` is the category named ``class_names[i]``,
    the lowest id where names repeat), or for every category in id order.

    Raises:
        DatasetError: a name that no category has.
    """
    if class_names is None:
        chosen = cats
    else:
        by_name = {c["name"]: c for c in reversed(cats)}
        missing = [n for n in class_names if n not in by_name]
        if missing:
            raise DatasetError(f"classes not in the categories of {ann_file}: {missing}")
        chosen = [by_name[n] for n in class_names]
    label_to_category_id = [int(c["id"]) for c in chosen]
    return Categories(
        known_ids=frozenset(int(c["id"]) for c in cats),
        class_names=tuple(str(c["name"]) for c in chosen),
        label_to_category_id=label_to_category_id,
        category_id_to_label={cat_id: label for label, cat_id in enumerate(label_to_category_id)},
    )


def check_annotation(
    ann: dict[str, Any], height: int, width: int, categories: Categories
) -> Entry | str:
    """One annotation's (ann, box, label) entry, or the reason to skip it."""
    cat_id = ann["category_id"]
    if cat_id not in categories.known_ids:
        return UNKNOWN_CATEGORY
    if cat_id not in categories.category_id_to_label:
        return UNLISTED_CATEGORY
    problem = _segmentation_problem(ann.get("segmentation"), height, width)
    if problem is not None:
        return problem
    box = _clipped_box(ann, height, width)
    if isinstance(box, str):
        return box
    label = -1 if ann.get("iscrowd", 0) else categories.category_id_to_label[cat_id]
    return ann, box, label


def validate(
    coco: AnnotationIndex | COCO, data: dict[str, Any], categories: Categories
) -> tuple[dict[int, list[Entry]], dict[str, int]]:
    """The usable annotations of every image and the number skipped per reason.

    Args:
        coco: the indexed file (``imgs``, ``imgToAnns``): a ``COCO`` or an
            :class:`ImageIndex`.
        data: the parsed json (for annotations of images it does not list).
        categories: the file's categories and the chosen labels.

    Returns:
        ``(entries, skipped)``: per image id its usable entries in file order, and per
        reason the number of annotations skipped, most common first.
    """
    entries: dict[int, list[Entry]] = {}
    reasons: Counter[str] = Counter()
    for img_id, info in coco.imgs.items():
        H, W = int(info["height"]), int(info["width"])
        kept = []
        for ann in coco.imgToAnns.get(img_id, []):
            result = check_annotation(ann, H, W, categories)
            if isinstance(result, str):
                reasons[result] += 1
            else:
                kept.append(result)
        entries[img_id] = kept
    orphans = sum(a["image_id"] not in coco.imgs for a in data.get("annotations", []))
    if orphans:
        reasons[UNKNOWN_IMAGE] = orphans
    return entries, dict(reasons.most_common())


def skipped_summary(skipped: dict[str, int]) -> str:
    """``skipped N annotations: n1 reason1, n2 reason2`` (most common first)."""
    total = sum(skipped.values())
    parts = ", ".join(f"{n} {reason}" for reason, n in skipped.items())
    return f"skipped {total} annotation{'s' if total != 1 else ''}: {parts}"


def index_images(
    image_ids: Sequence[int], entries: dict[int, list[Entry]], skip_empty: bool
) -> list[int]:
    """The image ids the dataset serves, in file order; with ``skip_empty`` only those
    with a usable non-crowd instance."""
    return [
        img_id
        for img_id in image_ids
        if not skip_empty or any(label >= 0 for _, _, label in entries[img_id])
    ]


def _clipped_box(
    ann: dict[str, Any], height: int, width: int
) -> tuple[float, float, float, float] | str:
    """The annotation's box as xyxy clipped to the image, or the reason it is unusable."""
    H, W = height, width
    bbox = ann.get("bbox")
    if bbox is None:  # derive it from the segmentation
        seg = ann["segmentation"]
        if isinstance(seg, PackedPolygon):
            seg = seg.rings()
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
    if isinstance(seg, PackedPolygon):  # rings of numbers: as the list case below
        if not seg.lengths:
            return NO_SEGMENTATION
        return None if max(seg.lengths) >= 6 else SHORT_POLYGON
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
    if isinstance(seg, PackedPolygon):
        seg = seg.rings()
    if isinstance(seg, list):
        rings = [ring[: len(ring) // 2 * 2] for ring in seg if len(ring) >= 6]
        return mask_utils.merge(mask_utils.frPyObjects(rings, height, width))
    if isinstance(seg["counts"], list):
        return mask_utils.frPyObjects(seg, height, width)
    if isinstance(seg["counts"], str):
        return {"size": [height, width], "counts": seg["counts"].encode("ascii")}
    return seg
