"""On a CUDA device: fp16 against float32, CUDA graphs against eager, channels_last
against the default layout, TensorRT against PyTorch, and a batch of 32.

Run with ``pytest -m gpu tests/gpu`` (``python tools/gpu_report.py`` does);
skipped where torch sees no CUDA device. Nothing here needs pycocotools.
"""

from __future__ import annotations

import pytest
import torch
from conftest import REPO, mask_iou
from conftest import demo_scene as scene

from yolact import registry
from yolact.core.predictor import Predictor
from yolact.core.structures import Detections

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")

pytestmark = pytest.mark.gpu


def demo(**options) -> Predictor:
    return registry.load_predictor(DEMO, device="cuda", score_threshold=0.3, **options)


def assert_close(a: Detections, b: Detections, box_px: float, min_iou: float) -> None:
    """Same classes in the same order, boxes within ``box_px``, masks with IoU >= ``min_iou``."""
    assert a.labels.tolist() == b.labels.tolist()
    if len(a):
        assert (a.boxes - b.boxes).abs().max().item() <= box_px
        assert mask_iou(a.masks.cpu(), b.masks.cpu()).min().item() >= min_iou


def test_fp16_matches_fp32_on_the_demo_model() -> None:
    ref, fp16 = demo(), demo(half=True)
    assert fp16.channels_last and next(fp16.model.parameters()).dtype == torch.float16
    for seed in (1, 6):
        a, b = ref(scene(seed)), fp16(scene(seed))
        assert len(a) >= 3
        assert_close(a, b, box_px=2, min_iou=0.95)
        assert b.scores.dtype == torch.float32 and b.boxes.dtype == torch.float32


def test_fp16_mask_rcnn_matches_fp32() -> None:
    torch.manual_seed(0)
    cfg = registry.get_config("mask_rcnn_tiny")
    ref = registry.build_predictor(cfg, device="cuda", top_k=5)
    fp16 = registry.build_predictor(cfg, device="cuda", top_k=5, half=True)
    fp16.model.load_state_dict(ref.model.state_dict())
    a, b = ref(scene(6)), fp16(scene(6))
    assert b.scores.dtype == torch.float32 and b.boxes.dtype == torch.float32
    assert abs(len(a) - len(b)) <= 1  # random weights: a score may cross the threshold
    if len(a) and len(b):
        assert abs(a.scores[0].item() - b.scores[0].item()) < 0.05


@pytest.mark.parametrize("half", [False, True])
def test_cuda_graph_matches_eager(half: bool) -> None:
    """Graph replays give what the eager run gives: a full batch of 2, a padded batch of
    1, a batch of 3 in chunks, and the same batch again (the static buffers reused).
    A padded batch may pick other convolution kernels, so within rounding."""
    eager, graphed = demo(half=half), demo(half=half, cuda_graph=True)
    images = [scene(s) for s in (1, 6, 2)]
    for batch in (images[:2], images[:1], images, images[:2]):
        for a, b in zip(eager(batch), graphed(batch)):
            assert_close(a, b, box_px=1, min_iou=0.99)
            assert (a.scores - b.scores).abs().max().item() < 2e-3
    assert graphed.graph is not None and graphed.graph.batch == 2


def test_channels_last_matches_default() -> None:
    a_pred, b_pred = demo(), demo(channels_last=True)
    for seed in (1, 6):
        a, b = a_pred(scene(seed)), b_pred(scene(seed))
        assert_close(a, b, box_px=1, min_iou=0.99)
        assert (a.scores - b.scores).abs().max().item() < 1e-3


def test_pre_processing_in_fp16_channels_last() -> None:
    pred = demo(half=True)
    x = pred.run_pre([scene(1)])
    assert x.is_cuda and x.dtype == torch.float16
    assert x.is_contiguous(memory_format=torch.channels_last)
    ref = demo().run_pre([scene(1)])
    assert torch.allclose(x.float(), ref, atol=2e-2)


def test_batch_32_with_fp16_and_cuda_graph() -> None:
    """yolact_base (random weights, BatchNorm calibrated so float16 does not overflow) at
    550 on 32 frames at once: 32 results at the image size, with the scores of the same
    batch run eagerly."""
    from yolact.bench.calibrate import calibrate_batchnorm
    from yolact.data.scenes import synthetic_frames

    torch.manual_seed(0)
    cfg = registry.get_config("yolact_base")
    frames = synthetic_frames(32)
    base = registry.build_predictor(cfg, device="cuda")
    calibrate_batchnorm(base.model, base.run_pre(frames[:8]))
    state = base.model.state_dict()
    graphed = registry.build_predictor(cfg, device="cuda", half=True, cuda_graph=True, top_k=5)
    graphed.model.load_state_dict(state)
    eager = registry.build_predictor(cfg, device="cuda", half=True, top_k=5)
    eager.model.load_state_dict(state)
    dets = graphed(frames)
    assert len(dets) == 32 and all(d.image_size == (480, 640) for d in dets)
    assert graphed.graph is not None and graphed.graph.batch == 32
    for got, ref in zip(dets, eager(frames)):
        assert len(got) == len(ref) == 5
        assert torch.isfinite(got.scores).all()
        assert torch.allclose(got.scores, ref.scores, atol=2e-2)


def test_tensorrt_matches_pytorch(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no TensorRT provider")
    from yolact.export import export

    path = export(DEMO, str(tmp_path / "demo.onnx"), "onnx", dynamic_batch=True, log=False)
    for half in (False, True):
        trt = registry.load_predictor(
            path, device="cuda", score_threshold=0.3, half=half, tensorrt=True
        )
        assert trt.runtime.name == "tensorrt"
        assert trt.runtime.providers[0] == "TensorrtExecutionProvider"
        ref = demo()
        for seed in (1, 6):
            assert_close(ref(scene(seed)), trt(scene(seed)), box_px=2, min_iou=0.95)
