"""The faster paths of the CPU benchmarks give the reference values exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from yolact.core.preprocess import SquarePreprocessor
from yolact.models.yolact.fixed_post import crop_in_boxes
from yolact.models.yolact.mask_assembly import crop_masks

MEAN, STD = (103.94, 116.78, 123.68), (57.38, 57.12, 58.40)


@pytest.mark.parametrize(("size", "shape"), [(160, (480, 640, 3)), (138, (333, 517, 3))])
def test_preprocessing_resizes_a_channels_last_view_to_the_originals_values(size, shape):
    """No NCHW copy of the frame before the resize, and bit for bit the original's
    FastBaseTransform steps (contiguous NCHW, bilinear, normalise, BGR -> RGB)."""
    frame = np.random.default_rng(size).integers(0, 256, shape, dtype=np.uint8)
    pre = SquarePreprocessor(size, MEAN, STD)
    x = pre.to_tensor(frame)
    assert x.shape == (1, 3, *shape[:2]) and not x.is_contiguous()
    assert x.is_contiguous(memory_format=torch.channels_last)
    ref = torch.from_numpy(frame).float()[None].permute(0, 3, 1, 2).contiguous()
    ref = F.interpolate(ref, (size, size), mode="bilinear", align_corners=False)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    ref = ((ref - mean) / std)[:, (2, 1, 0)].contiguous()
    out = pre([frame, frame])
    assert out.is_contiguous() and torch.equal(out, torch.cat([ref, ref]))


def test_crop_in_boxes_is_crop_masks_laid_out_detection_first():
    """Same values as the shared crop on [h, w, N], for boxes inside, across and
    outside the image, reversed and degenerate ones, with and without padding."""
    g = torch.Generator().manual_seed(0)
    B, D, h, w = 2, 7, 12, 17
    masks = torch.rand(B, D, h, w, generator=g)
    boxes = torch.rand(B, D, 4, generator=g) * 1.4 - 0.2
    boxes[0, 0] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    boxes[1, 1] = torch.tensor([0.9, 0.8, 0.1, 0.2])
    for padding in (0.0, 1.0):
        flat = masks.permute(2, 3, 0, 1).reshape(h, w, B * D)  # [h, w, B*D]
        ref = crop_masks(flat, boxes.reshape(B * D, 4), padding)
        ref = ref.reshape(h, w, B, D).permute(2, 3, 0, 1)  # [B, D, h, w]
        assert torch.equal(crop_in_boxes(masks, boxes, padding), ref)
