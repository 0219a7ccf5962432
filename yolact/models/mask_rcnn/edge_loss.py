"""Sobel edge loss between predicted and ground-truth masks.

The edge map of a mask is the magnitude of its Sobel gradient, with the standard
(unnormalised) 3x3 kernels ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` and its
transpose: a sharp 0 -> 1 step gives a magnitude of 4 on the two pixels beside it.
They are applied in their separable form (difference, then 1-2-1 smoothing). The
border is padded by replication, so a mask touching the image edge gets no edge
there and a constant mask has an edge map of exactly 0.
"""

from __future__ import annotations

import torch
from torch import Tensor


def safe_magnitude(gx: Tensor, gy: Tensor) -> Tensor:
    """``sqrt(gx**2 + gy**2)``, exactly 0 with a zero (finite) gradient where both are 0.

    Args:
        gx: [...] first component.
        gy: [...] second component, same shape.

    Returns:
        [...] magnitude.
    """
    squared = gx * gx + gy * gy
    nonzero = squared > 0
    # sqrt is only differentiated where its argument is positive.
    root = torch.sqrt(torch.where(nonzero, squared, torch.ones_like(squared)))
    return torch.where(nonzero, root, torch.zeros_like(squared))


def _replicate_pad(masks: Tensor) -> Tensor:
    """[N, H, W] -> [N, H+2, W+2], the border rows and columns repeated once.

    (Concatenation rather than ``F.pad(mode="replicate")``, whose CPU kernel starts
    worker threads even for a handful of pixels.)
    """
    rows = torch.cat([masks[:, :1], masks, masks[:, -1:]], dim=1)  # [N, H+2, W]
    return torch.cat([rows[:, :, :1], rows, rows[:, :, -1:]], dim=2)  # [N, H+2, W+2]


def sobel_edges(masks: Tensor) -> Tensor:
    """Sobel gradient magnitude of each mask.

    Args:
        masks: [N, H, W] or [N, 1, H, W] masks (floating, any values; 0/1 or
            probabilities in practice).

    Returns:
        [N, H, W] edge magnitude ``sqrt(gx**2 + gy**2)`` (replicated border).
    """
    if masks.dim() == 4:
        if masks.shape[1] != 1:
            raise ValueError(f"expected [N, 1, H, W] masks, got {tuple(masks.shape)}")
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise ValueError(f"expected [N, H, W] masks, got {tuple(masks.shape)}")
    N, H, W = masks.shape
    if not masks.is_floating_point():
        masks = masks.float()
    if N == 0 or H == 0 or W == 0:
        return masks.new_zeros((N, H, W))
    padded = _replicate_pad(masks)  # [N, H+2, W+2]
    # The separable form of the kernels: a central difference along one axis,
    # then (1, 2, 1) smoothing along the other. Exact on a constant region.
    dx = padded[:, :, 2:] - padded[:, :, :-2]  # [N, H+2, W]
    dy = padded[:, 2:, :] - padded[:, :-2, :]  # [N, H, W+2]
    gx = dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]  # [N, H, W]
    gy = dy[:, :, :-2] + 2 * dy[:, :, 1:-1] + dy[:, :, 2:]  # [N, H, W]
    return safe_magnitude(gx, gy)


def edge_loss(pred_logits: Tensor, targets: Tensor, from_probs: bool = False) -> Tensor:
    """Mean squared difference of the Sobel edge maps of predicted and target masks.

    Args:
        pred_logits: [N, H, W] mask logits, or probabilities in [0, 1] when
            ``from_probs=True``.
        targets: [N, H, W] ground-truth masks in {0, 1} (any dtype).
        from_probs: ``pred_logits`` holds probabilities; no sigmoid is applied.

    Returns:
        Scalar: ``mean((edges(sigmoid(pred)) - edges(targets))**2)`` over all
        N * H * W pixels; 0 (still attached to ``pred_logits``' graph) when N == 0.
    """
    if pred_logits.shape != targets.shape:
        shapes = f"{tuple(pred_logits.shape)} and {tuple(targets.shape)}"
        raise ValueError(f"pred_logits and targets differ in shape: {shapes}")
    if pred_logits.numel() == 0:
        return pred_logits.sum() * 0.0
    probs = pred_logits if from_probs else pred_logits.sigmoid()
    pred_edges = sobel_edges(probs)  # [N, H, W]
    target_edges = sobel_edges(targets.to(probs.dtype))  # [N, H, W]
    return (pred_edges - target_edges).pow(2).mean()
