"""The stream tracker's mask sampling for --track_iou=mask: the centre pixel of each
block, read only inside each detection's box."""

from __future__ import annotations

import torch

from yolact.inference.tracking import small_masks


def _masks() -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.zeros((3, 50, 70), dtype=torch.bool)
    m[0, 5:20, 10:33] = True
    m[1, 30:50, 40:70] = True  # at the frame's corner
    m[1, 35:40, 50:52] = False  # a hole
    boxes = torch.tensor([[10, 5, 33, 20], [40, 30, 70, 50], [0, 0, 0, 0]], dtype=torch.float32)
    return m, boxes


def test_cells_are_the_block_centres():
    m, boxes = _masks()
    small = small_masks(m, boxes, longest=20)  # blocks of ceil(70 / 20) = 4 pixels
    assert small.shape == (3, 12, 17) and small.dtype == torch.bool
    assert torch.equal(small, m[:, 2::4, 2::4])


def test_pixels_outside_the_box_are_not_read():
    m, boxes = _masks()
    m[0, 44:48, 0:4] = True  # outside box 0 (and its one-cell margin)
    small = small_masks(m, boxes, longest=20)
    assert not small[0, 11, 0]
    assert m[0, 46, 2]  # the pixel that cell samples


def test_small_frames_are_kept_as_they_are():
    m, boxes = _masks()
    assert torch.equal(small_masks(m, boxes, longest=70), m)
    empty = torch.zeros((0, 500, 700), dtype=torch.bool)
    assert small_masks(empty, torch.zeros((0, 4))).shape == (0, 500, 700)
