"""The faster paths of the CPU benchmarks give the reference values exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from yolact.core.preprocess import SquarePreprocessor

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
