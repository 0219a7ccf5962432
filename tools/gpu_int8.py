"""TensorRT INT8 in the GPU report (``tools/gpu_report.py``): the INT8 export its
timing rows run, and the agreement of TensorRT INT8 with float32 on the demo model.

An INT8 ``.onnx`` file (``yolact export --int8``: onnxruntime's static QDQ
quantization, scales measured on the calibration images) runs on CUDA through
onnxruntime's TensorRT provider with ``trt_int8_enable``: TensorRT's explicit
quantization, the scales taken from the Q/DQ nodes
(:func:`yolact.backends.runtimes.tensorrt_int8_options`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# The repository root: this file is tools/gpu_int8.py.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "weights", "yolact_tiny_synthetic.pth")
# The demo's scenes (yolact.demo: up to 3 shapes of 14-30% of the side, 160 px).
DEMO_SCENES = {"size": (160, 160), "max_objects": 3, "radius_range": (0.14, 0.3)}
CALIB_IMAGES = 64
AGREEMENT_IMAGES = 40
# The criteria: same class, boxes within 3 px, mask IoU >= 0.9.
BOX_PX = 3.0
MIN_MASK_IOU = 0.9


def write_frames(frames: Sequence[np.ndarray], folder: str) -> str:
    """``frames`` as PNG files in ``folder`` (made), for ``--calib``."""
    import cv2

    os.makedirs(folder, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(os.path.join(folder, f"{i:04d}.png"), frame)
    return folder


def export_int8_onnx(checkpoint: str, folder: str, calib: str, calib_size: int) -> str:
    """``folder/model_int8.onnx``: ``checkpoint`` quantized over the images in ``calib``
    (any batch size, unchecked: the report's checkpoints have random weights)."""
    from yolact.backends.int8_export import Int8Options
    from yolact.export import export

    return export(
        checkpoint, os.path.join(folder, "model_int8.onnx"), "onnx", dynamic_batch=True,
        check=False, log=False, int8=Int8Options(calib, calib_size),
    )  # fmt: skip


@dataclass
class PairStats:
    """float32 detections (score >= 0.5) paired with INT8 ones of the same class."""

    box_px: list[float] = field(default_factory=list)
    mask_iou: list[float] = field(default_factory=list)
    lost: int = 0

    @property
    def close(self) -> int:
        return sum(
            px <= BOX_PX and iou >= MIN_MASK_IOU for px, iou in zip(self.box_px, self.mask_iou)
        )

    def line(self, what: str) -> str:
        n = len(self.box_px) + self.lost
        if not self.box_px:
            return f"{what}: {n} detections, none paired"
        return (
            f"{what}: {self.close}/{n} float32 detections (score >= 0.5) found with the same "
            f"class, box within {BOX_PX:g} px and mask IoU >= {MIN_MASK_IOU:g} ({self.lost} "
            f"class(es) lost); max box difference {max(self.box_px):.1f} px, min mask IoU "
            f"{min(self.mask_iou):.3f}, mean {float(np.mean(self.mask_iou)):.3f}"
        )


def pair_detections(ref: object, got: object, stats: PairStats) -> None:
    """Pair each of ``ref``'s detections with ``got``'s detection of its class whose box
    overlaps it most (near-equal scores may swap places) and add the pair to ``stats``."""
    from yolact.backends.agreement import box_iou, mask_iou

    a, b = ref, got
    boxes_a, boxes_b = a.boxes.float().numpy(), b.boxes.float().numpy()  # type: ignore[attr-defined]
    labels_a, labels_b = a.labels.numpy(), b.labels.numpy()  # type: ignore[attr-defined]
    ious = box_iou(boxes_a, boxes_b) if len(boxes_b) else np.zeros((len(boxes_a), 0))
    for j in range(len(boxes_a)):
        same = [k for k in range(len(boxes_b)) if labels_b[k] == labels_a[j]]
        if not same:
            stats.lost += 1
            continue
        k = max(same, key=lambda k: ious[j, k])
        stats.box_px.append(float(np.abs(boxes_a[j] - boxes_b[k]).max()))
        stats.mask_iou.append(
            mask_iou(a.masks[j].numpy() > 0.5, b.masks[k].numpy() > 0.5)  # type: ignore[attr-defined]
        )


def demo_int8_agreement(
    folder: str,
    device: str = "cuda",
    tensorrt: bool | None = True,
    images: int = AGREEMENT_IMAGES,
    calib_images: int = CALIB_IMAGES,
) -> tuple[str, PairStats]:
    """The demo model exported to INT8 ONNX (calibrated on ``calib_images`` generated
    demo scenes of another seed) and run with ``tensorrt`` on ``device``, against the
    float32 checkpoint in PyTorch on ``images`` demo val scenes.

    Returns:
        The report's line and the pairs.
    """
    import cv2

    from yolact import registry
    from yolact.data.synthetic import write_coco_dataset

    calib = write_coco_dataset(os.path.join(folder, "demo_calib"), calib_images, 0, seed=5,
                               **DEMO_SCENES)  # type: ignore[arg-type]  # fmt: skip
    val = write_coco_dataset(os.path.join(folder, "demo_val"), 0, images, seed=0,
                             **DEMO_SCENES)  # type: ignore[arg-type]  # fmt: skip
    path = export_int8_onnx(DEMO, os.path.join(folder, "demo_int8"), calib["train_image_dir"],
                            calib_images)  # fmt: skip
    ref = registry.load_predictor(DEMO, device=device, score_threshold=0.5)
    got = registry.load_predictor(path, device=device, score_threshold=0.3, tensorrt=tensorrt)
    stats = PairStats()
    for i in range(1, images + 1):
        image = cv2.imread(os.path.join(val["val_image_dir"], f"{i:06d}.png"))
        pair_detections(ref(image).to("cpu"), got(image).to("cpu"), stats)
    runtime = getattr(got, "runtime", None)
    name = getattr(runtime, "name", "?")
    return stats.line(f"demo model, {name} INT8 vs PyTorch float32 on {images} val scenes"), stats
