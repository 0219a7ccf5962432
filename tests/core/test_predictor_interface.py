"""The predictor interface: the same options for every family, and stages that end
at the same point (network: after every NMS, masks at the model's resolution;
post: boxes in image pixels, masks pasted)."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch

from yolact import registry
from yolact.core.padded import PaddedDetections
from yolact.core.predictor import Predictor
from yolact.models.mask_rcnn.predictor import RCNNOutput
from yolact.models.yolact.postprocess import PostProcessor

OPTIONS = {
    "device": None,
    "score_threshold": 0.0,
    "top_k": None,
    "nms_method": None,
    "crop": True,
    "masks": True,
    "half": False,
    "cuda_graph": False,
    "channels_last": None,
}

pytestmark = pytest.mark.usefixtures("one_thread")


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)


@pytest.mark.parametrize("family", registry.FAMILIES, ids=lambda f: f.kind)
def test_every_family_takes_the_same_keyword_only_options(family) -> None:
    cls = family.predictor_class
    assert issubclass(cls, Predictor) and cls.family is family
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, model
    assert {p.name: p.default for p in params} == OPTIONS
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    for method in ("from_checkpoint", "from_config"):
        extra = [
            p for p in inspect.signature(getattr(cls, method)).parameters.values()
            if p.name not in ("path", "cfg", "checkpoint")
        ]  # fmt: skip
        assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in extra), method


@pytest.mark.parametrize("name", ["yolact_tiny", "mask_rcnn_tiny"])
def test_every_family_checks_the_nms_method(name: str) -> None:
    cfg = registry.get_config(name)
    message = "nms_method must be None or one of 'fast', 'cross_class', 'standard'; got 'soft'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        registry.build_predictor(cfg, device="cpu", nms_method="soft")
    predictor = registry.build_predictor(cfg, device="cpu", nms_method="cross_class")
    assert predictor.nms_method == "cross_class"


def test_yolact_network_stage_ends_after_nms_with_prototype_masks() -> None:
    torch.manual_seed(0)
    cfg = registry.get_config("yolact_tiny")
    predictor = registry.build_predictor(cfg, device="cpu", top_k=5)
    image = _image()
    batch = predictor.run_pre([image])
    assert tuple(batch.shape) == (1, 3, 160, 160)
    raw = predictor.run_network(batch)
    proto_side = predictor.network(batch)["proto"].shape[1]  # [B, h, w, k]
    assert isinstance(raw, PaddedDetections)
    D = raw.scores.shape[1]
    assert cfg.nms.max_detections == D  # padded, suppressed already
    assert raw.count.tolist() == [5]  # top_k applied on the device
    assert tuple(raw.masks.shape) == (1, D, proto_side, proto_side)
    det = predictor.run_post(raw, [image.shape[:2]])[0]
    assert len(det) == 5 and det.masks.shape == (5, 60, 80)
    # The stages give what the whole call and the reference post-processor give.
    whole = predictor(image)
    direct = PostProcessor(cfg.nms, cfg.class_names, top_k=5)(
        predictor.network(batch), [image.shape[:2]]
    )[0]
    for other in (whole, direct):
        assert torch.equal(det.boxes, other.boxes) and torch.equal(det.labels, other.labels)
        assert torch.allclose(det.scores, other.scores, atol=1e-6)
        assert torch.equal(det.masks, other.masks)


def test_mask_rcnn_network_stage_ends_after_nms_with_mask_head_masks() -> None:
    torch.manual_seed(0)
    cfg = registry.get_config("mask_rcnn_tiny").replace(box_score_thresh=0.0)
    predictor = registry.build_predictor(cfg, device="cpu", top_k=5)
    image = _image()
    raw = predictor.run_network(predictor.run_pre([image]))
    assert isinstance(raw, RCNNOutput) and raw.image_sizes == [
        (144, 192)
    ]  # longer side capped at 192
    masks = raw.detections[0]["masks"]
    N = len(raw.detections[0]["boxes"])
    assert 0 < N <= cfg.detections_per_img and tuple(masks.shape) == (N, 1, 28, 28)
    det = predictor.run_post(raw, [image.shape[:2]])[0]
    assert len(det) == 5 and det.masks.shape == (5, 60, 80)
    assert float(det.boxes[:, 2].max()) <= 80 and float(det.boxes[:, 3].max()) <= 60
