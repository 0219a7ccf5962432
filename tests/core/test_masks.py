"""Mask assembly, cropping, pasting and polygons on tiny hand-made inputs."""

from __future__ import annotations

import math

import numpy as np
import torch

from yolact.core.ops.masks import mask_to_polygons
from yolact.models.yolact.mask_assembly import assemble_masks, crop_masks, paste_masks


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_assemble_masks_is_sigmoid_of_linear_combination() -> None:
    protos = torch.tensor(
        [
            [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
            [[2.0, -1.0], [0.5, 0.5], [0.0, 0.0]],
        ]
    )  # [H=2, W=3, k=2]
    coef = torch.tensor([[1.0, -1.0], [0.5, 2.0]])  # [N=2, k=2]
    masks = assemble_masks(protos, coef)
    assert masks.shape == (2, 3, 2)
    expected = [
        [[sigmoid(1), sigmoid(0.5)], [sigmoid(-1), sigmoid(2)], [sigmoid(0), sigmoid(2.5)]],
        [[sigmoid(3), sigmoid(-1)], [sigmoid(0), sigmoid(1.25)], [sigmoid(0), sigmoid(0)]],
    ]
    assert torch.allclose(masks, torch.tensor(expected), atol=1e-6)
    assert assemble_masks(protos, torch.zeros(0, 2)).shape == (2, 3, 0)


def test_crop_masks_fractional_box_edges() -> None:
    H, W = 4, 6
    values = torch.arange(1.0, H * W + 1).view(H, W, 1).expand(H, W, 3).contiguous()
    boxes = torch.tensor(
        [
            # x: 1.8 .. 3.3 px -> [0.8, 4.3) -> columns 1..4;
            # y swapped, 2.8 .. 1.8 px -> [0.8, 3.8) -> rows 1..3.
            [0.3, 0.7, 0.55, 0.45],
            # The whole image: x1 = max(-1, 0), x2 = min(7, 6).
            [0.0, 0.0, 1.0, 1.0],
            # x: 5.4 .. 6 -> [4.4, 6) -> column 5; y: 0 .. 0.4 -> [0, 1.4) -> rows 0..1.
            [0.9, 0.0, 1.0, 0.1],
        ]
    )
    out = crop_masks(values, boxes)
    inside = torch.zeros(H, W, 3, dtype=torch.bool)
    inside[1:4, 1:5, 0] = True
    inside[:, :, 1] = True
    inside[0:2, 5:6, 2] = True
    assert torch.equal(out, values * inside)
    # Without padding the first box covers columns 2..3 and row 2 only.
    out = crop_masks(values[:, :, :1], boxes[:1], padding=0)
    inside = torch.zeros(H, W, 1, dtype=torch.bool)
    inside[2:3, 2:4] = True
    assert torch.equal(out, values[:, :, :1] * inside)


def test_crop_masks_empty() -> None:
    assert crop_masks(torch.zeros(4, 6, 0), torch.zeros(0, 4)).shape == (4, 6, 0)


def test_paste_masks_size_and_threshold() -> None:
    masks = torch.stack((torch.full((4, 4), 0.6), torch.full((4, 4), 0.4)))
    pasted = paste_masks(masks, 8, 6)
    assert pasted.shape == (2, 8, 6) and pasted.dtype == torch.bool
    assert pasted[0].all() and not pasted[1].any()
    assert paste_masks(masks, 8, 6, threshold=0.3).all()
    # Strictly greater than the threshold.
    assert not paste_masks(torch.full((1, 2, 2), 0.5), 4, 4).any()
    # Left half on, right half off: bilinear (align_corners=False) puts the edge in the middle.
    half = torch.zeros(1, 4, 4)
    half[:, :, :2] = 1.0
    pasted = paste_masks(half, 8, 8)[0]
    assert pasted[:, :4].all() and not pasted[:, 4:].any()
    assert paste_masks(torch.zeros(0, 4, 4), 8, 6).shape == (0, 8, 6)


def test_mask_to_polygons_square() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:15, 4:12] = True
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 1
    poly = polygons[0]
    assert poly.dtype == np.int32 and poly.shape == (4, 2)
    assert sorted(map(tuple, poly.tolist())) == [(4, 5), (4, 14), (11, 5), (11, 14)]
    assert mask_to_polygons(np.zeros((5, 5), dtype=np.uint8)) == []
