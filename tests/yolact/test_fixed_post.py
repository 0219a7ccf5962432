"""Fixed-shape post-processing against the reference PostProcessor: random and
trained weights, ties, empty outputs, options; no branch on the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO
from torch import nn

from yolact.core.ops.masks import paste_masks_in_boxes
from yolact.core.padded import PaddedDetections, select, to_detections
from yolact.core.structures import Detections
from yolact.data.scenes import make_scene
from yolact.models.yolact.config import NMSConfig
from yolact.models.yolact.fixed_post import FixedPostProcess
from yolact.models.yolact.mask_assembly import crop_masks, paste_masks
from yolact.models.yolact.postprocess import PostProcessor
from yolact.predictor import Predictor

NAMES = ("a", "b", "c", "d")


def random_outputs(seed: int, batch: int = 2, priors: int = 300, spread: float = 3.0) -> dict:
    B, P = batch, priors
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(P, 2, generator=g)
    size = 0.05 + 0.4 * torch.rand(P, 2, generator=g)
    return {
        "loc": 0.5 * torch.randn(B, P, 4, generator=g),
        "conf": spread * torch.randn(B, P, len(NAMES) + 1, generator=g),
        "coef": torch.tanh(torch.randn(B, P, 6, generator=g)),
        "proto": 2 * torch.randn(B, 12, 12, 6, generator=g),
        "priors": torch.cat((centre, size), dim=1),
    }


def fixed(
    outputs: dict,
    nms: NMSConfig,
    sizes: list[tuple[int, int]],
    *,
    score_threshold: float = 0.0,
    top_k: int | None = None,
    crop: bool = True,
    masks: bool = True,
    maskiou_net: nn.Module | None = None,
    classifier: str = "softmax",
) -> list[Detections]:
    post = FixedPostProcess(nms, classifier=classifier, crop=crop, maskiou_net=maskiou_net)
    keys = ("loc", "conf", "coef", "proto", "priors")
    padded = PaddedDetections.from_tuple(post(*(outputs[k] for k in keys)))
    padded = select(padded, score_threshold, top_k)
    return to_detections(padded, sizes, NAMES, masks=masks, crop=crop)


def assert_same(new: list[Detections], ref: list[Detections]) -> None:
    assert len(new) == len(ref)
    for a, b in zip(new, ref):
        assert len(a) == len(b) and a.image_size == b.image_size
        assert torch.equal(a.labels, b.labels)
        assert torch.equal(a.boxes, b.boxes)
        assert torch.allclose(a.scores, b.scores, atol=1e-6)
        assert torch.allclose(a.box_scores, b.box_scores, atol=1e-6)
        assert torch.allclose(a.mask_scores, b.mask_scores, atol=1e-6)
        if b.masks is None:
            assert a.masks is None
        else:
            assert a.masks is not None and a.masks.shape == b.masks.shape
            assert int((a.masks != b.masks).sum()) == 0


SIZES = [(40, 56), (30, 20)]


@pytest.mark.parametrize("method", ["fast", "cross_class", "standard"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_outputs_match_the_reference(method: str, seed: int) -> None:
    out = random_outputs(seed)
    nms = NMSConfig(method=method, top_k=20, max_detections=30, conf_thresh=0.3)
    ref = PostProcessor(nms, NAMES)(out, SIZES)
    assert sum(len(d) for d in ref) > 10
    assert_same(fixed(out, nms, SIZES), ref)


@pytest.mark.parametrize(
    "options",
    [
        {"score_threshold": 0.5},
        {"top_k": 3},
        {"score_threshold": 0.4, "top_k": 5},
        {"crop": False},
        {"masks": False},
        {"classifier": "sigmoid"},
        {"score_threshold": 0.999},
    ],
)
def test_options_match_the_reference(options: dict) -> None:
    out = random_outputs(3)
    nms = NMSConfig(top_k=15, max_detections=25)
    ref_options = dict(options)
    classifier = ref_options.pop("classifier", "softmax")
    ref = PostProcessor(nms, NAMES, **ref_options, classifier=classifier)(out, SIZES)
    assert_same(fixed(out, nms, SIZES, **options), ref)


def test_more_candidates_than_top_k_and_max_detections() -> None:
    """Wide score spread: every prior is a candidate, K and D both cut."""
    out = random_outputs(4, priors=400, spread=0.5)
    nms = NMSConfig(top_k=7, max_detections=9, conf_thresh=0.0)
    ref = PostProcessor(nms, NAMES)(out, SIZES)
    assert [len(d) for d in ref] == [9, 9]
    assert_same(fixed(out, nms, SIZES), ref)


class StubMaskIoU(nn.Module):
    """A predicted IoU per class that depends on the mask (its mean)."""

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        mean = masks.mean(dim=(1, 2, 3))[:, None]  # [N, 1]
        return torch.sigmoid(mean * torch.arange(1.0, len(NAMES) + 1.0))  # [N, C-1]


def test_mask_rescoring_matches_the_reference() -> None:
    out = random_outputs(5)
    nms = NMSConfig(top_k=10, max_detections=20)
    for threshold in (0.0, 0.3):
        ref = PostProcessor(nms, NAMES, threshold)(out, SIZES, maskiou_net=StubMaskIoU())
        new = fixed(out, nms, SIZES, score_threshold=threshold, maskiou_net=StubMaskIoU())
        assert_same(new, ref)
        assert not torch.equal(new[0].scores, new[0].box_scores)


def test_ties_keep_the_reference_order() -> None:
    """Identical priors and logits: equal scores and IoU 1; the lower index wins."""
    out = random_outputs(6, batch=1, priors=12)
    out["priors"][6:] = out["priors"][:6]
    out["loc"][:, 6:] = out["loc"][:, :6]
    logits = torch.tensor([0.0, 2.0, 2.0, 1.0, 1.0])
    out["conf"][:] = logits
    for method in ("fast", "cross_class", "standard"):
        nms = NMSConfig(method=method, top_k=12, max_detections=30)
        ref = PostProcessor(nms, NAMES)(out, SIZES[:1])
        assert_same(fixed(out, nms, SIZES[:1]), ref)


@pytest.mark.parametrize("method", ["fast", "cross_class", "standard"])
def test_empty_outputs(method: str) -> None:
    out = random_outputs(7)
    out["conf"][..., 0] = 20.0  # every prior background
    out["conf"][1, 3, 1] = 40.0  # one candidate in the second image
    nms = NMSConfig(method=method)
    new = fixed(out, nms, SIZES)
    # Fast NMS keeps the one candidate for every class; the others only for its best.
    assert [len(d) for d in new] == [0, len(NAMES) if method == "fast" else 1]
    assert new[0].masks.shape == (0, 40, 56) and new[0].labels.dtype == torch.int64
    assert_same(new, PostProcessor(nms, NAMES)(out, SIZES))


def test_no_branch_on_the_data() -> None:
    """Traced on one batch, the module gives the eager result on others (empty included)."""
    keys = ("loc", "conf", "coef", "proto", "priors")
    post = FixedPostProcess(NMSConfig(top_k=10, max_detections=20), maskiou_net=StubMaskIoU())
    traced = torch.jit.trace(post, tuple(random_outputs(8)[k] for k in keys))
    empty = random_outputs(9)
    empty["conf"][..., 0] = 30.0
    for out in (random_outputs(10), empty):
        args = tuple(out[k] for k in keys)
        for a, b in zip(traced(*args), post(*args)):
            assert torch.equal(a, b)


def test_paste_inside_boxes_equals_full_paste() -> None:
    g = torch.Generator().manual_seed(0)
    soft = torch.rand(6, 9, 11, generator=g)
    boxes = torch.tensor(
        [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.7, 0.8, 0.71, 0.81],
         [0.9, 0.1, 0.2, 0.4], [-0.2, -0.1, 0.3, 1.3], [0.5, 0.5, 0.5, 0.5]]
    )  # fmt: skip
    cropped = crop_masks(soft.permute(1, 2, 0), boxes).permute(2, 0, 1)
    for H, W in ((40, 56), (30, 20), (5, 7), (9, 11)):
        full = paste_masks(cropped, H, W)
        assert torch.equal(paste_masks_in_boxes(cropped, H, W, boxes), full)
        assert torch.equal(paste_masks_in_boxes(cropped, H, W), full)
    assert paste_masks_in_boxes(soft[:0], 8, 6, boxes[:0]).shape == (0, 8, 6)


def test_predictor_on_trained_and_random_weights_matches_the_reference(one_thread) -> None:
    image = make_scene(np.random.default_rng(0), (60, 80))["image"]
    trained = Predictor.from_checkpoint(
        str(REPO / "weights" / "yolact_tiny_synthetic.pth"), device="cpu"
    )
    torch.manual_seed(0)
    from yolact.registry import build_predictor, get_config

    random = build_predictor(get_config("yolact_tiny"), device="cpu")
    # Random weights score every class near 1 / 81: their second threshold is low.
    for predictor, thresholds in ((trained, (0.0, 0.3)), (random, (0.0, 0.01))):
        cfg = predictor.cfg
        for threshold in thresholds:
            predictor.score_threshold = threshold
            batch = predictor.run_pre([image, image[:40]])
            ref = PostProcessor(cfg.nms, cfg.class_names, threshold)(
                predictor.network(batch), [(60, 80), (40, 80)]
            )
            new = predictor([image, image[:40]])
            assert len(ref[0]) > 0
            for a, b in zip(new, ref):
                assert torch.equal(a.labels, b.labels) and torch.equal(a.boxes, b.boxes)
                assert torch.allclose(a.scores, b.scores, atol=1e-6)
                assert torch.equal(a.masks, b.masks)


def test_mask_rescoring_net_of_a_model_matches_the_reference(one_thread) -> None:
    """YOLACT++ re-scoring with a real (small) re-scoring net, through the predictor."""
    from yolact.models.yolact.model import build_model
    from yolact.models.yolact.predictor import YolactPredictor
    from yolact.registry import get_config

    torch.manual_seed(0)
    cfg = get_config("yolact_tiny").replace(use_maskiou=True, maskiou_channels=(8, 16, 32))
    model = build_model(cfg)
    for p in model.maskiou_net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    predictor = YolactPredictor(model, device="cpu", score_threshold=0.02)
    image = make_scene(np.random.default_rng(1), (60, 80))["image"]
    new = predictor(image)
    ref = PostProcessor(cfg.nms, cfg.class_names, 0.02)(
        predictor.network(predictor.run_pre([image])), [(60, 80)], maskiou_net=model.maskiou_net
    )[0]
    assert len(ref) > 3 and not torch.equal(ref.scores, ref.box_scores)
    assert torch.equal(new.labels, ref.labels) and torch.equal(new.boxes, ref.boxes)
    assert torch.allclose(new.scores, ref.scores, atol=1e-6)
    assert torch.allclose(new.box_scores, ref.box_scores, atol=1e-6)
    assert torch.equal(new.masks, ref.masks)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fixed_post_on_cuda_matches_the_cpu() -> None:
    out = random_outputs(11)
    nms = NMSConfig(top_k=20, max_detections=30, conf_thresh=0.3)
    ref = fixed(out, nms, SIZES, score_threshold=0.2)
    gpu = {k: v.cuda() for k, v in out.items()}
    got = [d.to("cpu") for d in fixed(gpu, nms, SIZES, score_threshold=0.2)]
    for a, b in zip(got, ref):
        assert torch.equal(a.labels, b.labels) and torch.allclose(a.boxes, b.boxes)
        assert torch.allclose(a.scores, b.scores, atol=1e-5)
        assert a.masks is not None and b.masks is not None
        assert (a.masks != b.masks).float().mean() < 1e-3
