"""TensorRT INT8 in ``tools/gpu_report.py``, wired up on the CPU: the INT8 export its
rows time (TensorRT stood in for by onnxruntime's CPU provider), the row's eval.py
command, and the demo model's INT8 agreement check (``tools/gpu_int8.py``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import REPO

if str(REPO / "tools") not in sys.path:  # the tools are scripts: `python tools/X.py`
    sys.path.insert(0, str(REPO / "tools"))

import gpu_int8  # noqa: E402
import gpu_report  # noqa: E402

from yolact import registry  # noqa: E402
from yolact.backends.meta import read_meta  # noqa: E402
from yolact.backends.quantize import onnx_int8_summary  # noqa: E402

pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")


def test_tensorrt_int8_row_times_an_int8_export(tmp_path, monkeypatch) -> None:
    """With a TensorRT provider listed, the INT8 row exports the model once in INT8
    (calibrated on generated frames), builds it with ``tensorrt=True`` and no
    ``half``, times it at each batch, and prints the agreement line in the notes."""
    built: list[tuple[str, str, str | None]] = []

    def build(runtime, precision, checkpoint, onnx, device="cuda"):
        built.append((runtime, precision, onnx))
        return registry.load_predictor(onnx, device="cpu", top_k=5, nms_method="fast")

    agreement: list[tuple[str, str]] = []

    def fake_agreement(folder, device="cuda", tensorrt=True):
        agreement.append((folder, device))
        return "demo model, tensorrt INT8 vs PyTorch float32: 9/9", gpu_int8.PairStats()

    monkeypatch.setattr(gpu_report, "_providers", lambda: ["TensorrtExecutionProvider", "CPU"])
    monkeypatch.setattr(gpu_report, "build", build)
    monkeypatch.setattr(gpu_report, "demo_int8_agreement", fake_agreement)
    monkeypatch.setattr(gpu_report, "VARIANTS", (("tensorrt", "fp16"), ("tensorrt", "int8")))
    monkeypatch.setattr(gpu_report, "BATCHES", (1, 2))
    monkeypatch.setattr(gpu_report, "FRAMES", {1: 2, 2: 2})
    monkeypatch.setattr(gpu_report, "WARMUP", 1)
    monkeypatch.setattr(gpu_report, "CALIB_FRAMES", 2)
    out = tmp_path / "r"
    assert gpu_report.run_report(str(out), 600, 0, device="cpu", models=("yolact_tiny",)) == 0
    int8_file = str(out / "yolact_tiny_int8" / "model_int8.onnx")
    assert built == [("tensorrt", "int8", int8_file)] * 2  # fp16 rows need CUDA
    meta = read_meta(int8_file)
    assert meta.precision == "int8" and meta.batch is None  # any batch size
    assert meta.extra["quantization"]["calibration"] == {"source": "calib", "images": 2}
    summary = onnx_int8_summary(int8_file)
    assert not summary.quantized_post  # the FPN stays in float (quantize.KEEP_FLOAT)
    assert summary.quantized == [c for c in summary.convs if not c.startswith("/model/fpn/")]
    assert len(list((out / "calib").iterdir())) == 2
    text = (out / "gpu_benchmarks.md").read_text()
    timed = [line for line in text.splitlines() if line.startswith("| yolact_tiny |")]
    assert [line.split(" | ")[1:4] for line in timed] == [
        ["tensorrt", "int8", "1"], ["tensorrt", "int8", "2"],
    ]  # fmt: skip
    assert timed[1].split("`")[1] == (
        f"python eval.py --trained_model={int8_file} --benchmark --max_images=2 "
        "--video_multiframe=2"
    )
    assert agreement == [(str(out / "int8_agreement"), "cpu")]
    assert "INT8 agreement: demo model, tensorrt INT8 vs PyTorch float32: 9/9" in text


def test_without_tensorrt_the_int8_row_and_check_are_listed_as_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_report, "_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(gpu_report, "VARIANTS", (("tensorrt", "int8"),))
    monkeypatch.setattr(gpu_report, "BATCHES", (1,))
    monkeypatch.setattr(gpu_report, "FRAMES", {1: 1})
    out = tmp_path / "r"
    assert gpu_report.run_report(str(out), 600, 0, device="cpu", models=("yolact_tiny",)) == 0
    text = (out / "gpu_benchmarks.md").read_text()
    assert (
        "- yolact_tiny tensorrt int8 batch 1: onnxruntime has no TensorrtExecutionProvider\n"
        in text
    )
    assert "INT8 agreement: not checked: onnxruntime has no TensorrtExecutionProvider" in text
    assert not (out / "yolact_tiny_int8").exists()


def test_pairs_follow_the_issues_criteria() -> None:
    """Hand-made detections: a pair within 3 px and IoU 1, one 4 px off, a lost class."""
    from types import SimpleNamespace

    import torch

    def dets(boxes, labels, masks):
        n = len(labels)
        return SimpleNamespace(
            boxes=torch.tensor(boxes, dtype=torch.float32).reshape(n, 4),
            labels=torch.tensor(labels), masks=torch.tensor(masks),
        )  # fmt: skip

    m = np.zeros((3, 8, 8), bool)
    m[0, :4, :4] = m[1, 4:, 4:] = m[2, :2] = True
    ref = dets([[0, 0, 40, 40], [50, 50, 90, 90], [0, 0, 10, 10]], [0, 1, 2], m)
    got = dets([[1, 2, 43, 40], [54, 50, 90, 90]], [0, 1], m[:2])
    stats = gpu_int8.PairStats()
    gpu_int8.pair_detections(ref, got, stats)
    assert stats.box_px == [3.0, 4.0] and stats.mask_iou == [1.0, 1.0] and stats.lost == 1
    assert stats.close == 1
    assert stats.line("x").startswith(
        "x: 1/3 float32 detections (score >= 0.5) found with the same class, box within 3 px "
        "and mask IoU >= 0.9 (1 class(es) lost); max box difference 4.0 px, min mask IoU 1.000"
    )


def test_demo_agreement_runs_the_int8_export_against_float32(tmp_path) -> None:
    """The check itself, on the CPU (onnxruntime's CPU provider for TensorRT), on a few
    scenes: every float32 detection's class is found, boxes mostly within 1 px."""
    pytest.importorskip("onnx")
    line, stats = gpu_int8.demo_int8_agreement(
        str(tmp_path), device="cpu", tensorrt=None, images=4, calib_images=8
    )
    assert stats.lost == 0 and len(stats.box_px) >= 4
    assert float(np.median(stats.box_px)) <= 1.0 and float(np.mean(stats.mask_iou)) >= 0.95
    assert line.startswith("demo model, onnxruntime INT8 vs PyTorch float32 on 4 val scenes: ")
    assert read_meta(str(tmp_path / "demo_int8" / "model_int8.onnx")).precision == "int8"
