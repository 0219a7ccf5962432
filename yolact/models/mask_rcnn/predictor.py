"""The Mask R-CNN reference's predictor (the interface of :class:`yolact.core.predictor.Predictor`).

:class:`RCNNPredictor` takes BGR uint8 images like every predictor and returns the
same :class:`~yolact.core.structures.Detections`, so eval.py, the benchmark and
dataset evaluation run either family unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList

from yolact.core.predictor import Predictor
from yolact.core.preprocess import upload
from yolact.core.structures import Detections
from yolact.models.mask_rcnn.config import MaskRCNNConfig
from yolact.models.mask_rcnn.model import MaskRCNN
from yolact.runtime.gpu import GpuOptionError, half_dtype, to_float32


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


class RCNNPredictor(Predictor):
    """Runs a Mask R-CNN model on BGR images (the stages of
    :class:`~yolact.core.predictor.Predictor`).

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
        nms_method, crop: YOLACT's options; the reference's NMS is its config's, and
            its masks are its mask head's, so these have no effect.
        masks: paste masks at the image size; False leaves ``Detections.masks`` None.
        half: run the network under autocast, float16 on CUDA and bfloat16 on the
            CPU: convolutions and matrix products in reduced precision, while
            torchvision's RoIAlign, NMS and box coding take float32; its detections
            come back in float32.
        cuda_graph: refused in one line (the RPN and the RoI heads have
            data-dependent shapes).
        channels_last: the network in NHWC memory format; None: on with ``half``.

    Attributes:
        label_of_output: [num_classes] long, the 0-based class index of each classifier
            output, -1 for background and for outputs with no class (torchvision's "N/A").
    """

    model: MaskRCNN
    cfg: MaskRCNNConfig

    def prepare(self) -> None:
        """Refuse ``cuda_graph``; the table from classifier outputs to class indices."""
        if self.cuda_graph:
            raise GpuOptionError(
                "--cuda_graph needs fixed-shape post-processing, which the Mask R-CNN "
                "reference does not have (its RPN and RoI heads keep a varying number of boxes)"
            )
        ids = self.cfg.output_ids or tuple(range(1, len(self.cfg.class_names) + 1))
        table = torch.full((self.cfg.num_classes,), -1, dtype=torch.long)
        table[torch.tensor(ids, dtype=torch.long)] = torch.arange(len(ids))
        self.label_of_output = table.to(self.device)

    # The three stages, separately callable so that they can be timed one by one.

    def run_pre(self, images: Sequence[np.ndarray]) -> RCNNBatch:
        """BGR uint8 images [H, W, 3] -> RGB 0..1, resized, normalised and batched."""
        tensors = []
        for im in images:
            x = upload(im, self.device)  # [H, W, 3] BGR
            tensors.append(x.flip(-1).permute(2, 0, 1).float() / 255.0)  # [3, H, W] RGB
        batch, _ = self.model.preprocess(tensors)
        if self.channels_last:
            batch.tensors = batch.tensors.contiguous(memory_format=torch.channels_last)
        return RCNNBatch(batch, [(int(im.shape[0]), int(im.shape[1])) for im in images])

    @torch.no_grad()
    def network(self, batch: RCNNBatch) -> RCNNOutput:
        """The network alone: backbone, FPN, RPN (with its NMS) and RoI heads (box NMS,
        28x28 mask probabilities), in the resized frame; float32 also with ``half``."""
        with torch.autocast(self.device.type, dtype=half_dtype(self.device), enabled=self.half):
            detections, _ = self.model.network(batch.images)
        return RCNNOutput(to_float32(detections), list(batch.images.image_sizes))

    def run_network(self, batch: RCNNBatch) -> RCNNOutput:
        """Raw detections at the model's resolution: :meth:`network`."""
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
