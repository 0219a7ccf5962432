"""High-level inference for the Mask R-CNN reference, with YOLACT's Predictor interface.

:class:`RCNNPredictor` takes BGR uint8 images like :class:`yolact.models.yolact.predictor.Predictor`
and returns the same :class:`~yolact.core.structures.Detections`, so eval.py, the
benchmark and dataset evaluation run either model unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList

from yolact.core.structures import Detections
from yolact.core.weights import Checkpoint, resolve_config
from yolact.models.mask_rcnn.config import MaskRCNNConfig
from yolact.models.mask_rcnn.model import MaskRCNN
from yolact.models.mask_rcnn.weights import build_rcnn
from yolact.models.yolact.predictor import StagedPredictor


@dataclass
class RCNNBatch:
    """Pre-processed images: the padded batch and the sizes before resizing."""

    images: ImageList
    original_sizes: list[tuple[int, int]]


@dataclass
class RCNNOutput:
    """The network's detections in the resized frame, with that frame's sizes."""

    detections: list[dict[str, Tensor]]
    image_sizes: list[tuple[int, int]]


class RCNNPredictor(StagedPredictor):
    """Runs a Mask R-CNN model on BGR images.

    Example::

        predictor = RCNNPredictor.from_checkpoint("maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth")
        det = predictor(cv2.imread("photo.jpg"))

    Args:
        model: a built model (its weights loaded).
        device: where to run; default the model's device.
        score_threshold: detections scoring at or below this are dropped (0 keeps all
            the model returns; the model itself keeps scores above ``box_score_thresh``).
        top_k: keep at most this many per image; None keeps all (at most
            ``detections_per_img``).
        masks: paste masks at the image size; False leaves ``Detections.masks`` None.

    Attributes:
        label_of_output: [num_classes] long, the 0-based class index of each classifier
            output, -1 for background and for outputs with no class (torchvision's "N/A").
    """

    def __init__(
        self,
        model: MaskRCNN,
        device: str | torch.device | None = None,
        score_threshold: float = 0.0,
        top_k: int | None = None,
        masks: bool = True,
    ) -> None:
        self.device = (
            torch.device(device) if device is not None else next(model.parameters()).device
        )
        self.model = model.to(self.device).eval()
        self.cfg: MaskRCNNConfig = model.cfg
        self.score_threshold = score_threshold
        self.top_k = top_k
        self.masks = masks
        ids = self.cfg.output_ids or tuple(range(1, len(self.cfg.class_names) + 1))
        table = torch.full((self.cfg.num_classes,), -1, dtype=torch.long)
        table[torch.tensor(ids, dtype=torch.long)] = torch.arange(len(ids))
        self.label_of_output = table.to(self.device)

    @classmethod
    def from_checkpoint(
        cls,
        path: str,
        config: str | None = None,
        device: str | None = None,
        score_threshold: float = 0.0,
        top_k: int | None = None,
        masks: bool = True,
        class_names: Sequence[str] | None = None,
    ) -> RCNNPredictor:
        """Build the model for a checkpoint (this project's or torchvision's); the
        config comes from ``config``, the file, its name or its layout, the classes
        from the file (``class_names`` name those of a file that stores none)."""
        from yolact.models.yolact.predictor import select_device

        cfg, ckpt = resolve_config(path, config, class_names)
        if not isinstance(cfg, MaskRCNNConfig):
            raise ValueError(
                f"config '{cfg.name}' is YOLACT's; use yolact.models.yolact.predictor.Predictor"
            )
        device_ = select_device(device)
        return cls.from_config(cfg, ckpt, device_, path, score_threshold, top_k, masks)

    @classmethod
    def from_config(
        cls,
        cfg: MaskRCNNConfig,
        checkpoint: Checkpoint | None,
        device: torch.device | str | None = None,
        source: str = "checkpoint",
        score_threshold: float = 0.0,
        top_k: int | None = None,
        masks: bool = True,
    ) -> RCNNPredictor:
        """The model for ``cfg`` with ``checkpoint``'s weights (random without one)."""
        model = build_rcnn(cfg, checkpoint, source)
        return cls(model, device, score_threshold, top_k, masks)

    @property
    def class_names(self) -> Sequence[str]:
        return self.cfg.class_names

    # The three stages, separately callable so that they can be timed one by one.

    def run_pre(self, images: Sequence[np.ndarray]) -> RCNNBatch:
        """BGR uint8 images [H, W, 3] -> RGB 0..1, resized, normalised and batched."""
        tensors = []
        for im in images:
            x = torch.from_numpy(np.ascontiguousarray(im)).to(self.device)  # [H, W, 3] BGR
            tensors.append(x.flip(-1).permute(2, 0, 1).float() / 255.0)  # [3, H, W] RGB
        batch, _ = self.model.preprocess(tensors)
        return RCNNBatch(batch, [(int(im.shape[0]), int(im.shape[1])) for im in images])

    @torch.no_grad()
    def network(self, batch: RCNNBatch) -> RCNNOutput:
        """The network alone: backbone, FPN, RPN and RoI heads."""
        detections, _ = self.model.network(batch.images)
        return RCNNOutput(detections, list(batch.images.image_sizes))

    def run_network(self, batch: RCNNBatch) -> RCNNOutput:
        return self.network(batch)

    @torch.no_grad()
    def run_post(
        self, outputs: RCNNOutput, image_sizes: Sequence[tuple[int, int]]
    ) -> list[Detections]:
        """Detections at the original image sizes: boxes scaled, masks pasted and
        thresholded at 0.5, labels made 0-based class indices."""
        dets = []
        for raw, resized, size in zip(outputs.detections, outputs.image_sizes, image_sizes):
            raw = dict(raw)
            if not self.masks:
                raw.pop("masks", None)
            H, W = int(size[0]), int(size[1])
            labels = self.label_of_output[raw["labels"]]  # [N], -1: no class
            keep = labels >= 0
            if self.score_threshold > 0:
                keep &= raw["scores"] > self.score_threshold
            index = torch.where(keep)[0]
            if self.top_k is not None:
                index = index[: self.top_k]
            raw = {k: v[index] for k, v in raw.items()}
            out = self.model.postprocess([raw], [resized], [(H, W)])[0]
            masks = out["masks"][:, 0] > 0.5 if self.masks else None  # [N, H, W]
            scores = out["scores"]
            dets.append(
                Detections(
                    boxes=out["boxes"],
                    labels=labels[index],
                    scores=scores,
                    box_scores=scores,
                    mask_scores=scores,
                    masks=masks,
                    image_size=(H, W),
                    class_names=tuple(self.cfg.class_names),
                )  # fmt: skip
            )
        return dets
