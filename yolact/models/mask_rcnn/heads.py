"""Second stage of the Mask R-CNN reference: the RoI heads
(pooling: :mod:`yolact.models.mask_rcnn.poolers`).

The heads are torchvision's (``RoIHeads`` with ``TwoMLPHead``, ``FastRCNNPredictor``,
``MaskRCNNHeads``, ``MaskRCNNPredictor``); :class:`MaskRoIHeads` only replaces the
forward glue so that training schedules and test-time variants can reach inside:

- the proposal matcher's IoU thresholds (:attr:`MaskRoIHeads.fg_iou_thresh`,
  :attr:`MaskRoIHeads.bg_iou_thresh`) and the box loss's smooth-L1 beta
  (:attr:`MaskRoIHeads.box_loss_beta`) are plain attributes (Dynamic R-CNN);
- after each training forward :attr:`MaskRoIHeads.last_stats` holds the proposal
  IoUs and the positives' regression errors (Dynamic R-CNN's statistics);
- :attr:`MaskRoIHeads.mask_loss_extra` adds a term to the mask loss (edge loss);
- :attr:`MaskRoIHeads.nms_fn` replaces test-time NMS (Soft-NMS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_inference
from torchvision.ops import batched_nms, box_iou, roi_align
from torchvision.ops.boxes import clip_boxes_to_image

MaskLossExtra = Callable[[Tensor, Tensor], Tensor]


class NmsFn(Protocol):
    """Test-time suppression of one image's candidates.

    Args:
        boxes: [N, 4] xyxy pixels.
        scores: [N] class probabilities.
        labels: [N] class of each candidate (suppression is per class).
        iou_thresh: suppression IoU.

    Returns:
        ``(keep [K] long indices into the inputs, new scores [K])``, the new scores
        being the inputs' for plain NMS and decayed ones for Soft-NMS.
    """

    def __call__(
        self, boxes: Tensor, scores: Tensor, labels: Tensor, *, iou_thresh: float
    ) -> tuple[Tensor, Tensor]: ...


def batched_nms_fn(
    boxes: Tensor, scores: Tensor, labels: Tensor, *, iou_thresh: float
) -> tuple[Tensor, Tensor]:
    """Per-class NMS (torchvision's ``batched_nms``) as an :class:`NmsFn`."""
    keep = batched_nms(boxes, scores, labels, iou_thresh)  # sorted by descending score
    return keep, scores[keep]


def mask_targets(
    gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, size: int, aligned: bool
) -> Tensor:
    """Ground-truth masks cropped to the proposals and resized (RoIAlign of the masks).

    Args:
        gt_masks: [G, H, W] masks of one image (any dtype).
        boxes: [P, 4] proposals, xyxy pixels.
        matched_idxs: [P] ground truth of each proposal.
        size: output side M.
        aligned: half-pixel aligned RoIAlign (detectron2) or not (torchvision).

    Returns:
        [P, M, M] float soft targets in 0..1.
    """
    rois = torch.cat([matched_idxs[:, None].to(boxes), boxes], dim=1)  # [P, 5]
    masks = gt_masks[:, None].to(rois)  # [G, 1, H, W]
    return roi_align(masks, rois, (size, size), 1.0, sampling_ratio=0, aligned=aligned)[:, 0]


class MaskRoIHeads(RoIHeads):
    """torchvision's RoIHeads (box and mask branches) with hookable training and test glue.

    Args:
        box_roi_pool, box_head, box_predictor, mask_roi_pool, mask_head, mask_predictor:
            torchvision's modules.
        fg_iou_thresh, bg_iou_thresh, batch_size_per_image, positive_fraction,
        bbox_reg_weights, score_thresh, nms_thresh, detections_per_img: as torchvision's.
        box_loss_beta: smooth-L1 beta of the box loss (0: L1).
        aligned_mask_targets: crop the mask targets with half-pixel aligned RoIAlign.
        nms_fn: test-time suppression; default per-class NMS.
        mask_loss_extra: ``f(mask_logits_of_gt_class [P, M, M], mask_targets [P, M, M])
            -> scalar`` added to the mask loss when there are positives.

    Attributes:
        last_stats: after a training forward, ``{"ious": per image [M_i] IoU of each
            proposal (ground truth appended, before sampling) with its best ground
            truth (empty without ground truth), "errors": [P] (|t_x| + |t_y|) / 2 of
            the sampled positives' regression targets}``, detached.
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        mask_roi_pool: nn.Module,
        mask_head: nn.Module,
        mask_predictor: nn.Module,
        *,
        fg_iou_thresh: float,
        bg_iou_thresh: float,
        batch_size_per_image: int,
        positive_fraction: float,
        bbox_reg_weights: tuple[float, float, float, float],
        score_thresh: float,
        nms_thresh: float,
        detections_per_img: int,
        box_loss_beta: float,
        aligned_mask_targets: bool,
        nms_fn: NmsFn | None = None,
        mask_loss_extra: MaskLossExtra | None = None,
    ) -> None:
        super().__init__(
            box_roi_pool, box_head, box_predictor,
            fg_iou_thresh, bg_iou_thresh, batch_size_per_image, positive_fraction,
            bbox_reg_weights, score_thresh, nms_thresh, detections_per_img,
            mask_roi_pool=mask_roi_pool, mask_head=mask_head, mask_predictor=mask_predictor,
        )  # fmt: skip
        self.box_loss_beta = box_loss_beta
        self.aligned_mask_targets = aligned_mask_targets
        self.nms_fn: NmsFn = nms_fn if nms_fn is not None else batched_nms_fn
        self.mask_loss_extra = mask_loss_extra
        self.last_stats: dict[str, object] = {}

    @property
    def fg_iou_thresh(self) -> float:
        """Proposals at or above this IoU with a ground truth are foreground."""
        return self.proposal_matcher.high_threshold

    @fg_iou_thresh.setter
    def fg_iou_thresh(self, value: float) -> None:
        self.proposal_matcher.high_threshold = float(value)

    @property
    def bg_iou_thresh(self) -> float:
        """Proposals below this IoU are background (between the two: ignored)."""
        return self.proposal_matcher.low_threshold

    @bg_iou_thresh.setter
    def bg_iou_thresh(self, value: float) -> None:
        self.proposal_matcher.low_threshold = float(value)

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Box and mask heads on the proposals.

        Args:
            features: FPN maps by name ("0".."3" pooled), each [B, C, H_l, W_l].
            proposals: per image [R_i, 4] xyxy in input pixels.
            image_shapes: per image (H, W) after resizing, before padding.
            targets: in training, per image ``boxes`` [G, 4], ``labels`` [G] (1-based),
                ``masks`` [G, H, W].

        Returns:
            ``(detections, losses)``: in training ``([], {loss_classifier, loss_box_reg,
            loss_mask})``; in eval per image ``boxes`` [N, 4], ``labels`` [N],
            ``scores`` [N], ``masks`` [N, 1, M, M] probabilities of the predicted class,
            and ``{}``.
        """
        if self.training:
            return [], self._train_forward(features, proposals, image_shapes, targets)
        class_logits, box_regression = self._box_forward(features, proposals, image_shapes)
        boxes, scores, labels = self.postprocess_detections(
            class_logits, box_regression, proposals, image_shapes
        )
        mask_logits = self._mask_forward(features, boxes, image_shapes)  # [N, K, M, M]
        probs = maskrcnn_inference(mask_logits, labels)
        return [
            {"boxes": b, "labels": lab, "scores": s, "masks": m}
            for b, lab, s, m in zip(boxes, labels, scores, probs)
        ], {}

    def _box_forward(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> tuple[Tensor, Tensor]:
        """Returns class logits [R, K] and box deltas [R, 4K]."""
        pooled = self.box_roi_pool(features, boxes, image_shapes)  # [R, C, 7, 7]
        return self.box_predictor(self.box_head(pooled))

    def _mask_forward(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        """Returns mask logits [R, K, 2S, 2S] of all classes."""
        pooled = self.mask_roi_pool(features, boxes, image_shapes)  # [R, C, S, S]
        return self.mask_predictor(self.mask_head(pooled))

    def _train_forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None,
    ) -> dict[str, Tensor]:
        if targets is None:
            raise ValueError("targets are needed in training")
        self.check_targets(targets)
        ious = self._proposal_ious(proposals, targets)
        proposals, matched_idxs, labels, regression_targets = self.select_training_samples(
            proposals, targets
        )
        class_logits, box_regression = self._box_forward(features, proposals, image_shapes)
        losses = self.box_loss(class_logits, box_regression, labels, regression_targets)
        positive = [torch.where(lab > 0)[0] for lab in labels]
        pos_boxes = [p[i] for p, i in zip(proposals, positive)]
        mask_logits = self._mask_forward(features, pos_boxes, image_shapes)  # [P, K, M, M]
        losses["loss_mask"] = self.mask_loss(
            mask_logits,
            pos_boxes,
            [t["masks"] for t in targets],
            [m[i] for m, i in zip(matched_idxs, positive)],
            [lab[i] for lab, i in zip(labels, positive)],
        )
        pos_targets = torch.cat([t[i] for t, i in zip(regression_targets, positive)])  # [P, 4]
        self.last_stats = {"ious": ious, "errors": pos_targets[:, :2].abs().mean(dim=1).detach()}
        return losses

    @torch.no_grad()
    def _proposal_ious(
        self, proposals: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> list[Tensor]:
        """Per image, [R_i + G_i] best IoU of each proposal (ground truth appended, as
        ``select_training_samples`` matches them) with the ground truth; empty without GT."""
        out = []
        for props, t in zip(proposals, targets):
            gt = t["boxes"].to(props.dtype)
            if gt.shape[0] == 0:
                out.append(props.new_zeros(0))
                continue
            out.append(box_iou(gt, torch.cat([props, gt])).max(dim=0).values)  # [R + G]
        return out

    def box_loss(
        self,
        class_logits: Tensor,
        box_regression: Tensor,
        labels: list[Tensor],
        regression_targets: list[Tensor],
    ) -> dict[str, Tensor]:
        """Cross-entropy over the sampled RoIs and smooth-L1 (``box_loss_beta``) on the
        positives' deltas of their class, summed and divided by the sampled RoIs.

        Args:
            class_logits: [R, K]. box_regression: [R, 4K].
            labels: per image [R_i] sampled labels (0 background).
            regression_targets: per image [R_i, 4] encoded targets.
        """
        labels_all = torch.cat(labels)  # [R]
        targets_all = torch.cat(regression_targets)  # [R, 4]
        loss_cls = F.cross_entropy(class_logits, labels_all)
        pos = torch.where(labels_all > 0)[0]
        R = class_logits.shape[0]
        deltas = box_regression.reshape(R, -1, 4)[pos, labels_all[pos]]  # [P, 4]
        loss_box = F.smooth_l1_loss(
            deltas, targets_all[pos], beta=self.box_loss_beta, reduction="sum"
        ) / max(labels_all.numel(), 1)
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def mask_loss(
        self,
        mask_logits: Tensor,
        boxes: list[Tensor],
        gt_masks: list[Tensor],
        matched_idxs: list[Tensor],
        labels: list[Tensor],
    ) -> Tensor:
        """Per-pixel binary cross-entropy of the ground-truth class's mask, plus
        ``mask_loss_extra`` when set.

        Args:
            mask_logits: [P, K, M, M] for the positive proposals of all images.
            boxes: per image [P_i, 4] positive proposals.
            gt_masks: per image [G_i, H, W].
            matched_idxs: per image [P_i] ground truth of each positive.
            labels: per image [P_i] class of each positive.
        """
        M = mask_logits.shape[-1]
        if mask_logits.shape[0] == 0:
            return mask_logits.sum() * 0.0
        targets = torch.cat(
            [
                mask_targets(m, b, i, M, self.aligned_mask_targets)
                for m, b, i in zip(gt_masks, boxes, matched_idxs)
            ]
        )  # [P, M, M]
        cls = torch.cat(labels)  # [P]
        logits = mask_logits[torch.arange(cls.shape[0], device=cls.device), cls]  # [P, M, M]
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        if self.mask_loss_extra is not None:
            loss = loss + self.mask_loss_extra(logits, targets)
        return loss

    def postprocess_detections(
        self,
        class_logits: Tensor,
        box_regression: Tensor,
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Decode, score, threshold and suppress per image (torchvision's order of
        steps, with ``nms_fn`` for the suppression).

        Returns:
            Per image boxes [N, 4] (clipped, input pixels), scores [N] and 1-based
            labels [N], by descending score, at most ``detections_per_img``.
        """
        counts = [p.shape[0] for p in proposals]
        decoded = self.box_coder.decode(box_regression, proposals)  # [R, K, 4]
        probs = F.softmax(class_logits, dim=-1)  # [R, K]
        out_boxes, out_scores, out_labels = [], [], []
        for boxes, scores, shape in zip(decoded.split(counts), probs.split(counts), image_shapes):
            R, K = scores.shape
            boxes = clip_boxes_to_image(boxes, shape)[:, 1:].reshape(-1, 4)  # [R(K-1), 4]
            scores = scores[:, 1:].reshape(-1)  # [R(K-1)]
            labels = torch.arange(1, K, device=scores.device).repeat(R)  # [R(K-1)]
            wh = boxes[:, 2:] - boxes[:, :2]  # [R(K-1), 2]
            valid = (scores > self.score_thresh) & (wh >= 1e-2).all(dim=1)
            index = torch.where(valid)[0]
            boxes, scores, labels = boxes[index], scores[index], labels[index]
            keep, new_scores = self.nms_fn(boxes, scores, labels, iou_thresh=self.nms_thresh)
            if self.nms_fn is not batched_nms_fn:  # Soft-NMS re-orders by decayed score
                order = new_scores.argsort(descending=True, stable=True)
                keep, new_scores = keep[order], new_scores[order]
            top = self.detections_per_img
            keep, new_scores = keep[:top], new_scores[:top]
            out_boxes.append(boxes[keep])
            out_scores.append(new_scores)
            out_labels.append(labels[keep])
        return out_boxes, out_scores, out_labels
