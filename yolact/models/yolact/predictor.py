"""High-level inference: load a model once, run it on BGR images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from yolact.core.structures import Detections
from yolact.core.weights import load_weights, resolve_config
from yolact.io.images import to_bgr8_batch
from yolact.models.yolact.config import YolactConfig
from yolact.models.yolact.model import Yolact, build_model
from yolact.models.yolact.postprocess import PostProcessor
from yolact.models.yolact.preprocess import Preprocessor


def select_device(device: str | None = None) -> torch.device:
    """``device`` if given ("cpu", "cuda", "cuda:1"), else CUDA when available, else CPU.

    Raises:
        ValueError: CUDA asked for but not available, or an unknown device string.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device '{device}'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' asked for, but CUDA is not available here")
    return dev


class StagedPredictor:
    """Calling convention shared by the predictors: subclasses provide
    ``run_pre`` (BGR images -> network input), ``run_network`` and ``run_post``
    (outputs, image sizes -> list of :class:`Detections`)."""

    @torch.no_grad()
    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> Detections | list[Detections]:
        """Detect instances.

        Args:
            images: one image or a list of them (sizes may differ): [H, W] gray,
                [H, W, 3] BGR or [H, W, 4] BGRA; uint8, uint16 or float in [0, 1].
                Gray, BGRA, 16-bit and float images are converted to 8-bit BGR
                as eval.py converts the files it reads.

        Returns:
            :class:`Detections` for one image, a list of them for a list.

        Raises:
            yolact.io.images.InputError: an image that cannot be used (None as
                ``cv2.imread`` returns for a bad path, a wrong dtype, shape or
                channel count, an empty array), in one line.
        """
        batch, single = to_bgr8_batch(images)
        if not batch:
            return []
        dets = self.run_post(self.run_network(self.run_pre(batch)), [im.shape[:2] for im in batch])
        return dets[0] if single else dets


class Predictor(StagedPredictor):
    """Runs a YOLACT model on BGR images.

    Example::

        predictor = Predictor.from_checkpoint("weights/yolact_base_54_800000.pth")
        det = predictor(cv2.imread("photo.jpg"))
        det.boxes, det.scores, det.names, det.masks, det.polygons()

    Args:
        model: a built model (its weights loaded).
        device: where to run; default the model's device.
        score_threshold, top_k, crop, masks: see :class:`PostProcessor`.
        nms_method: "fast", "cross_class" or "standard"; default the config's.
    """

    def __init__(
        self,
        model: Yolact,
        device: str | torch.device | None = None,
        score_threshold: float = 0.0,
        top_k: int | None = None,
        nms_method: str | None = None,
        crop: bool = True,
        masks: bool = True,
    ) -> None:
        self.device = (
            torch.device(device) if device is not None else next(model.parameters()).device
        )
        self.model = model.to(self.device).eval()
        cfg: YolactConfig = model.cfg
        self.cfg = cfg
        nms = cfg.nms if nms_method is None else cfg.with_nms(method=nms_method).nms
        self.preprocess = Preprocessor(cfg, self.device)
        self.postprocess = PostProcessor(
            nms, cfg.class_names, score_threshold, top_k, crop, masks, classifier=cfg.classifier
        )

    @classmethod
    def from_checkpoint(
        cls,
        path: str,
        config: str | None = None,
        device: str | None = None,
        class_names: Sequence[str] | None = None,
        **kwargs,
    ) -> Predictor:
        """Build the model for a checkpoint (config inferred from the file when not given).

        A named ``config`` gives the architecture; the classes come from the file
        (its stored class names, or its class layer's size with ``class_names``
        or generic names; see :func:`yolact.core.weights.resolve_config`).

        A Mask R-CNN checkpoint or config gives a
        :class:`yolact.models.mask_rcnn.predictor.RCNNPredictor` (same interface); the
        YOLACT-only options ``nms_method`` and ``crop`` are then ignored.
        """
        cfg, ckpt = resolve_config(path, config, class_names)
        if not isinstance(cfg, YolactConfig):
            from yolact.models.mask_rcnn.predictor import RCNNPredictor  # it imports this module

            options = {k: v for k, v in kwargs.items() if k not in ("nms_method", "crop")}
            return RCNNPredictor.from_config(cfg, ckpt, select_device(device), path, **options)
        model = build_model(cfg)
        load_weights(model, ckpt, source=path)
        return cls(model, select_device(device), **kwargs)

    @property
    def class_names(self) -> Sequence[str]:
        return self.cfg.class_names

    # The three stages, separately callable so that they can be timed one by one
    # (yolact.apps.benchmark); any predictor with these methods can be benchmarked.

    def run_pre(self, images: Sequence[np.ndarray]) -> Tensor:
        """BGR uint8 images -> the network's input batch."""
        return self.preprocess(images)

    @torch.no_grad()
    def network(self, batch: Tensor) -> dict:
        """The network alone on a pre-processed batch [B, 3, S, S]."""
        return self.model(batch)

    def run_network(self, batch: Tensor) -> dict:
        return self.network(batch)

    @torch.no_grad()
    def run_post(self, outputs: dict, image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Raw outputs -> detections at the original image sizes."""
        return self.postprocess(outputs, image_sizes, getattr(self.model, "maskiou_net", None))
