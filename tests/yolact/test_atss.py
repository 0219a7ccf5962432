"""The ATSS matching rule (``train.assigner="atss"``), checked against hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from yolact.models.yolact.loss import YolactLoss, total
from yolact.models.yolact.match import match
from yolact.models.yolact.model import build_model
from yolact.models.yolact.priors import make_priors
from yolact.registry import get_config


def _two_levels() -> torch.Tensor:
    # Level 0: 4x4 cells of 0.25 (indices 0..15, row-major); level 1: 2x2 cells of 0.5 (16..19).
    return torch.cat(
        [make_priors(4, 4, [8], [1.0], 32, False), make_priors(2, 2, [16], [1.0], 32, False)]
    )


def test_atss_by_hand() -> None:
    priors = _two_levels()
    # Object 0: [0, 0, 0.3, 0.3]. Its 3 nearest priors per level have IoU 0.694 (prior 0),
    # 0.089 (priors 1 and 4), 0.36 (prior 16) and 0 twice: mean 0.205, sample std 0.274,
    # threshold 0.478, so prior 0 alone qualifies (and its centre is inside the box).
    # Object 1 is elongated, [0.5, 0.25, 1.0, 0.5]: candidates 0.5, 0.5, 0 (level 0) and
    # 0.5, 0, 0 (level 1) give a threshold of 0.524 that none reaches, so it keeps its
    # best prior, the first of the ties (prior 6).
    boxes = torch.tensor([[0.0, 0.0, 0.3, 0.3], [0.5, 0.25, 1.0, 0.5]])
    labels = [torch.tensor([0, 1])]
    m = match(priors, [boxes], labels, assigner="atss", level_counts=[16, 4], topk=3)
    expected = [0] * 20
    expected[0], expected[6] = 1, 2
    assert m.conf[0].tolist() == expected
    assert m.gt_index[0, [0, 6]].tolist() == [0, 1]
    assert m.overlap[0, 0].item() == pytest.approx(0.0625 / 0.09)
    assert m.overlap[0, 6].item() == pytest.approx(0.5)
    # Background priors carry their best IoU; no neutral band.
    assert m.overlap[0, 16].item() == pytest.approx(0.36)
    assert (m.conf >= 0).all()


def test_atss_takes_every_candidate_above_the_adaptive_threshold() -> None:
    priors = make_priors(4, 4, [8], [1.0], 32, False)  # one level of 0.25 cells
    box = torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    label = [torch.tensor([0])]
    # The 4 priors nearest the centre (5, 6, 9, 10) lie inside the box with IoU 0.25
    # each: no spread, so all 4 reach the threshold.
    m = match(priors, [box], label, assigner="atss", level_counts=[16], topk=4)
    assert (m.conf[0] > 0).nonzero().squeeze(1).tolist() == [5, 6, 9, 10]
    # With 9 candidates, 5 more at the next distance touch the box only at an edge
    # (IoU 0): mean 0.111 + std 0.132 = 0.243, still reached by the inner four.
    m9 = match(priors, [box], label, assigner="atss", level_counts=[16], topk=9)
    assert (m9.conf[0] > 0).nonzero().squeeze(1).tolist() == [5, 6, 9, 10]
    # The original rule gives this box a single prior (every IoU is 0.25 < 0.4).
    assert (match(priors, [box], label).conf[0] > 0).sum().item() == 1


def test_atss_shared_prior_goes_to_the_larger_overlap() -> None:
    priors = _two_levels()
    # Both boxes contain the centre of prior 16 ([0, 0, 0.5, 0.5]); box 1 covers it more.
    boxes = torch.tensor([[0.0, 0.0, 0.3, 0.3], [0.0, 0.0, 0.45, 0.45]])
    labels = [torch.tensor([0, 1])]
    m = match(priors, [boxes], labels, assigner="atss", level_counts=[16, 4], topk=3)
    assert m.conf[0, 16].item() == 2 and m.gt_index[0, 16].item() == 1


def test_atss_with_empty_images_crowds_and_padding() -> None:
    priors = _two_levels()
    boxes = torch.tensor([[0.0, 0.0, 0.3, 0.3], [0.5, 0.25, 1.0, 0.5]])
    labels = torch.tensor([0, 1])
    empty, none = torch.zeros((0, 4)), torch.zeros(0, dtype=torch.long)
    crowd = [torch.zeros((0, 4)), torch.tensor([[0.5, 0.5, 1.0, 1.0]]), torch.zeros((0, 4))]
    kw = {"assigner": "atss", "level_counts": [16, 4], "topk": 3}
    m = match(priors, [boxes, empty, boxes[:1]], [labels, none, labels[:1]], crowd, **kw)
    alone = match(priors, [boxes], [labels], **kw)
    assert torch.equal(m.conf[0], alone.conf[0])
    # The empty image is background except under its crowd region (priors 10, 11, 14, 15, 19).
    assert sorted((m.conf[1] < 0).nonzero().squeeze(1).tolist()) == [10, 11, 14, 15, 19]
    assert (m.conf[1] >= 0).sum().item() == 15 and (m.conf[1] > 0).sum().item() == 0
    # A padded row (image 2 has one object) claims nothing.
    assert (m.conf[2] > 0).nonzero().squeeze(1).tolist() == [0]
    assert torch.isfinite(m.loc).all()


def test_atss_level_counts_must_cover_the_priors() -> None:
    with pytest.raises(ValueError, match="level_counts sum to 10, expected 20 priors"):
        match(_two_levels(), [torch.tensor([[0.0, 0.0, 0.3, 0.3]])], [torch.tensor([0])],
              assigner="atss", level_counts=[6, 4])  # fmt: skip


def test_atss_through_the_loss_gives_every_parameter_a_gradient(one_thread: None) -> None:
    torch.manual_seed(0)
    size = 128
    # Anchors that give positives on every FPN level, so each level gets a gradient.
    scales = ((13,), (25,), (50,), (101,), (201,))
    cfg = get_config("yolact_tiny").replace(class_names=("a", "b"), max_size=size, scales=scales)
    cfg = cfg.with_train(assigner="atss")
    model = build_model(cfg).train()
    masks = torch.zeros(2, size, size, dtype=torch.uint8)
    masks[0, 4:124, 4:124] = 1
    masks[1, 20:50, 30:70] = 1
    boxes = torch.tensor([[4 / size, 4 / size, 124 / size, 124 / size],
                          [30 / size, 20 / size, 70 / size, 50 / size]])  # fmt: skip
    targets = [{"boxes": boxes, "labels": torch.tensor([0, 1]), "masks": masks}]
    crit = YolactLoss(cfg.num_classes, assigner="atss")
    outputs = model(torch.randn(1, 3, size, size))
    levels = outputs["prior_levels"].tolist()
    assert sum(levels) == outputs["priors"].shape[0] and len(levels) == 5
    matches = crit.match(outputs["priors"], targets, levels)
    per_object = torch.bincount(matches.gt_index[0][matches.conf[0] > 0], minlength=2)
    assert (per_object >= 2).all(), per_object  # more than the single forced prior
    total(crit(outputs, targets)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []
