"""Prior-to-ground-truth matching for training.

Two rules decide which priors are foreground:

- ``"max_iou"`` (the original's ``match``): every prior is assigned the
  ground-truth box it overlaps most; then every ground-truth box claims its
  single best prior, so no object goes unmatched. The overlaps decide the class
  target: foreground, neutral (ignored by the loss) or background.
- ``"atss"`` (adaptive training sample selection, Zhang et al. 2020): on each
  FPN level the ``topk`` priors whose centres lie nearest an object's centre are
  its candidates; those whose IoU reaches the candidates' mean plus standard
  deviation and whose centre lies inside the box are foreground. Small and
  elongated objects, which reach a fixed IoU threshold with few priors or none,
  get several. A prior claimed by several objects goes to the one it overlaps
  most, an object left without a prior claims its best one, and every other
  prior is background (no neutral band).

With either rule, non-foreground priors mostly covered by a crowd region are
neutral.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from yolact.core.ops.boxes import batched_iou
from yolact.models.yolact.box_coding import encode

# Class target of priors the loss ignores.
NEUTRAL = -1

AssignRule = Literal["max_iou", "atss"]


@dataclass(frozen=True)
class Matches:
    """Per-prior training targets for a batch.

    Attributes:
        conf: [B, P] int64 class targets: 0 background, c + 1 for foreground
            class c, -1 neutral (no loss).
        loc: [B, P, 4] box regression targets (dx, dy, dw, dh); only meaningful
            where ``conf > 0``.
        gt_index: [B, P] int64 index of the matched ground truth in its image;
            only meaningful where ``conf > 0``.
        overlap: [B, P] IoU with the matched ground truth (``"max_iou"``: 2 for
            forced matches), -1 in images without ground truth.
    """

    conf: Tensor
    loc: Tensor
    gt_index: Tensor
    overlap: Tensor


def point_form(priors: Tensor) -> Tensor:
    """[P, 4] (cx, cy, w, h) -> [P, 4] (x1, y1, x2, y2)."""
    return torch.cat((priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2), dim=1)


def crowd_overlap(boxes: Tensor, crowds: Tensor) -> Tensor:
    """Intersection over the area of the first box (the original's ``iscrowd`` jaccard).

    Args:
        boxes: [B, P, 4] xyxy.
        crowds: [B, M, 4] xyxy.

    Returns:
        [B, P, M] intersection / area of ``boxes``.
    """
    top_left = torch.max(boxes[:, :, None, :2], crowds[:, None, :, :2])  # [B, P, M, 2]
    bottom_right = torch.min(boxes[:, :, None, 2:], crowds[:, None, :, 2:])  # [B, P, M, 2]
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=3)  # [B, P, M]
    area = (boxes[:, :, 2] - boxes[:, :, 0]) * (boxes[:, :, 3] - boxes[:, :, 1])  # [B, P]
    return inter / area[:, :, None]


def _pad(items: Sequence[Tensor], size: int, fill: Tensor) -> Tensor:
    """Stack variable-length [n, ...] tensors into [len(items), size, ...], padding with fill."""
    out = fill.expand(len(items), size, *fill.shape).clone()
    for b, item in enumerate(items):
        out[b, : item.shape[0]] = item
    return out


def _force_best_priors(overlaps: Tensor, counts: Tensor, best: Tensor, best_idx: Tensor) -> None:
    """Give every ground truth its best prior, greedily, in place on ``best``/``best_idx``.

    Repeatedly takes the largest remaining entry (g, p) of each image's overlap
    matrix, assigns prior p to g with overlap 2 and removes row g and column p.
    Row maxima are cached and recomputed only for the removed row and the rows
    whose best column was removed, which leaves every choice (ties included) as
    a full recompute would.

    Args:
        overlaps: [B, G, P] IoU, padded rows filled with -1; modified in place.
        counts: [B] ground truths per image.
        best: [B, P] best overlap per prior.
        best_idx: [B, P] best ground truth per prior.
    """
    B, G, _ = overlaps.shape
    batch = torch.arange(B, device=overlaps.device)
    rows = torch.arange(G, device=overlaps.device)
    row_max, row_arg = overlaps.max(dim=2)  # [B, G]
    for step in range(G):
        active = counts > step  # [B]
        g = row_max.argmax(dim=1)  # [B]
        p = row_arg[batch, g]  # [B]
        # Writing into finished images is harmless for the overlap matrix (all of
        # its live rows are gone) but not for the assignments, hence the guards.
        old_best, old_idx = best[batch, p], best_idx[batch, p]
        best[batch, p] = torch.where(active, torch.full_like(old_best, 2.0), old_best)
        best_idx[batch, p] = torch.where(active, g, old_idx)
        overlaps[batch[:, None], rows[None, :], p[:, None]] = -1
        overlaps[batch, g, :] = -1
        stale = (row_arg == p[:, None]) | (rows[None, :] == g[:, None])  # [B, G]
        sb, sg = stale.nonzero(as_tuple=True)
        row_max[sb, sg], row_arg[sb, sg] = overlaps[sb, sg].max(dim=1)


def _atss_assign(
    overlaps: Tensor,
    valid: Tensor,
    gt: Tensor,
    priors: Tensor,
    level_counts: Sequence[int],
    topk: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """The ATSS rule (see the module docstring).

    Args:
        overlaps: [B, G, P] IoU, padded rows -1.
        valid: [B, G] real (not padding) ground truth.
        gt: [B, G, 4] boxes, relative xyxy.
        priors: [P, 4] (cx, cy, w, h), relative, level after level.
        level_counts: priors per FPN level (summing to P).
        topk: candidates per level and object.

    Returns:
        ``best`` [B, P] IoU with the assigned object, ``best_idx`` [B, P] its index,
        ``fg`` [B, P] bool foreground.
    """
    B, G, P = overlaps.shape
    if sum(level_counts) != P:
        raise ValueError(f"level_counts sum to {sum(level_counts)}, expected {P} priors")
    gt_centres = (gt[..., :2] + gt[..., 2:]) / 2  # [B, G, 2]
    dist = torch.cdist(gt_centres, priors[:, :2].expand(B, P, 2))  # [B, G, P]
    candidates = []
    start = 0
    for n in level_counts:
        k = min(topk, n)
        nearest = dist[:, :, start : start + n].topk(k, dim=2, largest=False).indices
        candidates.append(nearest + start)
        start += n
    cand = torch.cat(candidates, dim=2)  # [B, G, K]
    cand_iou = overlaps.gather(2, cand)  # [B, G, K]
    spread = cand_iou.std(dim=2) if cand.shape[2] > 1 else torch.zeros_like(cand_iou[..., 0])
    threshold = cand_iou.mean(dim=2) + spread  # [B, G]
    cx, cy = priors[:, 0][cand], priors[:, 1][cand]  # [B, G, K]
    inside = (cx > gt[..., 0:1]) & (cx < gt[..., 2:3]) & (cy > gt[..., 1:2]) & (cy < gt[..., 3:4])
    chosen = (cand_iou >= threshold[..., None]) & inside & valid[..., None]
    pos = torch.zeros_like(overlaps, dtype=torch.bool).scatter_(2, cand, chosen)  # [B, G, P]
    # An object no candidate qualified for keeps its best prior.
    orphan = valid & ~pos.any(dim=2)  # [B, G]
    best_prior = overlaps.argmax(dim=2, keepdim=True)  # [B, G, 1]
    pos.scatter_(2, best_prior, orphan[..., None] | pos.gather(2, best_prior))
    claimed = overlaps.masked_fill(~pos, -2.0)
    best, best_idx = claimed.max(dim=1)  # [B, P]
    fg = pos.any(dim=1)
    best = torch.where(fg, best, overlaps.max(dim=1).values)
    return best, best_idx, fg


def match(
    priors: Tensor,
    boxes: Sequence[Tensor],
    labels: Sequence[Tensor],
    crowd_boxes: Sequence[Tensor] | None = None,
    *,
    pos_thresh: float = 0.5,
    neg_thresh: float = 0.4,
    crowd_iou_thresh: float = 0.7,
    assigner: AssignRule = "max_iou",
    level_counts: Sequence[int] | None = None,
    topk: int = 9,
) -> Matches:
    """Match the priors of a batch of images to their ground truth.

    Args:
        priors: [P, 4] (cx, cy, w, h), relative.
        boxes: per image [N_b, 4] (x1, y1, x2, y2), relative.
        labels: per image [N_b] int64, 0-based foreground classes.
        crowd_boxes: per image [M_b, 4] crowd regions, relative xyxy (may be [0, 4]).
        pos_thresh: IoU at or above which a prior is foreground.
        neg_thresh: IoU below which it is background; in between it is neutral.
        crowd_iou_thresh: non-foreground priors whose intersection with a crowd
            box covers more than this fraction of their area become neutral;
            1 or more disables the rule.
        assigner: ``"max_iou"`` (uses ``pos_thresh`` / ``neg_thresh``) or ``"atss"``
            (uses ``level_counts`` and ``topk``); see the module docstring.
        level_counts: priors per FPN level, in order (``"atss"``; default: one level).
        topk: ATSS candidates per level and object.

    Returns:
        :class:`Matches` for the batch.
    """
    B, P, device = len(boxes), priors.shape[0], priors.device
    corners = point_form(priors)  # [P, 4]
    counts_list = [int(b.shape[0]) for b in boxes]
    G = max(counts_list, default=0)
    # Padding boxes are the whole image, so that encoding them stays finite.
    dummy = torch.tensor([0.0, 0.0, 1.0, 1.0], device=device, dtype=priors.dtype)
    if G == 0:
        best = priors.new_full((B, P), -1.0)
        best_idx = torch.zeros((B, P), dtype=torch.long, device=device)
        conf = torch.zeros((B, P), dtype=torch.long, device=device)
        matched = dummy.expand(B, P, 4)
    else:
        gt = _pad([b.to(priors) for b in boxes], G, dummy)  # [B, G, 4]
        gt_labels = _pad(
            [lab.to(device) for lab in labels], G, dummy.new_zeros((), dtype=torch.long)
        )
        counts = torch.tensor(counts_list, device=device)
        valid = torch.arange(G, device=device)[None, :] < counts[:, None]  # [B, G]
        overlaps = batched_iou(gt, corners.expand(B, P, 4))  # [B, G, P]
        overlaps = overlaps.masked_fill(~valid[:, :, None], -1.0)
        if assigner == "atss":
            counts_per_level = list(level_counts) if level_counts is not None else [P]
            best, best_idx, fg = _atss_assign(overlaps, valid, gt, priors, counts_per_level, topk)
            conf = torch.where(fg, gt_labels.gather(1, best_idx) + 1, 0)  # [B, P]
        elif assigner == "max_iou":
            best, best_idx = overlaps.max(dim=1)  # [B, P]
            _force_best_priors(overlaps, counts, best, best_idx)
            conf = gt_labels.gather(1, best_idx) + 1  # [B, P]
            conf[best < pos_thresh] = NEUTRAL
            conf[best < neg_thresh] = 0
        else:
            raise ValueError(f"unknown assigner '{assigner}'; use 'max_iou' or 'atss'")
        matched = gt.gather(1, best_idx[:, :, None].expand(B, P, 4))  # [B, P, 4]
    if crowd_boxes is not None and crowd_iou_thresh < 1:
        M = max((int(c.shape[0]) for c in crowd_boxes), default=0)
        if M > 0:
            crowds = _pad([c.to(priors) for c in crowd_boxes], M, dummy.new_zeros(4))
            covered = crowd_overlap(corners.expand(B, P, 4), crowds).max(dim=2).values  # [B, P]
            conf[(conf <= 0) & (covered > crowd_iou_thresh)] = NEUTRAL
    loc = encode(matched.reshape(-1, 4), priors.repeat(B, 1)).view(B, P, 4)
    return Matches(conf=conf, loc=loc, gt_index=best_idx, overlap=best)
