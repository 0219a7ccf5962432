"""The YOLACT training loss: a dict of named, weighted terms.

Terms (as the original's ``MultiBoxLoss``, keys as it prints them):

- ``B``: smooth L1 between the box offsets of foreground priors and their targets
  (or, with ``box_loss="giou"``, the generalised IoU loss of the decoded boxes).
- ``C``: cross entropy over foreground priors and the hardest background priors
  (online hard example mining, ``negpos_ratio`` negatives per positive), or a
  sigmoid focal loss over all non-neutral priors.
- ``M``: binary cross entropy between each foreground prior's assembled mask,
  cropped to its ground-truth box, and the ground-truth mask at prototype
  resolution, normalised by the box area ("emulated RoI pooling").
- ``S``: per-class binary cross entropy of the semantic segmentation logits.
- ``I`` (YOLACT++): smooth L1 between the mask IoU net's prediction and the IoU
  of each trained mask with its ground truth.

``B``, ``C``, ``M`` and ``I`` are divided by the number of foreground priors in
the batch (at least 1), ``S`` by the batch size.

Images without ground truth are allowed. The original never sees them (its
data loader resamples) and would take no negatives from them, dividing by zero
when the whole batch is empty. Here such an image keeps the negative quota of
one positive (``negpos_ratio`` hardest background priors), so it still teaches
"nothing here", and the normaliser is at least 1. Images with ground truth
always have a positive (every box claims a prior), so they are unaffected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from yolact.models.yolact.box_coding import decode
from yolact.models.yolact.mask_terms import (
    MaskIoUSample,
    assemble_masks,
    box_normalised_bce,
    downsample_masks,
    gather_targets,
    maskiou_sample,
    maskiou_term,
    sample_positives,
)
from yolact.models.yolact.match import AssignRule, Matches, match
from yolact.models.yolact.train_config import BoxLoss


@dataclass(frozen=True)
class LossWeights:
    """Multipliers of the loss terms (the original's ``*_alpha`` settings)."""

    bbox: float = 1.5
    conf: float = 1.0
    mask: float = 6.125
    semantic: float = 1.0
    maskiou: float = 25.0


def total(losses: dict[str, Tensor]) -> Tensor:
    """The sum of the (already weighted) terms."""
    return torch.stack(list(losses.values())).sum()


class YolactLoss(nn.Module):
    """Computes the training loss of :class:`yolact.models.yolact.model.Yolact`.

    Args:
        num_classes: classes including background.
        pos_thresh: IoU for a prior to be foreground.
        neg_thresh: IoU under which a prior is background (neutral in between).
        crowd_iou_thresh: background priors covered more than this by a crowd
            box are ignored.
        negpos_ratio: hard negatives per positive (OHEM).
        masks_to_train: at most this many masks per image (random subset).
        use_focal_loss: sigmoid focal loss over the foreground classes instead of OHEM
            cross entropy: the loss of a ``classifier="sigmoid"`` model, whose
            detections score each class by the sigmoid of its logit.
        focal_alpha, focal_gamma: focal loss parameters.
        weights: term multipliers.
        use_maskiou: add the YOLACT++ mask IoU term ``I``.
        discard_mask_area: masks whose ground truth covers at most this many
            prototype pixels do not train the mask IoU net.
        maskiou_detach_input: feed the mask IoU net detached masks so that ``I``
            trains that net only. The original feeds the masks as they are
            (gradients also reach the prototypes and coefficients), the default.
        assigner: ``"max_iou"`` (the original's matching) or ``"atss"``; see
            :mod:`yolact.models.yolact.match`.
        atss_topk: ATSS candidates per FPN level and object.
        box_loss: ``"smooth_l1"`` (the original's) or ``"giou"``.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        pos_thresh: float = 0.5,
        neg_thresh: float = 0.4,
        crowd_iou_thresh: float = 0.7,
        negpos_ratio: int = 3,
        masks_to_train: int = 100,
        use_focal_loss: bool = False,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        weights: LossWeights = LossWeights(),  # noqa: B008 (frozen, immutable)
        use_maskiou: bool = False,
        discard_mask_area: float = 25.0,
        maskiou_detach_input: bool = False,
        assigner: AssignRule = "max_iou",
        atss_topk: int = 9,
        box_loss: BoxLoss = "smooth_l1",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.pos_thresh = pos_thresh
        self.neg_thresh = neg_thresh
        self.crowd_iou_thresh = crowd_iou_thresh
        self.negpos_ratio = negpos_ratio
        self.masks_to_train = masks_to_train
        self.use_focal_loss = use_focal_loss
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.weights = weights
        self.use_maskiou = use_maskiou
        self.discard_mask_area = discard_mask_area
        self.maskiou_detach_input = maskiou_detach_input
        self.assigner: AssignRule = assigner
        self.atss_topk = atss_topk
        self.box_loss: BoxLoss = box_loss

    def match(
        self,
        priors: Tensor,
        targets: list[dict[str, Tensor]],
        level_counts: Sequence[int] | None = None,
    ) -> Matches:
        """Per-prior targets for a batch (see :func:`yolact.models.yolact.match.match`);
        ``level_counts``: priors per FPN level, for ATSS."""
        device = priors.device
        boxes = [torch.as_tensor(t["boxes"], device=device) for t in targets]
        labels = [torch.as_tensor(t["labels"], device=device).long() for t in targets]
        crowds = [
            torch.as_tensor(t["crowd_boxes"], device=device).reshape(-1, 4)
            if "crowd_boxes" in t
            else priors.new_zeros((0, 4))
            for t in targets
        ]
        return match(
            priors,
            boxes,
            labels,
            crowds,
            pos_thresh=self.pos_thresh,
            neg_thresh=self.neg_thresh,
            crowd_iou_thresh=self.crowd_iou_thresh,
            assigner=self.assigner,
            level_counts=level_counts,
            topk=self.atss_topk,
        )

    def forward(
        self,
        outputs: dict[str, Tensor],
        targets: list[dict[str, Tensor]],
        maskiou_net: nn.Module | None = None,
    ) -> dict[str, Tensor]:
        """Compute the loss terms.

        Args:
            outputs: the network's training outputs: ``loc`` [B, P, 4], ``conf``
                [B, P, C], ``coef`` [B, P, k], ``proto`` [B, h, w, k], ``priors``
                [P, 4], optionally ``segm`` [B, C-1, hs, ws] and ``prior_levels``
                [L] priors per FPN level (needed by ATSS).
            targets: per image ``boxes`` [N, 4] relative xyxy, ``labels`` [N]
                0-based, ``masks`` [N, S, S] at the network input size and
                optionally ``crowd_boxes`` [M, 4] relative xyxy.
            maskiou_net: the model's mask IoU net, required with ``use_maskiou``.

        Returns:
            ``{"B", "C", "M"[, "S"][, "I"]}`` scalar tensors, weighted and normalised.
        """
        if self.use_maskiou and maskiou_net is None:
            raise ValueError("use_maskiou needs the model's maskiou_net")
        loc, conf = outputs["loc"], outputs["conf"]
        B = conf.shape[0]
        if len(targets) != B:
            raise ValueError(f"{len(targets)} targets for a batch of {B} images")
        levels = outputs.get("prior_levels")
        level_counts = None if levels is None else [int(n) for n in levels.tolist()]
        matches = self.match(outputs["priors"], targets, level_counts)
        pos = matches.conf > 0  # [B, P]
        num_pos = pos.sum(dim=1)  # [B]
        normaliser = num_pos.sum().clamp(min=1).to(conf.dtype)

        w = self.weights
        losses = {"B": self.box_term(loc, matches.loc, outputs["priors"], pos) * w.bbox}
        if self.use_focal_loss:
            losses["C"] = self.focal_conf_loss(conf, matches.conf) * w.conf
        else:
            losses["C"] = self.ohem_conf_loss(conf, matches.conf, num_pos) * w.conf
        mask_loss, maskiou_loss = self.mask_losses(outputs, targets, matches, maskiou_net)
        losses["M"] = mask_loss
        if self.use_maskiou:
            losses["I"] = maskiou_loss
        for key in losses:
            losses[key] = losses[key] / normaliser
        if "segm" in outputs:
            losses["S"] = self.semantic_loss(outputs["segm"], targets) / B
        return losses

    def box_term(self, loc: Tensor, loc_t: Tensor, priors: Tensor, pos: Tensor) -> Tensor:
        """The unweighted box loss (sum) over foreground priors.

        Args:
            loc: [B, P, 4] predicted offsets; loc_t: [B, P, 4] target offsets.
            priors: [P, 4] (cx, cy, w, h).
            pos: [B, P] foreground.
        """
        if self.box_loss == "smooth_l1":
            return F.smooth_l1_loss(loc[pos], loc_t[pos], reduction="sum")
        anchors = priors.expand(pos.shape[0], *priors.shape)[pos]  # [n, 4]
        predicted = decode(loc[pos], anchors)
        target = decode(loc_t[pos], anchors)
        return generalized_box_iou_loss(predicted, target, reduction="sum")

    def ohem_conf_loss(self, conf: Tensor, conf_t: Tensor, num_pos: Tensor) -> Tensor:
        """Cross entropy (sum) over positives and hard negatives.

        Args:
            conf: [B, P, C] logits.
            conf_t: [B, P] targets (-1 neutral).
            num_pos: [B] positives per image.
        """
        P = conf.shape[1]
        pos = conf_t > 0
        with torch.no_grad():
            background = torch.logsumexp(conf, dim=2) - conf[:, :, 0]  # [B, P]
            background[pos | (conf_t < 0)] = 0
            rank = background.argsort(dim=1, descending=True).argsort(dim=1)  # [B, P]
            quota = (self.negpos_ratio * num_pos.clamp(min=1)).clamp(max=P - 1)  # [B]
            neg = (rank < quota[:, None]) & (conf_t == 0)
        keep = pos | neg
        return F.cross_entropy(conf[keep], conf_t[keep], reduction="sum")

    def focal_conf_loss(self, conf: Tensor, conf_t: Tensor) -> Tensor:
        """Sigmoid focal loss (sum) over foreground classes of non-neutral priors."""
        keep = conf_t >= 0
        one_hot = F.one_hot(conf_t[keep], self.num_classes)[:, 1:].to(conf.dtype)
        return sigmoid_focal_loss(
            conf[keep][:, 1:],
            one_hot,
            alpha=self.focal_alpha,
            gamma=self.focal_gamma,
            reduction="sum",
        )

    def mask_losses(
        self,
        outputs: dict[str, Tensor],
        targets: list[dict[str, Tensor]],
        matches: Matches,
        maskiou_net: nn.Module | None,
    ) -> tuple[Tensor, Tensor]:
        """Mask loss and mask IoU loss, weighted but not yet divided by the positives.

        Per image (see :mod:`yolact.models.yolact.mask_terms`): sample the positives,
        gather their ground truth at prototype resolution, assemble and crop their
        masks, and sum their box-normalised BCE (scaled up by positives / trained
        when subsampled); with ``use_maskiou``, collect the mask IoU net's batch.

        Args:
            outputs: ``proto`` [B, h, w, k] and ``coef`` [B, P, k].
            targets: per image ``masks`` [N, S, S], ``boxes`` [N, 4], ``labels`` [N].
            matches: the batch's prior targets.
            maskiou_net: required with ``use_maskiou``.

        Returns:
            ``(M, I)`` scalars; ``I`` is zero without ``use_maskiou``.
        """
        proto, coef = outputs["proto"], outputs["coef"]
        B, h, w, _ = proto.shape
        # Zero, yet it puts the prototypes and every coefficient in the graph: without
        # a positive prior in the batch they still take part in the backward pass.
        loss_m = (proto.sum() + coef.sum()) * 0.0
        iou_samples: list[MaskIoUSample] = []
        for b in range(B):
            selected, num_pos = sample_positives(matches.conf[b], self.masks_to_train)
            if num_pos == 0:
                continue
            n = selected.numel()
            gt_index = matches.gt_index[b, selected]  # [n]
            mask_t, boxes_t = gather_targets(targets[b], gt_index, (h, w), proto)
            pred = assemble_masks(proto[b], coef[b, selected], boxes_t)  # [h, w, n]
            per_mask = box_normalised_bce(pred, mask_t, boxes_t)  # [n]
            if num_pos > n:
                per_mask = per_mask * (num_pos / n)
            loss_m = loss_m + per_mask.sum()
            if self.use_maskiou:
                labels = torch.as_tensor(targets[b]["labels"], device=proto.device).long()
                sample = maskiou_sample(pred, mask_t, labels[gt_index], self.discard_mask_area)
                if sample is not None:
                    iou_samples.append(sample)
        loss_m = loss_m * self.weights.mask / h / w
        loss_i = proto.new_zeros(())
        if self.use_maskiou:
            if maskiou_net is None:
                raise ValueError("use_maskiou needs the model's maskiou_net")
            loss_i = maskiou_term(maskiou_net, iou_samples, proto, self.maskiou_detach_input)
            loss_i = loss_i * self.weights.maskiou
        return loss_m, loss_i

    def semantic_loss(self, segm: Tensor, targets: list[dict[str, Tensor]]) -> Tensor:
        """Per-class BCE with logits (sum) of ``segm`` [B, C-1, hs, ws], / (hs * ws), weighted."""
        B, C, hs, ws = segm.shape
        with torch.no_grad():
            segm_t = segm.new_zeros((B, C, hs * ws))
            for b, t in enumerate(targets):
                masks = torch.as_tensor(t["masks"], device=segm.device)
                masks = downsample_masks(masks, (hs, ws)).to(segm)
                if masks.shape[0] == 0:
                    continue
                labels = torch.as_tensor(t["labels"], device=segm.device).long()
                one_hot = F.one_hot(labels, C).to(segm)  # [N, C-1]
                segm_t[b] = (one_hot[:, :, None] * masks.flatten(1)[:, None, :]).amax(0)
        loss = F.binary_cross_entropy_with_logits(segm, segm_t.view_as(segm), reduction="sum")
        return loss / hs / ws * self.weights.semantic
