"""YOLACT's post-processing in fixed shapes, batched, on the model's device.

From raw outputs to :class:`~yolact.core.padded.PaddedDetections`: class scores
-> candidates (non-candidates get score -1) -> decoded boxes -> top-k per class
and Fast NMS over [B, C, K, K] -> masks sigmoid(P C^T) at prototype resolution
-> crop -> (YOLACT++ re-scoring and re-sorting). No Python branch on the data
and no host sync, so the same module runs eagerly, under CUDA graphs and inside
an exported graph (``standard`` NMS excepted: it loops over the images).

It gives the same detections as :class:`~yolact.models.yolact.postprocess.PostProcessor`,
which stays as the readable reference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from yolact.core.ops.boxes import sanitize_coordinates
from yolact.core.ops.nms import ordered_topk
from yolact.core.padded import PaddedDetections
from yolact.models.yolact.box_coding import decode
from yolact.models.yolact.config import CLASSIFIERS, NMSConfig
from yolact.models.yolact.fast_nms import (
    padded_cross_class_fast_nms,
    padded_fast_nms,
    padded_standard_nms,
)
from yolact.models.yolact.model import Yolact
from yolact.models.yolact.postprocess import class_scores


def crop_in_boxes(masks: Tensor, boxes: Tensor, padding: float = 1.0) -> Tensor:
    """:func:`~yolact.models.yolact.mask_assembly.crop_masks` for masks laid out detection first.

    The same rule (column c is inside when x1 <= c < x2, the box in mask pixels
    widened by ``padding``, rows alike) and the same values, as a product with a
    row factor and a column factor, so that no [h, w, N] copy is made.

    Args:
        masks: [B, D, h, w]; boxes: [B, D, 4] relative (x1, y1, x2, y2).

    Returns:
        [B, D, h, w].
    """
    h, w = masks.shape[-2:]
    x1, x2 = sanitize_coordinates(boxes[..., 0], boxes[..., 2], w, padding)  # [B, D]
    y1, y2 = sanitize_coordinates(boxes[..., 1], boxes[..., 3], h, padding)
    cols = torch.arange(w, device=masks.device, dtype=x1.dtype)
    rows = torch.arange(h, device=masks.device, dtype=y1.dtype)
    in_cols = (cols >= x1[..., None]) & (cols < x2[..., None])  # [B, D, w]
    in_rows = (rows >= y1[..., None]) & (rows < y2[..., None])  # [B, D, h]
    return masks * in_rows[..., None].to(masks.dtype) * in_cols[..., None, :].to(masks.dtype)


class FixedPostProcess(nn.Module):
    """Raw outputs of a batch -> padded detections with masks at prototype resolution.

    Args:
        nms: detection settings (``method`` "fast", "cross_class" or "standard").
        classifier: the model's ``YolactConfig.classifier``.
        crop: zero masks outside their boxes (widened by one prototype pixel).
        maskiou_net: the YOLACT++ re-scoring net, or None.

    Raises:
        ValueError: an unknown ``classifier`` or ``nms.method``.
    """

    def __init__(
        self,
        nms: NMSConfig,
        *,
        classifier: str = "softmax",
        crop: bool = True,
        maskiou_net: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if classifier not in CLASSIFIERS:
            raise ValueError(
                f"unknown classifier '{classifier}'; use one of {', '.join(CLASSIFIERS)}"
            )
        self.method = nms.method
        self.nms = nms
        self.classifier = classifier
        self.crop = crop
        self.maskiou_net = maskiou_net

    def suppress(self, boxes: Tensor, scores: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The configured NMS: boxes [B, P, 4], scores [B, C, P] -> index, class, score, count."""
        nms = self.nms
        if self.method == "fast":
            return padded_fast_nms(boxes, scores, nms.iou_thresh, nms.top_k, nms.max_detections)
        if self.method == "cross_class":
            return padded_cross_class_fast_nms(
                boxes, scores, nms.iou_thresh, nms.top_k, nms.max_detections
            )
        return padded_standard_nms(
            boxes, scores, nms.iou_thresh, nms.conf_thresh, nms.max_detections
        )

    def forward(
        self, loc: Tensor, conf: Tensor, coef: Tensor, proto: Tensor, priors: Tensor
    ) -> tuple[Tensor, ...]:
        """Args: the model's outputs: loc [B, P, 4], conf [B, P, C] logits,
        coef [B, P, k], proto [B, h, w, k], priors [P, 4].

        Returns:
            :class:`PaddedDetections` as a tuple (``as_tuple`` order): boxes
            [B, D, 4] relative, scores [B, D], box_scores [B, D], classes [B, D],
            masks [B, D, h, w] soft, count [B].
        """
        B, h, w, k = proto.shape
        fg = class_scores(conf, self.classifier)  # [B, P, C-1]
        best = fg.max(dim=2, keepdim=True).values  # [B, P, 1]
        fg = torch.where(best > self.nms.conf_thresh, fg, torch.full_like(fg, -1.0))
        boxes_all = decode(loc, priors)  # [B, P, 4]
        index, classes, scores, count = self.suppress(boxes_all, fg.transpose(1, 2))
        D = index.shape[1]
        boxes = boxes_all.gather(1, index[..., None].expand(B, D, 4))  # [B, D, 4]
        det_coef = coef.gather(1, index[..., None].expand(B, D, k))  # [B, D, k]
        logits = det_coef @ proto.reshape(B, h * w, k).transpose(1, 2)  # [B, D, hw]
        masks = torch.sigmoid(logits).reshape(B, D, h, w)
        if self.crop:
            masks = crop_in_boxes(masks, boxes)
        box_scores = scores
        if self.maskiou_net is not None:
            iou = self.maskiou_net(masks.reshape(B * D, 1, h, w)).reshape(B, D, -1)
            scores = scores * iou.gather(2, classes[..., None]).squeeze(2)  # [B, D]
            valid = torch.arange(D, device=scores.device)[None] < count[:, None]
            key = torch.where(valid, scores, torch.full_like(scores, -1.0))
            order = ordered_topk(key, D)[1]  # [B, D]
            boxes = boxes.gather(1, order[..., None].expand(B, D, 4))
            scores, box_scores = scores.gather(1, order), box_scores.gather(1, order)
            classes = classes.gather(1, order)
            masks = masks.gather(1, order[..., None, None].expand(B, D, h, w))
        return boxes, scores, box_scores, classes, masks, count


class YolactInference(nn.Module):
    """The network and :class:`FixedPostProcess` as one module: images -> padded detections.

    This is what the predictor runs and what is exported.

    Args:
        model: a YOLACT model in eval mode.
        nms, crop: see :class:`FixedPostProcess`; nms None is the config's.
    """

    def __init__(self, model: Yolact, nms: NMSConfig | None = None, crop: bool = True) -> None:
        super().__init__()
        self.model = model
        self.post = FixedPostProcess(
            model.cfg.nms if nms is None else nms,
            classifier=model.cfg.classifier,
            crop=crop,
            maskiou_net=getattr(model, "maskiou_net", None),
        )

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """images [B, 3, S, S] normalised RGB -> the tuple of :meth:`FixedPostProcess.forward`."""
        out = self.model(images)
        return self.post(out["loc"], out["conf"], out["coef"], out["proto"], out["priors"])

    def detect(self, images: Tensor) -> PaddedDetections:
        """:meth:`forward` as :class:`PaddedDetections`."""
        return PaddedDetections.from_tuple(self(images))
