"""The named steps of YOLACT's mask loss (yolact/models/yolact/mask_terms.py), each
by hand, and ``YolactLoss.mask_losses`` as their composition (issue 17, item 7)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from yolact.models.yolact.loss import YolactLoss
from yolact.models.yolact.mask_terms import (
    assemble_masks,
    box_normalised_bce,
    gather_targets,
    maskiou_sample,
    maskiou_term,
    sample_positives,
)
from yolact.models.yolact.match import Matches


def test_sample_positives_keeps_all_under_the_limit_and_subsamples_over_it() -> None:
    conf_t = torch.tensor([0, 2, -1, 1, 0, 3, 1])
    selected, num_pos = sample_positives(conf_t, 10)
    assert selected.tolist() == [1, 3, 5, 6] and num_pos == 4
    torch.manual_seed(0)
    selected, num_pos = sample_positives(conf_t, 2)
    assert num_pos == 4 and selected.numel() == 2
    assert set(selected.tolist()) <= {1, 3, 5, 6} and len(set(selected.tolist())) == 2
    selected, num_pos = sample_positives(torch.zeros(5, dtype=torch.long), 2)
    assert selected.numel() == 0 and num_pos == 0


def test_gather_targets_downsamples_and_orders_by_gt_index() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.uint8)
    masks[0, :4, :] = 1  # top half
    masks[1, :, 4:] = 1  # right half
    boxes = torch.tensor([[0.0, 0.0, 1.0, 0.5], [0.5, 0.0, 1.0, 1.0]])
    like = torch.zeros(1, dtype=torch.float64)
    mask_t, boxes_t = gather_targets(
        {"masks": masks, "boxes": boxes}, torch.tensor([1, 0, 1]), (4, 4), like
    )
    assert mask_t.shape == (4, 4, 3) and mask_t.dtype == torch.float64
    right = torch.tensor([[0, 0, 1, 1]] * 4, dtype=torch.float64)
    top = torch.tensor([[1] * 4, [1] * 4, [0] * 4, [0] * 4], dtype=torch.float64)
    assert torch.equal(mask_t[..., 0], right) and torch.equal(mask_t[..., 2], right)
    assert torch.equal(mask_t[..., 1], top)
    assert boxes_t.dtype == torch.float64
    assert torch.equal(boxes_t, boxes.double()[[1, 0, 1]])


def test_assemble_masks_is_the_sigmoid_of_the_combination_cropped_to_the_box() -> None:
    proto = torch.zeros(4, 4, 2)
    proto[..., 0] = 1.0
    coef = torch.tensor([[2.0, 5.0]])
    pred = assemble_masks(proto, coef, torch.tensor([[0.0, 0.0, 0.5, 0.5]]))
    assert pred.shape == (4, 4, 1)
    inside = torch.zeros(4, 4, dtype=torch.bool)
    inside[:3, :3] = True  # the crop widens the box by one pixel
    assert torch.allclose(pred[inside, 0], torch.sigmoid(torch.tensor(2.0)))
    assert (pred[~inside, 0] == 0).all()


def test_box_normalised_bce_by_hand_and_nan_reaches_the_result() -> None:
    h, w = 4, 8
    pred = torch.full((h, w, 2), 0.5)
    target = torch.zeros(h, w, 2)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.25]])
    per_mask = box_normalised_bce(pred, target, boxes)
    # every pixel costs ln 2; the sum is divided by the box's share of the h * w pixels
    full = h * w * math.log(2)
    assert per_mask.tolist() == pytest.approx([full, full / (0.5 * 0.25)], rel=1e-6)
    pred[0, 0, 1] = float("nan")
    per_mask = box_normalised_bce(pred, target, boxes)
    assert per_mask[0].item() == pytest.approx(full, rel=1e-6) and per_mask[1].isnan()


def test_maskiou_sample_leaves_out_small_masks_and_gives_the_iou() -> None:
    pred = torch.zeros(4, 4, 2)
    pred[:2, :, 0] = 0.9  # 8 pixels on
    target = torch.zeros(4, 4, 2)
    target[:1, :, 0] = 1  # 4 pixels, all inside the prediction
    target[0, 0, 1] = 1  # 1 pixel: too small
    sample = maskiou_sample(pred, target, torch.tensor([2, 0]), discard_area=2.0)
    assert sample is not None
    assert sample.inputs.shape == (1, 1, 4, 4) and torch.equal(sample.inputs[0, 0], pred[..., 0])
    assert sample.targets.tolist() == [0.5] and sample.labels.tolist() == [2]
    assert maskiou_sample(pred[..., 1:], target[..., 1:], torch.tensor([0]), 2.0) is None


class _Constant(nn.Module):
    """A stand-in mask IoU net predicting 0.25 for every class."""

    min_size = 2

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 3), 0.25) + self.bias


def test_maskiou_term_without_samples_is_zero_and_reaches_the_net() -> None:
    net = _Constant()
    loss = maskiou_term(net, [], torch.zeros(1, 4, 4, 2), detach_input=False)
    assert loss.item() == 0.0
    loss.backward()
    assert net.bias.grad is not None
    with pytest.raises(ValueError, match="at least 2x2 pixels, got 1x4"):
        maskiou_term(net, [], torch.zeros(1, 1, 4, 2), detach_input=False)


def test_mask_losses_is_the_composition_of_the_steps() -> None:
    torch.manual_seed(0)
    B, P, k, h, w, S = 2, 6, 3, 4, 4, 8
    outputs = {"proto": torch.rand(B, h, w, k), "coef": torch.randn(B, P, k)}
    conf = torch.tensor([[0, 1, 0, 2, 0, 0], [0, 0, 0, 0, 0, 0]])
    gt_index = torch.tensor([[0, 1, 0, 0, 0, 0], [0] * 6])
    matches = Matches(conf, torch.zeros(B, P, 4), gt_index, torch.zeros(B, P))
    masks = torch.zeros(2, S, S, dtype=torch.uint8)
    masks[0, :4, :4] = 1
    masks[1, 2:, 2:] = 1
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]])
    targets = [{"masks": masks, "boxes": boxes, "labels": torch.tensor([0, 1])}, {
        "masks": masks[:0], "boxes": boxes[:0], "labels": torch.tensor([], dtype=torch.long)
    }]  # fmt: skip
    loss_m, loss_i = YolactLoss(3).mask_losses(outputs, targets, matches, None)

    selected = torch.tensor([1, 3])
    mask_t, boxes_t = gather_targets(targets[0], gt_index[0, selected], (h, w), outputs["proto"])
    pred = assemble_masks(outputs["proto"][0], outputs["coef"][0, selected], boxes_t)
    expected = box_normalised_bce(pred, mask_t, boxes_t).sum() * 6.125 / h / w
    assert torch.allclose(loss_m, expected) and loss_i.item() == 0.0
