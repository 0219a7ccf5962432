"""The torch / torchvision pair must have working compiled ops on the CPU.

A CPU-only torch wheel next to a CUDA-linked torchvision wheel imports
``torchvision`` but fails on its first operator; these tests catch that.
"""

from __future__ import annotations

import torch


def test_torchvision_ops_import() -> None:
    import torchvision.ops

    assert callable(torchvision.ops.nms)


def test_nms_runs_on_cpu() -> None:
    from torchvision.ops import nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]


def test_roi_align_runs_on_cpu() -> None:
    from torchvision.ops import roi_align

    feats = torch.arange(16.0).view(1, 1, 4, 4)
    rois = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]])
    out = roi_align(feats, rois, (2, 2), spatial_scale=1.0, sampling_ratio=1, aligned=True)
    assert out.shape == (1, 1, 2, 2)
    # One sample at the centre of each 2x2 bin: the mean of that bin.
    assert torch.allclose(out[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))


def test_deform_conv2d_runs_on_cpu() -> None:
    from torchvision.ops import deform_conv2d

    x = torch.randn(1, 2, 5, 5)
    w = torch.randn(3, 2, 3, 3)
    offset = torch.zeros(1, 18, 5, 5)
    out = deform_conv2d(x, offset, w, padding=1)
    assert torch.allclose(out, torch.nn.functional.conv2d(x, w, padding=1), atol=1e-5)
