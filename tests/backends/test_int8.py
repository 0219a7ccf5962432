"""INT8 export (issue 19): the convolutions run in INT8 and the post-processing in
float (walking the graphs' ops), the file says it is INT8, and the demo model's
INT8 detections and AP agree with float32."""

from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO

from yolact.backends.agreement import box_iou
from yolact.backends.meta import read_meta
from yolact.backends.quantize import (
    NETWORK_SCOPE,
    onnx_int8_summary,
    openvino_int8_summary,
)
from yolact.data.coco import CocoDataset
from yolact.data.synthetic import write_coco_dataset
from yolact.engine.evaluate import evaluate_dataset
from yolact.export import main as export_main
from yolact.predictor import Predictor

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("nncf")

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
# The demo's val split (yolact.demo: seed 0, up to 3 shapes of 14-30% of the side).
DEMO_SCENES = {"size": (160, 160), "max_objects": 3, "radius_range": (0.14, 0.3)}
VAL_IMAGES = 100  # the demo's val split
AGREEMENT_IMAGES = 40
CALIB_IMAGES = 64
# The FPN, kept in float: its 3 lateral, 3 output and 2 downsampling convolutions.
FPN_SCOPE = "/model/fpn/"
FPN_CONVS = 8


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The demo model exported to INT8 ONNX and OpenVINO (64 calibration images of
    another seed than the val split); float32 is the checkpoint itself (the float32
    export equals it within 1e-3, tests/backends/test_export.py)."""
    root = tmp_path_factory.mktemp("int8")
    calib = write_coco_dataset(str(root / "calib"), CALIB_IMAGES, 0, seed=5, **DEMO_SCENES)
    val = write_coco_dataset(str(root / "demo"), 0, VAL_IMAGES, seed=0, **DEMO_SCENES)
    base = [f"--trained_model={DEMO}", f"--calib={calib['train_image_dir']}", "--int8"]
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert export_main([*base, f"--output={root / 'q.onnx'}"]) == 0
        assert export_main([*base, "--format=openvino", f"--output={root / 'q'}"]) == 0
    return {
        "onnx": str(root / "q.onnx"), "openvino": str(root / "q_openvino_model"),
        "float": DEMO, "log": log.getvalue(), **val,
    }  # fmt: skip


def test_onnx_convolutions_quantized_post_processing_float(files) -> None:
    graph = onnx.load(files["onnx"]).graph
    producer = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 53  # yolact_tiny's backbone, FPN, ProtoNet and heads
    fpn = [n for n in convs if n.name.startswith(FPN_SCOPE)]
    assert len(fpn) == FPN_CONVS
    for conv in fpn:  # kept in float (yolact.backends.quantize.KEEP_FLOAT)
        data, weights = (producer.get(i) for i in conv.input[:2])
        assert weights is None or weights.op_type != "DequantizeLinear", conv.name
    for conv in (n for n in convs if not n.name.startswith(FPN_SCOPE)):
        assert conv.name.startswith(NETWORK_SCOPE)
        data, weights = (producer[i] for i in conv.input[:2])
        assert data.op_type == weights.op_type == "DequantizeLinear", conv.name
        # Weights per channel: one scale per output channel, signed 8-bit.
        scale = next(t for t in graph.initializer if t.name == weights.input[1])
        assert len(scale.dims) == 1 and scale.dims[0] > 1
        zero = next(t for t in graph.initializer if t.name == weights.input[2])
        assert zero.data_type == onnx.TensorProto.INT8
    post = [n for n in graph.node if n.name.startswith("/post/")]
    assert {"TopK", "MatMul", "Sigmoid", "Softmax", "Exp"} <= {n.op_type for n in post}
    for node in post:  # decoding, NMS and mask assembly: float in, float out
        assert node.op_type not in ("QuantizeLinear", "DequantizeLinear", "QLinearConv")
        for name in node.input:
            src = producer.get(name)
            assert src is None or src.op_type != "DequantizeLinear", node.name
    summary = onnx_int8_summary(files["onnx"])
    assert len(summary.convs) == 53 and not summary.quantized_post
    assert summary.quantized == [n.name for n in convs if not n.name.startswith(FPN_SCOPE)]


def test_openvino_convolutions_quantized_post_processing_float(files) -> None:
    import openvino as ov

    model = ov.Core().read_model(files["openvino"] + "/model.xml")
    ops = list(model.get_ordered_ops())
    quantizers = [op for op in ops if op.get_type_name() in ("FakeQuantize", "FakeConvert")]
    assert quantizers
    for fq in quantizers:  # every quantizer feeds the network, none the post-processing
        for target in fq.output(0).get_target_inputs():
            assert target.get_node().get_friendly_name().startswith(NETWORK_SCOPE)
    post_matmul = [op for op in ops if op.get_type_name() == "MatMul"]
    assert [op.get_friendly_name() for op in post_matmul] == ["/post/MatMul"]  # the masks
    summary = openvino_int8_summary(model)
    assert len(summary.convs) == 53 and not summary.quantized_post
    assert summary.quantized == [c for c in summary.convs if not c.startswith(FPN_SCOPE)]
    assert len(summary.quantized) == 53 - FPN_CONVS
    assert len(summary.post_ops) > 100


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_precision_and_calibration_stored(files, kind) -> None:
    meta = read_meta(files[kind])
    assert meta.precision == "int8" and meta.half is False and meta.version == 1
    q = meta.quantization
    assert q["calibration"] == {"source": "train", "images": CALIB_IMAGES}
    assert q["post_processing"] == "float"
    assert q["tool"].startswith("nncf" if kind == "openvino" else "onnxruntime")
    agreement = q["agreement"]
    assert agreement["images"] == 8 and agreement["matched"] >= 0.9 * agreement["detections"]
    assert "INT8 against float32 on 8 calibration image(s)" in files["log"]
    assert "45/53 convolutions in INT8, post-processing in float" in files["log"]


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def _pairs(a, b) -> list[tuple[float, float] | None]:
    """Each of ``a``'s detections paired with ``b``'s detection of its class whose box
    overlaps it most (near-equal scores may swap places): (box px, mask IoU), or None
    where ``b`` has no detection of its class."""
    ious = box_iou(a.boxes.numpy(), b.boxes.numpy()) if len(b) else np.zeros((len(a), 0))
    out: list[tuple[float, float] | None] = []
    for j in range(len(a)):
        same = [k for k in range(len(b)) if b.labels[k] == a.labels[j]]
        if not same:
            out.append(None)
            continue
        k = max(same, key=lambda k: ious[j, k])
        out.append(
            (float((a.boxes[j] - b.boxes[k]).abs().max()), _mask_iou(a.masks[j], b.masks[k]))
        )
    return out


def _close(pair: tuple[float, float] | None) -> bool:
    """The issue's criteria: same class, box within 3 px, mask IoU >= 0.9."""
    return pair is not None and pair[0] <= 3.0 and pair[1] >= 0.9


@pytest.fixture(scope="module")
def float_reference(files) -> list[tuple[np.ndarray, object, list[bool]]]:
    """Per agreement image: the image, float32's detections scoring >= 0.5, and for
    each whether float32 itself keeps it (:func:`_close`) on the image with uniform
    noise of +-2 grey levels (seeded per image): a detection that moves under such
    noise has no one answer for INT8 to agree with."""
    ref = Predictor.from_checkpoint(files["float"], device="cpu", score_threshold=0.5)
    loose = Predictor.from_checkpoint(files["float"], device="cpu", score_threshold=0.3)
    out = []
    for i in range(1, AGREEMENT_IMAGES + 1):
        image = cv2.imread(f"{files['val_image_dir']}/{i:06d}.png")
        noise = np.random.default_rng([0, i]).integers(-2, 3, image.shape)
        noisy = np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)
        a = ref(image)
        out.append((image, a, [_close(p) for p in _pairs(a, loose(noisy))]))
    return out


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_int8_detections_agree_with_float32(files, float_reference, kind) -> None:
    """The issue's criteria on every pair: each float32 detection scoring >= 0.5 on
    40 demo val images is found in INT8 (detections scoring >= 0.3) with the same
    class, its box within 3 px and mask IoU >= 0.9; the median box difference is
    within 1 px and the mean mask IoU at least 0.97.

    Left out: a detection float32 itself does not keep on the image with +-2 grey
    levels of noise (:func:`float_reference`): one of the 74, on image 19, which
    moves 25 px there (two overlapping shapes of one class, whose box it takes
    flips), and so in INT8 now and then. Before the FPN was kept in float and NNCF's
    full bias correction used, 4-6 of the 172 OpenVINO pairs on the 100 val images
    were 4-6 px off (docs/benchmarks.md, INT8)."""
    got = Predictor.from_checkpoint(files[kind], device="cpu", score_threshold=0.3)
    box_px, mask_ious, unstable, far = [], [], [], []
    for i, (image, a, stable) in enumerate(float_reference, start=1):
        for j, pair in enumerate(_pairs(a, got(image))):
            assert pair is not None, f"image {i}: class {int(a.labels[j])} lost"
            if not stable[j]:
                unstable.append((i, j))
                continue
            box_px.append(pair[0])
            mask_ious.append(pair[1])
            if not _close(pair):
                far.append((i, j, pair))
    assert len(box_px) >= 50 and len(unstable) <= 2, unstable
    assert far == []
    assert float(np.median(box_px)) <= 1.0 and float(np.mean(mask_ious)) >= 0.97


def test_int8_ap_drop_within_bound(files) -> None:
    """Box and mask AP (0-1) of INT8 against float32 on the demo val split (100
    images): the drop is at most 0.005 each (the issue's bound).

    With 16 calibration images instead of 64, OpenVINO's mask AP dropped 0.0061 in
    one draw (docs/benchmarks.md): the bound needs a calibration set of some size."""
    aps = {}
    for kind in ("float", "openvino", "onnx"):
        predictor = Predictor.from_checkpoint(files[kind], device="cpu")
        dataset = CocoDataset(files["val_ann_file"], files["val_image_dir"])
        metrics = evaluate_dataset(predictor, dataset, progress=False).metrics
        aps[kind] = (metrics["bbox"]["AP"], metrics["segm"]["AP"])
    assert aps["float"][1] > 0.5  # the demo model detects the shapes
    for kind in ("openvino", "onnx"):
        assert aps["float"][0] - aps[kind][0] <= 0.005, aps
        assert aps["float"][1] - aps[kind][1] <= 0.005, aps


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_int8_file_runs_like_every_export(files, kind, tmp_path, capsys) -> None:
    """eval.py on an image, a folder and the dataset, --benchmark, and a --compare row."""
    from conftest import run_main

    image = f"{files['val_image_dir']}/000001.png"
    out = tmp_path / "out.png"
    assert run_main(capsys, f"--trained_model={files[kind]}", f"--image={image}:{out}")[0] == 0
    assert cv2.imread(str(out)).shape == (160, 160, 3)
    folder = tmp_path / "drawn"
    code, _, _ = run_main(
        capsys, f"--trained_model={files[kind]}", f"--images={files['val_image_dir']}:{folder}",
        "--max_images=2",
    )  # fmt: skip
    assert code == 0 and len(list(folder.iterdir())) == 2
    code, out_text, _ = run_main(
        capsys, f"--trained_model={files[kind]}", f"--val_ann={files['val_ann_file']}",
        f"--val_images={files['val_image_dir']}", "--max_images=5",
    )  # fmt: skip
    assert code == 0 and "mask" in out_text
    code, out_text, _ = run_main(
        capsys, f"--trained_model={files[kind]}", "--benchmark", "--max_images=3"
    )
    assert code == 0 and "FPS" in out_text
    code, out_text, _ = run_main(
        capsys, "--benchmark", f"--trained_model={DEMO}", f"--compare={files[kind]}",
        "--max_images=2", "--benchmark_batch=1", f"--benchmark_dir={tmp_path / 'bench'}",
    )  # fmt: skip
    assert code == 0 and (tmp_path / "bench" / "comparison.csv").exists()


def test_openvino_int8_with_bf16_hint(files) -> None:
    """--half on an INT8 OpenVINO model: its float parts in bfloat16 (where the CPU
    has it); the detections still agree with float32 at the same tolerance."""
    from yolact.backends.runtimes import cpu_capabilities

    if "BF16" not in cpu_capabilities():
        pytest.skip("this CPU has no bfloat16")
    predictor = Predictor.from_checkpoint(files["openvino"], device="cpu", half=True)
    assert predictor.runtime.precision == "int8+bf16"
    ref = Predictor.from_checkpoint(files["float"], device="cpu", score_threshold=0.5)
    image = cv2.imread(f"{files['val_image_dir']}/000001.png")
    a, b = ref(image), predictor(image)
    assert len(a) > 0 and set(a.labels.tolist()) <= set(b.labels.tolist())
