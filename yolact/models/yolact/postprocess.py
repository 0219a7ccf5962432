"""From raw network outputs to per-image detections at the original image size.

Steps, all on the model's device and without loops over classes or
detections: class scores (softmax, or sigmoid for a sigmoid classifier) ->
decode boxes -> candidate filter -> NMS -> (score threshold) -> masks =
sigmoid(P C^T) -> crop -> (YOLACT++ mask re-scoring) -> sort, top-k -> paste to
the image size and binarise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yolact.core.ops.boxes import boxes_to_pixels
from yolact.core.structures import Detections
from yolact.models.yolact.box_coding import decode
from yolact.models.yolact.config import CLASSIFIERS, Classifier, NMSConfig
from yolact.models.yolact.fast_nms import cross_class_fast_nms, fast_nms, standard_nms
from yolact.models.yolact.mask_assembly import assemble_masks, crop_masks, paste_masks


@dataclass
class RawDetections:
    """NMS survivors of one image, before mask assembly.

    Attributes:
        boxes: [D, 4] relative (x1, y1, x2, y2); labels: [D] 0-based;
        scores: [D]; coef: [D, k]; proto: [h, w, k].
    """

    boxes: Tensor
    labels: Tensor
    scores: Tensor
    coef: Tensor
    proto: Tensor


@dataclass
class ProtoDetections:
    """Detections of one image at prototype resolution, before pasting.

    Attributes:
        boxes: [D, 4] relative (x1, y1, x2, y2); labels: [D] 0-based;
        box_scores: [D] class scores; mask_scores: [D] after mask re-scoring
            (the final scores); masks: [D, h, w] soft masks in [0, 1].
    """

    boxes: Tensor
    labels: Tensor
    box_scores: Tensor
    mask_scores: Tensor
    masks: Tensor


def class_scores(conf: Tensor, classifier: Classifier = "softmax") -> Tensor:
    """Foreground class scores from class logits, as the classifier was trained.

    Args:
        conf: [B, P, C] logits, index 0 background.
        classifier: ``"softmax"`` (over all C, background included) or
            ``"sigmoid"`` (each foreground logit alone; the background logit is unused).

    Returns:
        [B, P, C-1] scores of the foreground classes.
    """
    if classifier == "softmax":
        return F.softmax(conf, dim=-1)[..., 1:]
    if classifier == "sigmoid":
        return torch.sigmoid(conf[..., 1:])
    raise ValueError(f"unknown classifier '{classifier}'; use one of {', '.join(CLASSIFIERS)}")


def detect(
    outputs: dict[str, Tensor], nms: NMSConfig, classifier: Classifier = "softmax"
) -> list[RawDetections]:
    """Decode and suppress the predictions of a batch.

    Args:
        outputs: the model's output dict (``conf`` holds logits).
        nms: detection settings.
        classifier: the model's ``YolactConfig.classifier`` (see :func:`class_scores`).

    Returns:
        One :class:`RawDetections` per image (possibly empty).
    """
    scores_all = class_scores(outputs["conf"], classifier)  # [B, P, C-1]
    boxes_all = decode(outputs["loc"], outputs["priors"])  # [B, P, 4]
    results = []
    for b in range(scores_all.shape[0]):
        fg = scores_all[b].t()  # [C-1, P]
        best, _ = fg.max(dim=0)
        keep = best > nms.conf_thresh
        boxes, scores, coef = boxes_all[b][keep], fg[:, keep], outputs["coef"][b][keep]
        if nms.method == "fast":
            idx, labels, det_scores = fast_nms(
                boxes, scores, nms.iou_thresh, nms.top_k, nms.max_detections
            )
        elif nms.method == "cross_class":
            idx, labels, det_scores = cross_class_fast_nms(
                boxes, scores, nms.iou_thresh, nms.top_k, nms.max_detections
            )
        else:
            idx, labels, det_scores = standard_nms(
                boxes, scores, nms.iou_thresh, nms.conf_thresh, nms.max_detections
            )
        results.append(
            RawDetections(boxes[idx], labels, det_scores, coef[idx], outputs["proto"][b])
        )
    return results


class PostProcessor:
    """Turns raw outputs into :class:`Detections`.

    Args:
        nms: detection settings.
        class_names: foreground class names.
        score_threshold: detections scoring at or below this are dropped
            (before mask re-scoring, as in the original); 0 keeps all.
        top_k: keep at most this many, by descending final score; None keeps all.
        crop: zero masks outside their boxes before upsampling.
        masks: compute full-resolution masks (False: boxes only).
        classifier: how the model's class logits become scores (its config's
            ``classifier``, see :func:`class_scores`).

    Raises:
        ValueError: an unknown ``classifier``.
    """

    def __init__(
        self,
        nms: NMSConfig,
        class_names: Sequence[str],
        score_threshold: float = 0.0,
        top_k: int | None = None,
        crop: bool = True,
        masks: bool = True,
        *,
        classifier: Classifier = "softmax",
    ) -> None:
        if classifier not in CLASSIFIERS:
            raise ValueError(
                f"unknown classifier '{classifier}'; use one of {', '.join(CLASSIFIERS)}"
            )
        self.nms = nms
        self.classifier = classifier
        self.class_names = tuple(class_names)
        self.score_threshold = score_threshold
        self.top_k = top_k
        self.crop = crop
        self.masks = masks

    def __call__(
        self,
        outputs: dict[str, Tensor],
        image_sizes: Sequence[tuple[int, int]],
        maskiou_net: nn.Module | None = None,
    ) -> list[Detections]:
        """Args:
        outputs: the model's output dict for a batch.
        image_sizes: (H, W) of each original image.
        maskiou_net: the YOLACT++ re-scoring net, or None.
        """
        raw = self.to_prototypes(outputs, maskiou_net)
        return [self.to_image(r, size) for r, size in zip(raw, image_sizes)]

    def to_prototypes(
        self, outputs: dict[str, Tensor], maskiou_net: nn.Module | None = None
    ) -> list[ProtoDetections]:
        """Decoding, NMS and masks at prototype resolution for a batch (the
        predictor's network stage ends here)."""
        raw = detect(outputs, self.nms, self.classifier)
        return [self.assemble(r, maskiou_net) for r in raw]

    def assemble(self, raw: RawDetections, maskiou_net: nn.Module | None) -> ProtoDetections:
        """Score threshold, masks at prototype resolution, crop and mask re-scoring."""
        if self.score_threshold > 0:
            keep = raw.scores > self.score_threshold
            raw = RawDetections(
                raw.boxes[keep], raw.labels[keep], raw.scores[keep], raw.coef[keep], raw.proto
            )
        soft = assemble_masks(raw.proto, raw.coef)  # [h, w, D]
        if self.crop:
            soft = crop_masks(soft, raw.boxes)
        soft = soft.permute(2, 0, 1).contiguous()  # [D, h, w]
        box_scores = raw.scores
        mask_scores = raw.scores
        if maskiou_net is not None and soft.shape[0] > 0:
            with torch.no_grad():
                iou = maskiou_net(soft[:, None])  # [D, C-1]
            iou = iou.gather(1, raw.labels[:, None]).squeeze(1)
            mask_scores = raw.scores * iou
        return ProtoDetections(raw.boxes, raw.labels, box_scores, mask_scores, soft)

    def to_image(self, det: ProtoDetections, image_size: tuple[int, int]) -> Detections:
        """Ordering, ``top_k``, boxes in pixels and masks pasted at the image size."""
        H, W = image_size
        scores = det.mask_scores
        order = torch.sort(scores, descending=True, stable=True).indices
        if self.top_k is not None:
            order = order[: self.top_k]
        if self.score_threshold > 0:
            order = order[scores[order] >= self.score_threshold]
        masks = paste_masks(det.masks[order], H, W) if self.masks else None
        return Detections(
            boxes=boxes_to_pixels(det.boxes[order], W, H),
            labels=det.labels[order],
            scores=scores[order],
            box_scores=det.box_scores[order],
            mask_scores=det.mask_scores[order],
            masks=masks,
            image_size=(H, W),
            class_names=self.class_names,
        )
