"""Post-processing on hand-made network outputs: boxes, labels, scores, masks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yolact.core.structures import Detections
from yolact.models.yolact.config import NMSConfig
from yolact.models.yolact.postprocess import PostProcessor
from yolact.registry import get_config

NAMES = ("a", "b")
H, W = 32, 64  # image size
# Priors (cx, cy, w, h); with loc = 0 the boxes are the priors themselves:
#   p0 [0, 0, .5, .5], p1 [.0625, .0625, .5625, .5625] (IoU .62 with p0), p2 [.5, 0, 1, 1].
PRIORS = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.3125, 0.3125, 0.5, 0.5], [0.75, 0.5, 0.5, 1.0]])
PIXEL_BOXES = {0: [0.0, 0.0, 32.0, 16.0], 1: [4.0, 2.0, 36.0, 18.0], 2: [32.0, 0.0, 64.0, 32.0]}
# Logits (background, a, b): p0 and p1 are "a", p2 is "b".
LOGITS = torch.tensor([[0.0, 4.0, -4.0], [0.0, 3.0, -4.0], [-1.0, -4.0, 3.0]])
SCORES = torch.softmax(LOGITS, dim=1)  # [prior, class]
# Prototypes 8 x 8, k = 2: channel 0 is +10 on the left half, channel 1 on the top half.
PROTO = torch.full((8, 8, 2), -10.0)
PROTO[:, :4, 0] = 10.0
PROTO[:4, :, 1] = 10.0
# Coefficients: p0 the left half, p1 the top half, p2 the right half.
COEF = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
# Crop windows at prototype resolution (rows, cols), box edges widened by 1 pixel.
CROPS = {
    0: (slice(0, 5), slice(0, 5)),
    1: (slice(0, 6), slice(0, 6)),
    2: (slice(0, 8), slice(3, 8)),
}


def outputs(logits: torch.Tensor = LOGITS, batch: int = 1) -> dict[str, torch.Tensor]:
    return {
        "loc": torch.zeros(batch, 3, 4),
        "conf": logits.expand(batch, 3, 3).clone(),
        "coef": COEF.expand(batch, 3, 2).clone(),
        "proto": PROTO.expand(batch, 8, 8, 2).clone(),
        "priors": PRIORS,
    }


def expected_mask(prior: int, size: tuple[int, int] = (H, W), crop: bool = True) -> torch.Tensor:
    soft = torch.sigmoid(PROTO @ COEF[prior])  # [8, 8]
    if crop:
        window = torch.zeros(8, 8)
        window[CROPS[prior]] = 1.0
        soft = soft * window
    return F.interpolate(soft[None, None], size, mode="bilinear", align_corners=False)[0, 0] > 0.5


def check(det: Detections, expected: list[tuple[int, int]], size=(H, W), crop=True) -> None:
    """expected: (prior, label) pairs in output order."""
    assert len(det) == len(expected)
    assert det.image_size == size
    assert det.labels.tolist() == [label for _, label in expected]
    assert det.names == [NAMES[label] for _, label in expected]
    scores = [SCORES[p, label + 1].item() for p, label in expected]
    assert det.scores.tolist() == pytest.approx(scores, rel=1e-6)
    assert torch.equal(det.box_scores, det.scores) and torch.equal(det.mask_scores, det.scores)
    assert det.boxes.tolist() == [PIXEL_BOXES[p] for p, _ in expected]
    assert det.masks is not None and det.masks.dtype == torch.bool
    assert det.masks.shape == (len(expected), *size)
    for m, (p, _) in zip(det.masks, expected):
        assert torch.equal(m, expected_mask(p, size, crop))


FAST = [(0, 0), (2, 1), (2, 0), (1, 1)]


def test_fast_nms_detections() -> None:
    # Fast NMS: p1 loses class a to p0; no second score threshold, so the
    # low-scoring class-a p2 and class-b p1 stay.
    det = PostProcessor(NMSConfig(), NAMES)(outputs(), [(H, W)])[0]
    check(det, FAST)
    # The left half of the image, cropped to p0's box, is p0's mask.
    assert det.masks[0, :14, :30].all() and not det.masks[0, :, 40:].any()
    assert not det.masks[0, 24:].any()


def test_without_crop() -> None:
    det = PostProcessor(NMSConfig(), NAMES, crop=False)(outputs(), [(H, W)])[0]
    check(det, FAST, crop=False)
    assert det.masks[0, :, :30].all()


def test_score_threshold_and_top_k() -> None:
    check(PostProcessor(NMSConfig(), NAMES, score_threshold=0.5)(outputs(), [(H, W)])[0], FAST[:2])
    check(PostProcessor(NMSConfig(), NAMES, top_k=1)(outputs(), [(H, W)])[0], FAST[:1])
    check(PostProcessor(NMSConfig(), NAMES, top_k=3)(outputs(), [(H, W)])[0], FAST[:3])
    det = PostProcessor(NMSConfig(), NAMES, score_threshold=0.99)(outputs(), [(H, W)])[0]
    assert len(det) == 0 and det.masks.shape == (0, H, W)


def test_boxes_only() -> None:
    det = PostProcessor(NMSConfig(), NAMES, masks=False)(outputs(), [(H, W)])[0]
    assert det.masks is None and len(det) == 4
    with pytest.raises(ValueError):
        det.polygons()


@pytest.mark.parametrize("method", ["fast", "cross_class", "standard"])
def test_nms_methods(method: str) -> None:
    det = PostProcessor(NMSConfig(method=method), NAMES)(outputs(), [(H, W)])[0]
    if method == "fast":
        check(det, FAST)
    else:
        # Cross-class: p1 (best class a) is suppressed by p0; standard: only scores
        # above 0.05 enter and p1 is suppressed within class a.
        check(det, [(0, 0), (2, 1)])


def test_no_candidate_gives_empty_detections() -> None:
    logits = torch.tensor([[10.0, 0.0, 0.0]]).expand(3, 3)  # foreground ~ 4.5e-5 < 0.05
    for method in ("fast", "cross_class", "standard"):
        det = PostProcessor(NMSConfig(method=method), NAMES)(outputs(logits), [(H, W)])[0]
        assert len(det) == 0
        assert det.boxes.shape == (0, 4) and det.labels.shape == (0,)
        assert det.labels.dtype == torch.int64
        assert det.scores.shape == det.box_scores.shape == det.mask_scores.shape == (0,)
        assert det.masks.shape == (0, H, W) and det.masks.dtype == torch.bool
        assert det.names == [] and det.polygons() == []


def test_batch_of_two_images_of_different_sizes() -> None:
    out = outputs(batch=2)
    out["conf"][1] = torch.tensor([[10.0, 0.0, 0.0], [10.0, 0.0, 0.0], [-1.0, -4.0, 3.0]])
    dets = PostProcessor(NMSConfig(), NAMES)(out, [(H, W), (16, 24)])
    check(dets[0], FAST)
    # Only p2 is a candidate in the second image; it is kept for both classes.
    second = dets[1]
    assert second.image_size == (16, 24) and second.masks.shape == (2, 16, 24)
    assert second.labels.tolist() == [1, 0]
    assert second.boxes.tolist() == [[12.0, 0.0, 24.0, 16.0]] * 2
    assert torch.equal(second.masks[0], expected_mask(2, (16, 24)))


class StubMaskIoU(nn.Module):
    """Predicts a fixed IoU per class and records its input."""

    def __init__(self, per_class: list[float]) -> None:
        super().__init__()
        self.per_class = torch.tensor(per_class)
        self.inputs: list[torch.Tensor] = []

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        self.inputs.append(masks)
        return self.per_class.expand(masks.shape[0], -1)


def test_maskiou_rescoring_constant() -> None:
    stub = StubMaskIoU([0.5, 0.5])
    det = PostProcessor(NMSConfig(), NAMES)(outputs(), [(H, W)], maskiou_net=stub)[0]
    plain = PostProcessor(NMSConfig(), NAMES)(outputs(), [(H, W)])[0]
    assert stub.inputs[0].shape == (4, 1, 8, 8)  # cropped soft masks at prototype size
    assert torch.allclose(det.scores, plain.scores * 0.5)
    assert torch.equal(det.mask_scores, det.scores)
    assert torch.equal(det.box_scores, plain.box_scores)
    assert torch.equal(det.boxes, plain.boxes) and torch.equal(det.masks, plain.masks)


def test_maskiou_rescoring_uses_the_label_and_reorders() -> None:
    stub = StubMaskIoU([0.1, 0.9])  # class a masks judged poor, class b good
    det = PostProcessor(NMSConfig(), NAMES)(outputs(), [(H, W)], maskiou_net=stub)[0]
    order = [(2, 1), (0, 0), (1, 1), (2, 0)]
    assert det.labels.tolist() == [label for _, label in order]
    box_scores = [SCORES[p, label + 1].item() for p, label in order]
    assert det.box_scores.tolist() == pytest.approx(box_scores, rel=1e-6)
    rescored = [s * (0.1, 0.9)[label] for s, (_, label) in zip(box_scores, order)]
    assert det.scores.tolist() == pytest.approx(rescored, rel=1e-6)
    # The score threshold applies to the class score before re-scoring, then to the final score.
    det = PostProcessor(NMSConfig(), NAMES, score_threshold=0.5)(
        outputs(), [(H, W)], maskiou_net=StubMaskIoU([0.1, 0.9])
    )[0]
    assert det.labels.tolist() == [1]


def test_detections_helpers() -> None:
    det = PostProcessor(NMSConfig(), NAMES)(outputs(), [(H, W)])[0]
    sub = det.select(det.labels == 1)
    assert len(sub) == 2 and sub.names == ["b", "b"] and sub.masks.shape == (2, H, W)
    tv = det.to_torchvision()
    assert tv["masks"].shape == (4, 1, H, W) and torch.equal(tv["boxes"], det.boxes)
    arrays = det.numpy()
    assert isinstance(arrays["boxes"], np.ndarray) and list(arrays["names"]) == det.names
    polygons = det.polygons()
    assert len(polygons) == 4 and all(len(p) >= 1 for p in polygons[:2])
    empty = Detections.empty((5, 7), NAMES)
    assert len(empty) == 0 and empty.masks.shape == (0, 5, 7)


def test_predictor_on_a_tiny_model() -> None:
    from yolact.models.yolact.model import build_model
    from yolact.models.yolact.predictor import YolactPredictor

    torch.manual_seed(0)
    predictor = YolactPredictor(build_model(get_config("yolact_tiny")), device="cpu", top_k=5)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    det = predictor(image)
    assert isinstance(det, Detections) and det.image_size == (50, 70)
    assert len(det) <= 5 and det.masks.shape == (len(det), 50, 70)
    assert bool(torch.all(det.boxes[:, 2] <= 70)) and bool(torch.all(det.boxes[:, 3] <= 50))
    dets = predictor([image, image[:30]])
    assert [d.image_size for d in dets] == [(50, 70), (30, 70)]
    assert predictor([]) == []


# ----------------------------------------------------------------------------- classifier


def test_class_scores_softmax_and_sigmoid_by_hand() -> None:
    from yolact.models.yolact.postprocess import class_scores

    conf = torch.tensor([[[0.0, 2.0, -1.0]]])  # [B, P, C], background first
    # softmax: e^0 = 1, e^2 = 7.389056, e^-1 = 0.367879, sum 8.756935
    soft = class_scores(conf, "softmax")
    assert soft.shape == (1, 1, 2)
    assert soft[0, 0].tolist() == pytest.approx([0.843795, 0.042010], abs=1e-6)
    # sigmoid: 1 / (1 + e^-2) = 0.880797, 1 / (1 + e^1) = 0.268941; background unused
    sig = class_scores(conf, "sigmoid")
    assert sig[0, 0].tolist() == pytest.approx([0.880797, 0.268941], abs=1e-6)
    conf[..., 0] = 5.0
    assert torch.equal(class_scores(conf, "sigmoid"), sig)
    assert class_scores(conf, "softmax")[0, 0, 0].item() < 0.05
    with pytest.raises(ValueError, match="unknown classifier 'relu'; use one of softmax, sigmoid"):
        class_scores(conf, "relu")
    with pytest.raises(ValueError, match="unknown classifier 'focal'"):
        PostProcessor(NMSConfig(), NAMES, classifier="focal")


def test_sigmoid_classifier_detections() -> None:
    """Fast NMS on sigmoid scores: p1 (IoU .62 with p0) is suppressed in both classes."""
    logits = torch.tensor([[0.0, 4.0, -4.0], [0.0, 3.0, -5.0], [-1.0, -3.0, 3.0]])
    det = PostProcessor(NMSConfig(), NAMES, classifier="sigmoid")(outputs(logits), [(H, W)])[0]
    # sigmoid(4), sigmoid(3), sigmoid(-3), sigmoid(-4)
    assert det.scores.tolist() == pytest.approx([0.982014, 0.952574, 0.047426, 0.017986], abs=1e-6)
    assert det.labels.tolist() == [0, 1, 0, 1]
    assert det.boxes.tolist() == [PIXEL_BOXES[p] for p in (0, 2, 2, 0)]
    # The same logits through the default softmax: e.g. p0 "a" is e^4 / (1 + e^4 + e^-4).
    soft = PostProcessor(NMSConfig(), NAMES)(outputs(logits), [(H, W)])[0]
    assert soft.scores[0].item() == pytest.approx(0.981690, abs=1e-6)


def test_stored_config_decodes_as_trained(tmp_path) -> None:
    """The classifier is part of the model's config: a checkpoint's stored config
    brings it to the predictor; configs stored without it decode with softmax."""
    from yolact.core.config import ConfigError
    from yolact.models.yolact.config import YolactConfig
    from yolact.models.yolact.model import build_model
    from yolact.predictor import Predictor
    from yolact.registry import config_from_dict

    base = get_config("yolact_tiny")
    assert base.classifier == "softmax"
    assert all(get_config(n).classifier == "softmax" for n in ("yolact_base", "yolact_plus_base"))
    cfg = base.replace(classifier="sigmoid")
    path = tmp_path / "focal_0_1.pth"
    torch.save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict()}, path)
    predictor = Predictor.from_checkpoint(str(path), device="cpu")
    assert predictor.cfg.classifier == "sigmoid"
    assert predictor.postprocess.classifier == "sigmoid"
    old = base.to_dict()
    del old["classifier"], old["sigmoid_prior"]
    old["train"] = {k: v for k, v in old["train"].items() if not k.startswith("focal_")}
    old["train"]["use_focal_loss"] = False
    assert config_from_dict(old) == base
    # A focal-loss run of the old layout trained the sigmoid classifier.
    old["train"]["use_focal_loss"] = True
    assert config_from_dict(old).classifier == "sigmoid"
    message = "config yolact_tiny: classifier must be one of 'softmax', 'sigmoid'; got 'focal'"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        YolactConfig.from_dict({**base.to_dict(), "classifier": "focal"})


def test_mask_rcnn_config_stored_with_use_focal_loss_still_loads() -> None:
    from yolact.registry import config_from_dict

    cfg = get_config("mask_rcnn_tiny")
    old = cfg.to_dict()
    old["train"] = {**old["train"], "use_focal_loss": False}
    assert config_from_dict(old) == cfg
