"""INT8 under accuracy control: NNCF keeps the layers that cost the most mask AP in
float until the drop against float32 is within a bound.

The metric is COCO mask AP (IoU .50:.95) over a validation set, computed with
pycocotools through the project's evaluation code, the predictor keeping every
detection as for ``eval.py --dataset``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from yolact.backends.meta import ExportMeta
from yolact.backends.predictor import ExportedPredictor
from yolact.backends.quantize import QuietLogs, import_nncf, nncf_ignored_scope
from yolact.backends.runtimes import CompiledOpenVino, signal_stack_kept
from yolact.core.config import ModelConfig
from yolact.core.family import ExportError
from yolact.core.options import PredictorOptions


@dataclass
class AccuracyReport:
    """What accuracy control reached.

    Attributes:
        max_drop: the bound asked for (mask AP, 0-1).
        float_ap, int8_ap: mask AP of the float32 graph and of the result.
        images: validation images.
        float_layers: quantizers NNCF removed (layers kept in float).
    """

    max_drop: float
    float_ap: float
    int8_ap: float
    images: int
    float_layers: int

    @property
    def drop(self) -> float:
        return self.float_ap - self.int8_ap

    def line(self) -> str:
        above = ", ABOVE the bound: NNCF could not reach it" if self.drop > self.max_drop else ""
        return (
            f"accuracy control: mask AP {self.float_ap:.4f} (float32) -> {self.int8_ap:.4f} "
            f"(INT8) on {self.images} validation images, drop {self.drop:+.4f} "
            f"(bound {self.max_drop:g}{above}); {self.float_layers} quantizer(s) removed"
        )

    def as_dict(self) -> dict[str, float | int]:
        return {
            "max_ap_drop": self.max_drop, "float_mask_ap": round(self.float_ap, 5),
            "int8_mask_ap": round(self.int8_ap, 5), "achieved_drop": round(self.drop, 5),
            "images": self.images, "quantizers_removed": self.float_layers,
        }  # fmt: skip


class MaskApValidator:
    """NNCF's validation function: a compiled model and image indices -> mask AP.

    Args:
        ann_file, image_dir: the COCO validation set.
        cfg, meta: the model's config and the graph's metadata.
        max_images: use the first this many images (-1: all).

    Raises:
        ExportError: an unreadable validation set, or one without ground truth,
            in one line.
    """

    def __init__(
        self, ann_file: str, image_dir: str, cfg: ModelConfig, meta: ExportMeta,
        max_images: int = -1,
    ) -> None:  # fmt: skip
        from yolact.data.coco import CocoDataset, DatasetError
        from yolact.engine.evaluate import _ground_truth, has_ground_truth

        try:
            self.dataset = CocoDataset(ann_file, image_dir, class_names=cfg.class_names)
        except DatasetError as e:
            raise ExportError(f"--val_ann: {e}") from None
        if not has_ground_truth(self.dataset.coco):
            raise ExportError(f"--val_ann {ann_file}: no annotations to measure AP against")
        self.gt = _ground_truth(self.dataset)
        self.cfg, self.meta = cfg, meta
        count = len(self.dataset) if max_images < 0 else min(max_images, len(self.dataset))
        self.indices = list(range(count))

    def __call__(self, compiled: Any, items: Iterable[int]) -> tuple[float, None]:
        from yolact.engine.evaluate import coco_evaluate, detections_to_results

        predictor = ExportedPredictor(
            "candidate", self.cfg, PredictorOptions(device="cpu"), self.meta,
            runtime=CompiledOpenVino(compiled),
        )  # fmt: skip
        cat_ids = list(self.dataset.label_to_category_id)
        segm: list[dict[str, Any]] = []
        image_ids = []
        for index in items:
            sample = self.dataset[int(index)]
            det = predictor(sample["image"])
            segm += detections_to_results(det, sample["image_id"], cat_ids)[1]
            image_ids.append(sample["image_id"])
        stats = coco_evaluate(self.gt, segm, "segm", image_ids, cat_ids)[0]
        return stats["AP"], None


def _quantizers(model: Any) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())


def quantize_with_ap_control(
    model: Any, batches: Sequence[np.ndarray], validator: MaskApValidator, max_drop: float
) -> tuple[Any, AccuracyReport]:
    """NNCF's quantization with accuracy control of an OpenVINO model (the network
    alone, as :func:`~yolact.backends.quantize.quantize_openvino`), the drop in
    mask AP held within ``max_drop`` (absolute, 0-1).

    Returns:
        The quantized ``openvino.Model`` and what it reached (measured again here
        on the whole validation set).
    """
    import openvino as ov

    nncf = import_nncf()
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    validation = nncf.Dataset(validator.indices)
    # Layers are ranked by the AP of subsets; a subset of a few images gives AP steps
    # too coarse to rank by, so it is the whole (small) validation set, up to 50.
    restorer = AdvancedAccuracyRestorerParameters(
        ranking_subset_size=min(len(validator.indices), 50)
    )
    try:
        with QuietLogs():
            quantized = nncf.quantize_with_accuracy_control(
                model, nncf.Dataset(list(batches)), validation, validator, max_drop=max_drop,
                subset_size=len(batches), ignored_scope=nncf_ignored_scope(),
                advanced_accuracy_restorer_parameters=restorer,
            )  # fmt: skip
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 (NNCF and OpenVINO raise many kinds)
        line = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ExportError(f"NNCF's accuracy control failed: {line}") from None
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    with signal_stack_kept():  # as OpenVinoRuntime does
        core = ov.Core()
        float_compiled = core.compile_model(model, "CPU", config)
        int8_compiled = core.compile_model(quantized, "CPU", config)
    float_ap = validator(float_compiled, validator.indices)[0]
    int8_ap = validator(int8_compiled, validator.indices)[0]
    removed = max(0, _full_quantizers(model, batches) - _quantizers(quantized))
    return quantized, AccuracyReport(max_drop, float_ap, int8_ap, len(validator.indices), removed)


def _full_quantizers(model: Any, batches: Sequence[np.ndarray]) -> int:
    """FakeQuantize nodes plain post-training quantization places (for the count of
    those accuracy control removed)."""
    from yolact.backends.quantize import quantize_openvino

    return _quantizers(quantize_openvino(model, batches[:1]))
