"""Dataset evaluation: COCO box and mask AP with pycocotools' COCOeval.

The predictor runs on each raw BGR image exactly as ``eval.py --image`` does, so
dataset numbers match single-image inference. As in the original YOLACT, box
results are scored with the class confidence (``box_scores``) and mask results
with the mask score (``mask_scores``, re-scored for YOLACT++); the two lists are
evaluated separately. Under ``torch.distributed`` each rank takes a shard of the
images and rank 0 gathers the results and runs COCOeval.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yolact.core.structures import Detections
from yolact.data.coco import CocoDataset, DatasetError
from yolact.io.coco_json import encode_masks

IOU_TYPES = ("bbox", "segm")
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")
IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
_ROW_NAMES = {"bbox": "box", "segm": "mask"}
# AP is printed, logged and stored as COCOeval gives it: a fraction from 0 to 1.
AP_UNIT = "0-1"
# (dataset index, box results, mask results) of each image.
PerImage = list[tuple[int, list[dict[str, Any]], list[dict[str, Any]]]]


class ImagePredictor(Protocol):
    """What evaluation needs of a predictor: one BGR uint8 image -> Detections
    (a :class:`~yolact.core.predictor.Predictor` given one image)."""

    def __call__(self, images: np.ndarray, /) -> Detections: ...


@dataclass
class EvalResult:
    """The outcome of a dataset evaluation.

    Attributes:
        metrics: ``{"bbox": {"AP", "AP50", "AP75", "APs", "APm", "APl"}, "segm": {...}}``
            as ``COCOeval.stats`` reports them (0..1, -1 where COCO says undefined);
            None without ground truth and on ranks other than 0.
        per_class: ``{"bbox": {class name: AP}, "segm": {...}}``, AP at IoU .50:.95,
            area all, 100 detections (-1 for classes without ground truth); or None.
        bbox_results: COCO results ``{image_id, category_id, bbox [x, y, w, h], score}``.
        segm_results: COCO results ``{image_id, category_id, segmentation (RLE), score}``.
        num_images: images evaluated (all ranks together on rank 0, own shard elsewhere).
        per_iou: ``{"bbox": [AP at IoU .50, .55, ..., .95], "segm": [...]}``, or None.
        summary: the text ``COCOeval.summarize()`` prints, per IoU type.
        class_names: the dataset's class names, in label order.
    """

    metrics: dict[str, dict[str, float]] | None
    per_class: dict[str, dict[str, float]] | None
    bbox_results: list[dict[str, Any]]
    segm_results: list[dict[str, Any]]
    num_images: int
    per_iou: dict[str, list[float]] | None = None
    summary: dict[str, str] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()

    def table(self) -> str:
        """AP tables, 0-1 as COCOeval reports them (the corner cell says so): the
        summary, AP per IoU threshold (the original's table) and AP per class;
        "-" marks values COCO leaves undefined."""
        if self.metrics is None:
            return f"{self.num_images} images, {len(self.bbox_results)} detections (no metrics)"
        types = list(self.metrics)
        corner = f"AP ({AP_UNIT})"
        rows = {_ROW_NAMES[t]: list(self.metrics[t].values()) for t in types}
        parts = [_grid(list(STAT_NAMES), rows, corner)]
        if self.per_iou:
            header = ["all"] + [f"{t:.2f}"[1:] for t in IOU_THRESHOLDS]
            rows = {_ROW_NAMES[t]: [self.metrics[t]["AP"], *self.per_iou[t]] for t in types}
            parts.append(_grid(header, rows, corner))
        if self.per_class:
            names = list(self.per_class[types[0]])
            rows = {n: [self.per_class[t][n] for t in types] for n in names}
            parts.append(_grid([_ROW_NAMES[t] for t in types], rows, f"class {corner}"))
        return "\n\n".join(parts)


def format_aps(metrics: dict[str, dict[str, float]]) -> str:
    """One line of box and mask AP with its unit: ``box AP 0.6870, mask AP 0.7650 (0-1)``.

    Args:
        metrics: ``{"bbox": {"AP": ...}, "segm": {"AP": ...}}`` as in :class:`EvalResult`.
    """
    parts = [f"{_ROW_NAMES[t]} AP {metrics[t]['AP']:.4f}" for t in IOU_TYPES if t in metrics]
    return ", ".join(parts) + f" ({AP_UNIT})"


def _grid(header: list[str], rows: dict[str, list[float]], corner: str = "") -> str:
    """A text table of APs (0-1, four decimals); -1 (undefined) shows as "-"."""
    width = max([len(corner), 6, *(len(name) for name in rows)])
    cells = [f" {h:^6} " for h in header]
    line = "+".join(["-" * (width + 1)] + ["-" * len(c) for c in cells]) + "+"
    out = [f"{corner:>{width}} |" + "|".join(cells) + "|", line]
    for name, values in rows.items():
        shown = [f" {v:6.4f} " if v > -1 else f" {'-':^6} " for v in values]
        out.append(f"{name:>{width}} |" + "|".join(shown) + "|")
    out.append(line)
    return "\n".join(out)


def detections_to_results(
    det: Detections, image_id: int, category_ids: list[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """COCO box and mask results of one image.

    Args:
        det: detections of the image; ``det.masks`` [N, H, W] is needed when N > 0.
        image_id: the image's id in the ground truth.
        category_ids: category id of each label.

    Returns:
        ``(bbox_results, segm_results)``, boxes scored with ``box_scores`` and masks
        with ``mask_scores``. Mask results carry no ``bbox`` (``loadRes`` would then
        take their area from the box).
    """
    if len(det) == 0:
        return [], []
    if det.masks is None:
        raise ValueError("the predictor returned no masks; mask evaluation needs them")
    cats = [category_ids[label] for label in det.labels.tolist()]
    xyxy = det.boxes.detach().cpu().double()  # [N, 4]
    xywh = torch.cat([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], dim=1).tolist()  # [N, 4]
    box_scores = det.box_scores.detach().cpu().tolist()
    mask_scores = det.mask_scores.detach().cpu().tolist()
    rles = encode_masks(det.masks.detach().cpu().numpy())
    bbox = [
        {"image_id": image_id, "category_id": c, "bbox": b, "score": s}
        for c, b, s in zip(cats, xywh, box_scores)
    ]
    segm = [
        {"image_id": image_id, "category_id": c, "segmentation": r, "score": s}
        for c, r, s in zip(cats, rles, mask_scores)
    ]
    return bbox, segm


def has_ground_truth(coco: COCO) -> bool:
    """Whether the annotation file holds any annotation (test-dev files hold none)."""
    return bool(coco.dataset.get("annotations"))


def _ground_truth(dataset: CocoDataset) -> COCO:
    """A private copy of the dataset's ground truth for COCOeval (which writes into it),
    with ``area``/``bbox`` filled in where an annotation lacks them."""
    src = dataset.coco
    anns = []
    for ann in src.dataset.get("annotations", []):
        ann = dict(ann)
        if "area" not in ann or "bbox" not in ann:
            rle = src.annToRLE(ann)
            ann.setdefault("area", float(mask_utils.area(rle)))
            ann.setdefault("bbox", mask_utils.toBbox(rle).tolist())
        anns.append(ann)
    cats = src.dataset.get("categories") or [
        {"id": c, "name": n} for c, n in zip(dataset.label_to_category_id, dataset.class_names)
    ]
    gt = COCO()
    gt.dataset = {"images": list(src.dataset["images"]), "annotations": anns, "categories": cats}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def _load_results(gt: COCO, results: list[dict[str, Any]]) -> COCO:
    """``gt.loadRes`` on copies of the results; an empty set gives an empty index
    (``loadRes`` fails on an empty list) so COCOeval scores 0 where ground truth exists."""
    if results:
        return gt.loadRes([dict(r) for r in results])
    dt = COCO()
    dt.dataset = {"images": list(gt.dataset["images"]), "annotations": [],
                  "categories": list(gt.dataset["categories"])}  # fmt: skip
    dt.createIndex()
    return dt


def _mean_defined(values: np.ndarray) -> float:
    """Mean of the entries > -1, or -1 when there are none (COCO's convention)."""
    defined = values[values > -1]
    return float(defined.mean()) if defined.size else -1.0


def coco_evaluate(
    gt: COCO, results: list[dict[str, Any]], iou_type: str, image_ids: list[int], cat_ids: list[int]
) -> tuple[dict[str, float], list[float], list[float], str]:
    """Run COCOeval once.

    Returns:
        ``(stats, per_iou, per_class, summary)``: the six summary numbers by name,
        AP at each IoU threshold .50..95, AP of each category in ``cat_ids`` order
        (IoU .50:.95, area all, 100 detections) and the printed summary text.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        dt = _load_results(gt, results)
        coco_eval = COCOeval(gt, dt, iou_type)
        coco_eval.params.imgIds = list(image_ids)
        coco_eval.params.catIds = list(cat_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        coco_eval.summarize()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, coco_eval.stats)}
    precision = coco_eval.eval["precision"][:, :, :, 0, -1]  # [T, R, K] area all, 100 dets
    per_iou = [_mean_defined(precision[t]) for t in range(precision.shape[0])]
    per_class = [_mean_defined(precision[:, :, k]) for k in range(precision.shape[2])]
    return stats, per_iou, per_class, text.getvalue().rstrip()


class EvaluationStoppedError(Exception):
    """A stop was requested during the evaluation (``should_stop`` gave ``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"evaluation stopped (signal {signum})")
        self.signum = signum


def _predict(
    predictor: ImagePredictor,
    dataset: CocoDataset,
    indices: list[int],
    progress: bool,
    rounds: int,
    should_stop: Callable[[], int] | None = None,
) -> PerImage:
    """(dataset index, bbox results, segm results) of each image in ``indices``.

    ``should_stop`` is called once before each of ``rounds`` rounds (one image or,
    past the end of a shorter shard, none), so every rank calls it equally often.
    """
    from tqdm import tqdm

    ids = list(dataset.label_to_category_id)
    out = []
    bar = tqdm(total=len(indices), desc="eval", unit="img", disable=not progress)
    try:
        for step in range(max(rounds, len(indices))):
            if should_stop is not None:
                signum = should_stop()
                if signum:
                    raise EvaluationStoppedError(signum)
            if step >= len(indices):
                continue
            index = indices[step]
            sample = dataset[index]
            det = predictor(sample["image"])
            out.append((index, *detections_to_results(det, int(sample["image_id"]), ids)))
            bar.update(1)
    finally:
        bar.close()
    return out


def evaluate_dataset(
    predictor: ImagePredictor,
    dataset: CocoDataset,
    *,
    max_images: int = -1,
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
    should_stop: Callable[[], int] | None = None,
) -> EvalResult:
    """Run the predictor over a dataset and score it with COCOeval (box and mask).

    The predictor should keep every detection (``score_threshold=0``, ``top_k=None``);
    COCO counts up to 100 per image.

    Args:
        predictor: BGR uint8 image -> :class:`Detections` (e.g. a ``Predictor``).
        dataset: a :class:`CocoDataset` without a transform.
        max_images: evaluate only the first this many images; -1 for all.
        progress: show a progress bar (rank 0 only).
        rank, world_size: this process's place in an initialised process group;
            rank ``r`` takes images ``r::world_size`` and rank 0 gathers.
        should_stop: called before each image (on every rank equally often, so it
            may hold a collective); a non-zero value (a signal number) stops the
            evaluation.

    Returns:
        An :class:`EvalResult`; ``metrics`` is None without ground truth and on
        ranks other than 0 (which hold only their own shard's results).

    Raises:
        EvaluationStoppedError: ``should_stop`` asked to stop.
    """
    if dataset.transform is not None:
        raise ValueError("evaluate the dataset without a transform: the predictor takes raw images")
    count = len(dataset) if max_images < 0 else min(max_images, len(dataset))
    indices = list(range(count))
    rounds = -(-count // world_size)
    shard = indices[rank::world_size]
    local = _predict(predictor, dataset, shard, progress and rank == 0, rounds, should_stop)
    if world_size > 1:
        gathered: list | None = [None] * world_size if rank == 0 else None
        dist.gather_object(local, gathered, dst=0)
        if rank != 0:
            return _result(local, None, None, None, {}, dataset.class_names)
        assert gathered is not None
        local = sorted((item for part in gathered for item in part), key=lambda item: item[0])
    if not has_ground_truth(dataset.coco):
        return _result(local, None, None, None, {}, dataset.class_names)
    gt = _ground_truth(dataset)
    image_ids = [dataset.image_ids[i] for i in indices]
    cat_ids = list(dataset.label_to_category_id)
    bbox, segm = _flatten(local)
    metrics, per_class, per_iou, summary = {}, {}, {}, {}
    for iou_type, results in zip(IOU_TYPES, (bbox, segm)):
        stats, ious, classes, text = coco_evaluate(gt, results, iou_type, image_ids, cat_ids)
        metrics[iou_type], per_iou[iou_type], summary[iou_type] = stats, ious, text
        per_class[iou_type] = dict(zip(dataset.class_names, classes))
    return _result(local, metrics, per_class, per_iou, summary, dataset.class_names)


def _flatten(items: PerImage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All box results and all mask results, in image order."""
    bbox = [r for _, b, _ in items for r in b]
    segm = [r for _, _, s in items for r in s]
    return bbox, segm


def _result(
    items: PerImage,
    metrics: dict[str, dict[str, float]] | None,
    per_class: dict[str, dict[str, float]] | None,
    per_iou: dict[str, list[float]] | None,
    summary: dict[str, str],
    names: tuple[str, ...],
) -> EvalResult:
    bbox, segm = _flatten(items)
    return EvalResult(metrics, per_class, bbox, segm, len(items), per_iou, summary, tuple(names))


def _write_json(obj: Any, path: str) -> str:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    if not path:
        raise ValueError("the output path is empty")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".eval-", suffix=".json.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_results(result: EvalResult, bbox_path: str, mask_path: str) -> tuple[str, str]:
    """Write the COCO box and mask result files (``--output_coco_json``); returns the paths."""
    return _write_json(result.bbox_results, bbox_path), _write_json(result.segm_results, mask_path)


def metrics_dict(result: EvalResult) -> dict[str, Any]:
    """``{"bbox": {...}, "segm": {...}, "per_class": {...}, "per_iou": {...},
    "num_images": n}``, JSON-ready (metrics None without ground truth)."""
    metrics = result.metrics or {}
    out: dict[str, Any] = {t: metrics.get(t) for t in IOU_TYPES}
    out.update(per_class=result.per_class, per_iou=result.per_iou, num_images=result.num_images)
    return out


def write_metrics(result: EvalResult, path: str) -> str:
    """Write ``metrics_dict(result)`` as JSON; returns the path."""
    return _write_json(metrics_dict(result), path)


def match_classes(
    dataset: CocoDataset, class_names: Sequence[str]
) -> tuple[CocoDataset, str | None]:
    """The dataset to score a model predicting ``class_names`` on.

    The same names in another order are matched by name (the dataset is re-read
    with ``class_names``); other names, same count, are taken in category-id
    order, with a note saying so.

    Returns:
        ``(dataset, note or None)``.

    Raises:
        DatasetError: the dataset has a different number of classes.
    """
    names = tuple(class_names)
    if dataset.num_classes != len(names):
        raise DatasetError(
            f"the model predicts {len(names)} classes but {os.path.basename(dataset.ann_file)} "
            f"has {dataset.num_classes} categories"
        )
    if dataset.class_names == names:
        return dataset, None
    if set(dataset.class_names) == set(names) and len(set(names)) == len(names):
        return CocoDataset(dataset.ann_file, dataset.image_dir, class_names=names), None
    note = (
        "note: the dataset's class names differ from the model's; label i is scored as "
        f"the i-th category of {os.path.basename(dataset.ann_file)} (by id)"
    )
    return dataset, note
