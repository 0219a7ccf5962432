"""The steps of YOLACT's mask term ``M`` and mask IoU term ``I``, one function each.

:meth:`yolact.models.yolact.loss.YolactLoss.mask_losses` composes them per image:

1. :func:`sample_positives`: the foreground priors whose masks train (a random
   subset of at most ``masks_to_train``).
2. :func:`gather_targets`: their ground-truth masks at prototype resolution and
   their ground-truth boxes.
3. :func:`assemble_masks`: prototypes times coefficients, sigmoid, cropped to the
   ground-truth boxes.
4. :func:`box_normalised_bce`: binary cross entropy per mask, divided by the box's
   share of the prototype area ("emulated RoI pooling").
5. :func:`maskiou_sample` and :func:`maskiou_term`: the mask IoU net's inputs,
   targets and loss (YOLACT++).

Shapes: prototypes are ``[h, w, k]`` per image, masks are kept as ``[h, w, n]``
(one column per trained prior), boxes are relative xyxy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from yolact.models.yolact.box_coding import center_size
from yolact.models.yolact.mask_assembly import crop_masks


def downsample_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize [N, H, W] binary masks bilinearly (align_corners=False) and binarise at 0.5.

    Returns:
        [N, h, w] float 0/1.
    """
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size), dtype=torch.float32)
    resized = F.interpolate(masks[None].float(), size, mode="bilinear", align_corners=False)
    return (resized[0] > 0.5).float()


@dataclass(frozen=True)
class MaskIoUSample:
    """One image's contribution to the mask IoU net's batch.

    Attributes:
        inputs: [n, 1, h, w] the assembled masks the net sees.
        targets: [n] IoU of each binarised mask with its ground truth.
        labels: [n] 0-based class of each mask (the net's output column).
    """

    inputs: Tensor
    targets: Tensor
    labels: Tensor


def sample_positives(conf_t: Tensor, limit: int) -> tuple[Tensor, int]:
    """The foreground priors of one image whose masks train.

    Args:
        conf_t: [P] class targets of the image's priors (> 0 foreground).
        limit: at most this many masks (``masks_to_train``); more positives are
            subsampled with ``torch.randperm`` (the global generator).

    Returns:
        ``(selected, num_pos)``: [n] prior indices, n = min(num_pos, limit), and the
        number of positives before subsampling.
    """
    selected = (conf_t > 0).nonzero().squeeze(1)  # [num_pos]
    num_pos = selected.numel()
    if num_pos > limit:
        keep = torch.randperm(num_pos)[:limit].to(selected.device)
        selected = selected[keep]
    return selected, num_pos


def gather_targets(
    target: dict[str, Tensor], gt_index: Tensor, size: tuple[int, int], like: Tensor
) -> tuple[Tensor, Tensor]:
    """The ground truth of the trained priors at prototype resolution.

    Args:
        target: the image's ``masks`` [N, S, S] and ``boxes`` [N, 4] relative xyxy.
        gt_index: [n] the ground truth matched to each trained prior.
        size: the prototypes' (h, w).
        like: a tensor whose dtype and device the results take (the prototypes).

    Returns:
        ``(masks, boxes)``: [h, w, n] float 0/1 (no gradient) and [n, 4].
    """
    with torch.no_grad():
        gt_masks = torch.as_tensor(target["masks"], device=like.device)
        masks = downsample_masks(gt_masks, size).to(like)
        masks = masks[gt_index].permute(1, 2, 0)  # [h, w, n]
    boxes = torch.as_tensor(target["boxes"], device=like.device).to(like)
    return masks, boxes[gt_index]  # [n, 4]


def assemble_masks(proto: Tensor, coef: Tensor, boxes: Tensor) -> Tensor:
    """Linear combinations of the prototypes, squashed and cropped.

    Args:
        proto: [h, w, k] one image's prototypes.
        coef: [n, k] the trained priors' coefficients.
        boxes: [n, 4] relative xyxy crop boxes.

    Returns:
        [h, w, n] probabilities, zero outside each box.
    """
    pred = torch.sigmoid(proto @ coef.t())  # [h, w, n]
    return crop_masks(pred, boxes)


def box_normalised_bce(pred: Tensor, target: Tensor, boxes: Tensor) -> Tensor:
    """Binary cross entropy of each mask, summed over its pixels and divided by its
    box's share of the ``h * w`` prototype pixels.

    A diverged model's NaN reaches the result (so the step is skipped) instead of
    raising in ``binary_cross_entropy``.

    Args:
        pred: [h, w, n] probabilities; target: [h, w, n] 0/1; boxes: [n, 4] relative xyxy.

    Returns:
        [n] per-mask losses.
    """
    h, w = pred.shape[:2]
    finite = torch.isfinite(pred)
    safe = torch.where(finite, pred, torch.full_like(pred, 0.5)).clamp(0, 1)
    bce = F.binary_cross_entropy(safe, target, reduction="none")
    bce = bce.masked_fill(~finite, float("nan"))
    box_wh = center_size(boxes)[:, 2:]
    return bce.sum(dim=(0, 1)) / (box_wh[:, 0] * w) / (box_wh[:, 1] * h) * (h * w)


def maskiou_sample(
    pred: Tensor, target: Tensor, labels: Tensor, discard_area: float
) -> MaskIoUSample | None:
    """The mask IoU net's inputs and targets from one image's trained masks.

    Args:
        pred: [h, w, n] assembled masks; target: [h, w, n] their ground truth.
        labels: [n] their 0-based classes.
        discard_area: masks whose ground truth covers at most this many prototype
            pixels are left out (0: keep all).

    Returns:
        The sample, or None when no mask is left.
    """
    area_t = target.sum(dim=(0, 1))  # [n]
    if discard_area > 0:
        big = area_t > discard_area
        pred, target, area_t, labels = pred[..., big], target[..., big], area_t[big], labels[big]
    if labels.numel() == 0:
        return None
    with torch.no_grad():
        binary = (pred > 0.5).to(pred.dtype)
        inter = (binary * target).sum(dim=(0, 1))
        union = binary.sum(dim=(0, 1)) + area_t - inter
        iou = inter / union.clamp(min=1)
    return MaskIoUSample(pred.permute(2, 0, 1)[:, None], iou, labels)  # [n, 1, h, w]


def maskiou_term(
    net: nn.Module, samples: list[MaskIoUSample], proto: Tensor, detach_input: bool
) -> Tensor:
    """Smooth L1 (sum) between the mask IoU net's prediction and the masks' IoU.

    Without a sample the net runs on an empty batch: a zero loss whose backward
    still reaches (with zeros) every parameter of the net.

    Args:
        net: the mask IoU net ([n, 1, h, w] -> [n, C-1]).
        samples: per image with a trained mask, its sample.
        proto: [B, h, w, k] the prototypes (size, dtype and device).
        detach_input: feed the net detached masks.

    Raises:
        ValueError: the prototypes are smaller than the net's ``min_size``.
    """
    _, h, w, _ = proto.shape
    need = getattr(net, "min_size", 1)
    if min(h, w) < need:
        raise ValueError(
            f"the mask IoU net needs prototypes of at least {need}x{need} pixels, "
            f"got {h}x{w}: use a larger max_size or fewer maskiou_channels"
        )
    if not samples:
        samples = [
            MaskIoUSample(
                proto.new_zeros((0, 1, h, w)),
                proto.new_zeros(0),
                torch.zeros(0, dtype=torch.long, device=proto.device),
            )
        ]
    net_input = torch.cat([s.inputs for s in samples])  # [n, 1, h, w]
    if detach_input:
        net_input = net_input.detach()
    predicted = net(net_input)  # [n, C-1]
    labels = torch.cat([s.labels for s in samples])
    predicted = predicted.gather(1, labels[:, None]).squeeze(1)
    return F.smooth_l1_loss(predicted, torch.cat([s.targets for s in samples]), reduction="sum")
