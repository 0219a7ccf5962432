"""YOLACT's predictor: load a model once, run it on BGR images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from yolact.core.ops.nms import NMSMethod
from yolact.core.padded import PaddedDetections, select, to_detections
from yolact.core.predictor import Predictor
from yolact.core.structures import Detections
from yolact.models.yolact.config import YolactConfig
from yolact.models.yolact.fixed_post import YolactInference
from yolact.models.yolact.model import Yolact
from yolact.models.yolact.preprocess import Preprocessor


class YolactPredictor(Predictor):
    """Runs a YOLACT model on BGR images (the stages of :class:`~yolact.core.predictor.Predictor`).

    Example::

        predictor = YolactPredictor.from_checkpoint("weights/yolact_base_54_800000.pth")
        det = predictor(cv2.imread("photo.jpg"))
        det.boxes, det.scores, det.names, det.masks, det.polygons()

    Args:
        model: a built model (its weights loaded).
        device, score_threshold, top_k, nms_method, crop, masks: see
            :class:`~yolact.core.predictor.Predictor`; ``nms_method`` None is
            the config's.

    Attributes:
        inference: the network and the fixed-shape post-processing
            (:class:`~yolact.models.yolact.fixed_post.YolactInference`).
        postprocess: its post-processing module.
    """

    model: Yolact
    cfg: YolactConfig

    def __init__(
        self,
        model: Yolact,
        *,
        device: str | torch.device | None = None,
        score_threshold: float = 0.0,
        top_k: int | None = None,
        nms_method: NMSMethod | None = None,
        crop: bool = True,
        masks: bool = True,
    ) -> None:
        super().__init__(
            model, device=device, score_threshold=score_threshold, top_k=top_k,
            nms_method=nms_method, crop=crop, masks=masks,
        )  # fmt: skip
        cfg = self.cfg = model.cfg
        nms = cfg.nms if nms_method is None else cfg.with_nms(method=nms_method).nms
        self.preprocess = Preprocessor(cfg, self.device)
        self.inference = YolactInference(model, nms, crop).eval()
        self.postprocess = self.inference.post

    def run_pre(self, images: Sequence[np.ndarray]) -> Tensor:
        """BGR uint8 images -> the network's input batch [B, 3, S, S]."""
        return self.preprocess(images)

    @torch.no_grad()
    def network(self, batch: Tensor) -> dict[str, Tensor]:
        """The network alone on a pre-processed batch [B, 3, S, S]: raw predictions."""
        return self.model(batch)

    @torch.no_grad()
    def run_network(self, batch: Tensor) -> PaddedDetections:
        """The network, box decoding, NMS and masks at prototype resolution, in
        fixed shapes on the device, with the score threshold and top-k applied."""
        return select(self.inference.detect(batch), self.score_threshold, self.top_k)

    @torch.no_grad()
    def run_post(
        self, raw: PaddedDetections, image_sizes: Sequence[tuple[int, int]]
    ) -> list[Detections]:
        """Detections at the original image sizes: boxes in pixels, masks pasted
        (only the counted ones, each inside its box)."""
        return to_detections(
            raw, image_sizes, self.cfg.class_names, masks=self.masks, crop=self.crop
        )
