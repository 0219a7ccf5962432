"""Training loss: matching, OHEM, mask/semantic/mask-IoU terms, pinned values, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from yolact.models.yolact.box_coding import encode
from yolact.models.yolact.loss import LossWeights, YolactLoss, total
from yolact.models.yolact.maskiou import MaskIoUNet
from yolact.models.yolact.match import match
from yolact.models.yolact.model import build_model
from yolact.models.yolact.priors import make_priors
from yolact.registry import get_config


def _prior(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]


# ----------------------------------------------------------------------------- matching


def test_match_by_hand() -> None:
    priors = torch.tensor(
        [
            _prior(0.0, 0.0, 0.5, 0.5),  # IoU 1 with gt 0: positive
            _prior(0.05, 0.0, 0.55, 0.5),  # IoU 0.818 with gt 0: positive
            _prior(0.2, 0.0, 0.7, 0.5),  # IoU 0.429 with gt 0: neutral
            _prior(0.5, 0.5, 0.8, 0.8),  # IoU 0.111 with gt 1, its best: forced positive
            _prior(0.85, 0.05, 0.95, 0.15),  # no overlap: background
            _prior(0.85, 0.85, 0.95, 0.95),  # inside the crowd box: ignored
            _prior(0.7, 0.8, 0.9, 1.0),  # half inside the crowd box: background
        ]
    )
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.6, 0.6, 0.7, 0.7]])
    labels = torch.tensor([1, 0])
    crowd = torch.tensor([[0.8, 0.8, 1.0, 1.0]])
    m = match(priors, [boxes], [labels], [crowd])
    assert m.conf[0].tolist() == [2, 2, -1, 1, 0, -1, 0]
    assert m.gt_index[0, [0, 1, 3]].tolist() == [0, 0, 1]
    assert m.overlap[0, 0].item() == 2 and m.overlap[0, 3].item() == 2  # forced matches
    assert m.overlap[0, 2].item() == pytest.approx(0.15 / 0.35)
    # Regression targets by hand: prior 0 is the box itself; prior 1 sits 0.05 to the
    # right (dx = -0.05 / (0.1 * 0.5)); prior 3 is 3x the size of gt 1 around its centre.
    assert m.loc[0, 0].tolist() == pytest.approx([0, 0, 0, 0], abs=1e-5)
    assert m.loc[0, 1].tolist() == pytest.approx([-1, 0, 0, 0], abs=1e-5)
    third = math.log(1 / 3) / 0.2
    assert m.loc[0, 3].tolist() == pytest.approx([0, 0, third, third], abs=1e-4)
    pos = m.conf[0] > 0
    expected = encode(boxes[m.gt_index[0, pos]], priors[pos])
    assert torch.allclose(m.loc[0, pos], expected)

    # No crowd: prior 5 is plain background; crowds never turn positives or neutrals.
    assert match(priors, [boxes], [labels]).conf[0, 5].item() == 0
    everywhere = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    assert (
        match(priors, [boxes], [labels], [everywhere]).conf[0].tolist() == [2, 2, -1, 1] + [-1] * 3
    )
    # A crowd threshold of 1 disables the rule.
    off = match(priors, [boxes], [labels], [everywhere], crowd_iou_thresh=1.0)
    assert off.conf[0, 4].item() == 0


def test_forced_match_is_greedy_on_the_largest_overlap() -> None:
    # Everything spans the full height, so IoU is the 1-d IoU along x.
    priors = torch.tensor([_prior(0.3, 0, 0.7, 1), _prior(0.0, 0, 0.4, 1), _prior(0.8, 0, 1.0, 1)])
    # gt 0 (listed first) prefers prior 0 (IoU 0.667) but gt 1 overlaps it more (0.9),
    # so gt 1 takes prior 0 and gt 0 is forced onto prior 1 (IoU 0.25 < neg_thresh).
    boxes = torch.tensor([[0.25, 0.0, 0.6, 1.0], [0.3, 0.0, 0.66, 1.0]])
    m = match(priors, [boxes], [torch.tensor([1, 0])])
    assert m.conf[0].tolist() == [1, 2, 0]
    assert m.gt_index[0, :2].tolist() == [1, 0]


def test_match_batch_with_empty_images() -> None:
    priors = make_priors(4, 4, (4.0, 8.0), (1.0, 0.5, 2.0), 16, False)
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.6]])
    empty = torch.zeros((0, 4))
    none = torch.zeros(0, dtype=torch.long)
    m = match(priors, [empty, boxes, empty], [none, torch.tensor([0]), none])
    assert (m.conf[0] == 0).all() and (m.conf[2] == 0).all()
    alone = match(priors, [boxes], [torch.tensor([0])])
    assert torch.equal(m.conf[1], alone.conf[0])
    assert torch.isfinite(m.loc).all()
    assert (match(priors, [empty], [none]).conf == 0).all()


# ----------------------------------------------------------------------------- OHEM


def test_ohem_picks_the_hardest_negatives() -> None:
    P = 10
    # Background loss grows with the class-1 logit; prior 0 is positive, prior 1 neutral.
    v = torch.tensor([0.0, 9.0, 1.0, 5.0, 2.0, 7.0, 0.0, 3.0, -1.0, 4.0])
    conf = torch.stack([torch.zeros(P), v, torch.full((P,), -10.0)], dim=1)[None]
    conf.requires_grad_(True)
    conf_t = torch.zeros(1, P, dtype=torch.long)
    conf_t[0, 0], conf_t[0, 1] = 2, -1
    loss = YolactLoss(3).ohem_conf_loss(conf, conf_t, (conf_t > 0).sum(1))
    loss.backward()
    used = conf.grad[0].abs().sum(1).nonzero().squeeze(1)
    assert used.tolist() == [0, 3, 5, 9]  # the positive and the 3 hardest backgrounds
    keep = torch.tensor([0, 3, 5, 9])
    expected = F.cross_entropy(conf[0, keep], conf_t[0, keep], reduction="sum")
    assert loss.item() == pytest.approx(expected.item())
    # Two positives: six negatives, capped by P - 1.
    conf_t[0, 2] = 1
    conf.grad = None
    YolactLoss(3).ohem_conf_loss(conf, conf_t, (conf_t > 0).sum(1)).backward()
    assert conf.grad[0].abs().sum(1).nonzero().squeeze(1).tolist() == [0, 2, 3, 4, 5, 6, 7, 9]
    # An image without positives keeps the quota of one positive.
    conf.grad = None
    conf_t.zero_()
    YolactLoss(3).ohem_conf_loss(conf, conf_t, (conf_t > 0).sum(1)).backward()
    assert conf.grad[0].abs().sum(1).nonzero().squeeze(1).tolist() == [1, 3, 5]


# ----------------------------------------------------------------------------- mask loss


def _mask_case(coef_sign: float, num_priors: int = 1) -> tuple[dict, list[dict]]:
    """One 16x16 image, a 0.5x0.5 box in the middle, prototypes 8x8 (k=4)."""
    S, h, k = 16, 8, 4
    box = [0.25, 0.25, 0.75, 0.75]
    priors = torch.tensor([_prior(*box)] * num_priors + [_prior(0.0, 0.0, 0.1, 0.1)])
    P = priors.shape[0]
    gt = torch.zeros(1, S, S, dtype=torch.uint8)
    gt[0, 4:12, 6:12] = 1  # prototype pixels rows 2..5, cols 3..5
    proto = torch.full((1, h, h, k), 0.0)
    proto[0, :, :, 0] = -10.0
    proto[0, 2:6, 3:6, 0] = 10.0
    coef = torch.zeros(1, P, k)
    coef[0, :, 0] = coef_sign
    outputs = {
        "loc": torch.zeros(1, P, 4),
        "conf": torch.zeros(1, P, 3),
        "coef": coef,
        "proto": proto,
        "priors": priors,
    }
    targets = [{"boxes": torch.tensor([box]), "labels": torch.tensor([1]), "masks": gt}]
    return outputs, targets


def test_mask_loss_perfect_and_flipped() -> None:
    crit = YolactLoss(3)
    perfect = crit(*_mask_case(1.0))["M"].item()
    flipped = crit(*_mask_case(-1.0))["M"].item()
    assert 0 <= perfect < 1e-3
    assert flipped > 100 * max(perfect, 1e-4)
    assert flipped > 1.0


def test_mask_loss_normalisation_by_hand() -> None:
    torch.manual_seed(3)
    outputs, targets = _mask_case(1.0)
    outputs["proto"] = torch.rand(1, 8, 8, 4)
    outputs["coef"] = torch.randn(1, 2, 4).tanh()
    loss = YolactLoss(3)(outputs, targets)["M"]

    pred = torch.sigmoid(outputs["proto"][0] @ outputs["coef"][0, 0])  # [8, 8]
    inside = torch.zeros(8, 8)
    inside[1:7, 1:7] = 1  # box 2..6 in prototype pixels, widened by one pixel
    pred = pred * inside
    gt = torch.zeros(8, 8)
    gt[2:6, 3:6] = 1
    bce = -(torch.xlogy(gt, pred) + torch.xlogy(1 - gt, 1 - pred)).sum()
    box_w = box_h = 0.5 * 8
    expected = bce / box_w / box_h * (8 * 8) * 6.125 / 8 / 8 / 1  # one positive
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_mask_subsampling_rescales() -> None:
    # Three identical positives: training one of them, scaled by 3/1, equals training all.
    outputs, targets = _mask_case(0.3, num_priors=3)
    all_masks = YolactLoss(3)(outputs, targets)["M"]
    one_mask = YolactLoss(3, masks_to_train=1)(outputs, targets)["M"]
    assert one_mask.item() == pytest.approx(all_masks.item(), rel=1e-5)


# ----------------------------------------------------------------------------- pinned values


def _random_batch(empty: bool = False) -> tuple[dict, list[dict]]:
    """A seeded two-image batch: 96 priors (4x4 cells), C=3, k=4, prototypes 8x8."""
    torch.manual_seed(0)
    C, k, S, B = 3, 4, 16, 2
    priors = make_priors(4, 4, (4.0, 8.0), (1.0, 0.5, 2.0), S, False)
    P = priors.shape[0]
    outputs = {
        "loc": torch.randn(B, P, 4),
        "conf": torch.randn(B, P, C),
        "coef": torch.randn(B, P, k).tanh(),
        "proto": torch.randn(B, 8, 8, k).relu(),
        "priors": priors,
        "segm": torch.randn(B, C - 1, 4, 4),
    }
    per_image = [
        ([[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.8]], [0, 1], [[0.0, 0.7, 0.3, 1.0]]),
        ([[0.2, 0.5, 0.7, 0.95]], [1], []),
    ]
    targets = []
    for boxes, labels, crowds in per_image:
        boxes_t = torch.tensor(boxes)
        masks = torch.zeros(len(boxes), S, S, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate((boxes_t * S).round().long().tolist()):
            masks[i, y1:y2, x1:x2] = (torch.rand(y2 - y1, x2 - x1) > 0.3).to(torch.uint8)
        targets.append(
            {
                "boxes": boxes_t[:0] if empty else boxes_t,
                "labels": torch.tensor(labels)[:0] if empty else torch.tensor(labels),
                "masks": masks[:0] if empty else masks,
                "crowd_boxes": torch.tensor(crowds).reshape(-1, 4),
            }
        )
    return outputs, targets


def _maskiou_net() -> MaskIoUNet:
    torch.manual_seed(1)
    return MaskIoUNet(2, channels=(4,))


PINNED = {"B": 5.509077, "C": 9.515614, "M": 8.882173, "S": 1.429282}
PINNED_PLUS = {"B": 5.509077, "C": 15.029747, "M": 8.882173, "S": 1.429282, "I": 0.352432}


def test_pinned_values() -> None:
    outputs, targets = _random_batch()
    losses = YolactLoss(3)(outputs, targets)
    assert {k: round(v.item(), 6) for k, v in losses.items()} == pytest.approx(
        PINNED, rel=1e-4, abs=1e-4
    ), "losses have changed!"


def test_pinned_values_focal_and_maskiou() -> None:
    outputs, targets = _random_batch()
    crit = YolactLoss(3, use_focal_loss=True, use_maskiou=True, discard_mask_area=2.0)
    losses = crit(outputs, targets, _maskiou_net())
    assert {k: round(v.item(), 6) for k, v in losses.items()} == pytest.approx(
        PINNED_PLUS, rel=1e-4, abs=1e-4
    ), "losses have changed!"


def test_weights_scale_terms() -> None:
    outputs, targets = _random_batch()
    base = YolactLoss(3)(outputs, targets)
    doubled = LossWeights(bbox=3.0, conf=2.0, mask=12.25, semantic=2.0)
    scaled = YolactLoss(3, weights=doubled)(outputs, targets)
    for key in base:
        assert scaled[key].item() == pytest.approx(2 * base[key].item(), rel=1e-5)
    assert total(base).item() == pytest.approx(sum(v.item() for v in base.values()), rel=1e-6)


# ----------------------------------------------------------------------------- empty targets


@pytest.mark.parametrize("focal", [False, True])
def test_empty_targets_are_finite(focal: bool) -> None:
    outputs, targets = _random_batch(empty=True)
    crit = YolactLoss(3, use_focal_loss=focal, use_maskiou=True)
    losses = crit(outputs, targets, _maskiou_net())
    assert set(losses) == {"B", "C", "M", "S", "I"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["B"].item() == 0 and losses["M"].item() == 0 and losses["I"].item() == 0
    assert losses["C"].item() > 0  # hard negatives (OHEM) or all priors (focal)
    assert losses["S"].item() > 0

    # One empty image next to a full one only adds its three hard negatives to C.
    full, full_targets = _random_batch()
    mixed = [full_targets[0], targets[1]]
    alone = YolactLoss(3)({k: v[:1] if k != "priors" else v for k, v in full.items()}, mixed[:1])
    both = YolactLoss(3)(full, mixed)
    assert both["B"].item() == pytest.approx(alone["B"].item(), rel=1e-5)
    assert both["M"].item() == pytest.approx(alone["M"].item(), rel=1e-5)
    assert both["C"].item() > alone["C"].item()


def test_missing_maskiou_net_is_an_error() -> None:
    outputs, targets = _random_batch()
    with pytest.raises(ValueError, match="maskiou_net"):
        YolactLoss(3, use_maskiou=True)(outputs, targets)


def test_maskiou_input_detach_option() -> None:
    outputs, targets = _random_batch()
    outputs["coef"].requires_grad_(True)
    crit = YolactLoss(3, use_maskiou=True, discard_mask_area=2.0)
    crit(outputs, targets, _maskiou_net())["I"].backward()
    assert outputs["coef"].grad.abs().sum() > 0  # the original lets I reach the masks
    outputs["coef"].grad = None
    crit = YolactLoss(3, use_maskiou=True, discard_mask_area=2.0, maskiou_detach_input=True)
    net = _maskiou_net()
    crit(outputs, targets, net)["I"].backward()
    assert outputs["coef"].grad is None
    assert all(p.grad is not None for p in net.parameters())


# ----------------------------------------------------------------------------- real model


SCENE_OBJECTS = [[(16, 24, 72, 96, 0), (80, 16, 120, 56, 1)], [(30, 40, 110, 100, 1)]]


def _scene(
    size: int, objects: list[list[tuple[int, int, int, int, int]]] = SCENE_OBJECTS
) -> tuple[torch.Tensor, list[dict]]:
    """One image per entry of ``objects`` (x1, y1, x2, y2, label in pixels): noise with
    bright rectangles, class 0 in the first channel and class 1 in the second."""
    images = torch.randn(len(objects), 3, size, size) * 0.1
    targets = []
    for b, objs in enumerate(objects):
        masks = torch.zeros(len(objs), size, size, dtype=torch.uint8)
        for i, (x1, y1, x2, y2, label) in enumerate(objs):
            masks[i, y1:y2, x1:x2] = 1
            images[b, label, y1:y2, x1:x2] += 1.5
        boxes = torch.tensor([o[:4] for o in objs], dtype=torch.float32) / size
        targets.append(
            {"boxes": boxes, "labels": torch.tensor([o[4] for o in objs]), "masks": masks}
        )
    return images, targets


@pytest.mark.parametrize("plus", [False, True])
def test_every_parameter_gets_a_gradient(plus: bool, one_thread: None) -> None:
    torch.manual_seed(0)
    size = 128
    # Anchor sizes that give positives on every FPN level, so each level gets a gradient.
    scales = ((13,), (25,), (50,), (101,), (201,))
    cfg = get_config("yolact_tiny").replace(class_names=("a", "b"), max_size=size, scales=scales)
    if plus:
        cfg = cfg.replace(use_maskiou=True, maskiou_channels=(8, 16, 32))  # 32 px prototypes
    model = build_model(cfg).train()
    masks = torch.zeros(2, size, size, dtype=torch.uint8)
    masks[0, 4:124, 4:124] = 1
    masks[1, 20:50, 30:70] = 1
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [30 / size, 20 / size, 70 / size, 50 / size]])
    targets = [{"boxes": boxes, "labels": torch.tensor([0, 1]), "masks": masks}]
    # Lower thresholds so that the largest (P7) anchors also match the full-image box.
    crit = YolactLoss(cfg.num_classes, pos_thresh=0.4, neg_thresh=0.3, use_maskiou=plus)
    outputs = model(torch.randn(1, 3, size, size))
    losses = crit(outputs, targets, model.maskiou_net if plus else None)
    assert set(losses) == ({"B", "C", "M", "S", "I"} if plus else {"B", "C", "M", "S"})
    total(losses).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_training_steps_reduce_the_loss(one_thread: None) -> None:
    torch.manual_seed(0)
    size = 128
    cfg = get_config("yolact_tiny").replace(class_names=("a", "b"), max_size=size)
    model = build_model(cfg).train()
    images, targets = _scene(size)
    crit = YolactLoss(cfg.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    history = []
    for _ in range(25):
        loss = total(crit(model(images), targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.5 * history[0], history


# ----------------------------------------------------------------------------- sigmoid classifier


def _focal_cfg(size: int = 64):
    """A 64 px yolact_tiny with the sigmoid classifier (focal loss)."""
    return get_config("yolact_tiny").replace(
        class_names=("a", "b"), max_size=size, classifier="sigmoid", fpn_channels=32,
        proto_channels=32, head_channels=32, num_prototypes=8,
        scales=((8,), (16,), (32,), (48,), (64,)),
    )  # fmt: skip


def test_sigmoid_classifier_starts_at_the_prior(one_thread: None) -> None:
    from yolact.models.yolact.postprocess import class_scores
    from yolact.models.yolact.training import build_criterion

    torch.manual_seed(0)
    cfg = _focal_cfg()
    model = build_model(cfg)
    bias = model.prediction_layers[0].conf_layer.bias
    assert torch.allclose(bias, torch.full_like(bias, math.log(0.01 / 0.99)))
    with torch.no_grad():
        probs = class_scores(model(torch.randn(2, 3, 64, 64))["conf"], cfg.classifier)
    assert torch.sigmoid(bias).tolist() == pytest.approx([0.01] * bias.numel(), rel=1e-5)
    # pi from the bias; the N(0, 0.01) weights only spread it a little.
    assert probs.median().item() == pytest.approx(0.01, abs=2e-3)
    assert probs.mean().item() == pytest.approx(0.01, abs=2e-3)
    assert probs.min().item() > 0.003 and probs.max().item() < 0.03
    assert build_criterion(cfg).use_focal_loss
    # The softmax classifier (every original config) keeps its zero bias and OHEM loss.
    plain = build_model(cfg.replace(classifier="softmax"))
    assert not plain.prediction_layers[0].conf_layer.bias.any()
    assert not build_criterion(plain.cfg).use_focal_loss


def test_focal_model_trains_and_detects_with_sensible_scores(one_thread: None) -> None:
    """Trained with the focal loss and decoded with sigmoid, a model finds the objects
    of its small fixed training set with high scores, and scores background low."""
    from torchvision.ops import box_iou

    from yolact.models.yolact.postprocess import PostProcessor, class_scores
    from yolact.models.yolact.training import build_criterion

    torch.manual_seed(0)
    size = 64
    cfg = _focal_cfg(size)
    model = build_model(cfg).train()
    # Rectangles brightened in channel 0 (class a) or 1 (class b).
    objects = [
        [(8, 12, 36, 48, 0)],
        [(30, 8, 60, 30, 1)],
        [(10, 30, 40, 60, 1), (44, 6, 60, 24, 0)],
        [(20, 20, 50, 44, 0)],
    ]
    images, targets = _scene(size, objects)
    crit = build_criterion(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    for _ in range(200):
        loss = total(crit(model(images), targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(images)
    dets = PostProcessor(cfg.nms, cfg.class_names, classifier=cfg.classifier)(
        out, [(size, size)] * len(objects)
    )
    for det, objs in zip(dets, objects):
        gt = torch.tensor([o[:4] for o in objs], dtype=torch.float32)
        found = det.scores > 0.3
        # Exactly the objects score above 0.3, each with its class and box.
        assert int(found.sum()) == len(objs), det.scores[:4]
        iou = box_iou(det.boxes[found].float(), gt)  # [n, G]
        best, which = iou.max(dim=1)
        assert (best > 0.5).all() and sorted(which.tolist()) == list(range(len(objs)))
        assert det.labels[found].tolist() == [objs[j][4] for j in which.tolist()]
    # Priors whose anchor lies away from every object score low.
    anchors = out["priors"]
    corners = torch.cat(
        [anchors[:, :2] - anchors[:, 2:] / 2, anchors[:, :2] + anchors[:, 2:] / 2], 1
    )
    best = class_scores(out["conf"], cfg.classifier).max(dim=-1).values  # [B, P]
    for b, t in enumerate(targets):
        background = box_iou(corners, t["boxes"]).max(dim=1).values == 0  # [P]
        assert background.sum() > 100
        assert best[b, background].max().item() < 0.1
        assert best[b, background].mean().item() < 0.01


def test_maskiou_net_too_deep_for_the_prototypes_is_a_clear_error(one_thread: None) -> None:
    """yolact_tiny at 96 px has 24 px prototypes; the five default mask IoU convs need 63."""
    cfg = get_config("yolact_tiny").replace(class_names=("a", "b"), max_size=96, use_maskiou=True)
    model = build_model(cfg).train()
    assert model.maskiou_net.min_size == 63
    assert MaskIoUNet(2, (8, 16, 32)).min_size == 15
    outputs, targets = model(torch.randn(1, 3, 96, 96)), _scene(96)[1][:1]
    crit = YolactLoss(cfg.num_classes, use_maskiou=True)
    with pytest.raises(ValueError, match="needs prototypes of at least 63x63 pixels, got 24x24"):
        crit(outputs, targets, model.maskiou_net)


def test_giou_box_loss_by_hand() -> None:
    # One prior, the box [0.25, 0.25, 0.75, 0.75], predicting no offset.
    priors = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    loc = torch.zeros(1, 1, 4)
    pos = torch.tensor([[True]])
    giou = YolactLoss(2, box_loss="giou")
    # A target that contains the prior box: the enclosing box is the union, so the loss
    # is 1 - IoU = 1 - 0.25 / 0.375.
    inside = encode(torch.tensor([[0.25, 0.25, 0.75, 1.0]]), priors)[None]
    assert giou.box_term(loc, inside, priors, pos).item() == pytest.approx(1 / 3, abs=1e-5)
    # A disjoint target [0.8, 0.25, 1.0, 0.75]: IoU 0, enclosing box 0.75 x 0.5, union
    # 0.35, so GIoU = -(0.375 - 0.35) / 0.375 and the loss 1 + 1 / 15.
    apart = encode(torch.tensor([[0.8, 0.25, 1.0, 0.75]]), priors)[None]
    assert giou.box_term(loc, apart, priors, pos).item() == pytest.approx(1 + 1 / 15, abs=1e-5)
    # The default stays the original's smooth L1 on the offsets.
    expected = F.smooth_l1_loss(loc[0], inside[0], reduction="sum").item()
    assert YolactLoss(2).box_term(loc, inside, priors, pos).item() == pytest.approx(expected)
    # Nothing foreground: zero, and still differentiable.
    loc.requires_grad_(True)
    none = giou.box_term(loc, inside, priors, torch.tensor([[False]]))
    none.backward()
    assert none.item() == 0 and loc.grad is not None
