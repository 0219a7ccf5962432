"""``--half`` on the CPU: bfloat16 in PyTorch and OpenVINO, refused in one line where it
cannot run (a CPU without bfloat16, onnxruntime's CPU provider, YOLACT++'s deformable
convolutions).

PyTorch computes bfloat16 on any CPU (slowly without the instructions), so its numbers
are checked everywhere with the capability test stood in for; OpenVINO's bfloat16 needs
the instructions, so its test checks the run where the CPU has them and the refusal
where it does not.
"""

from __future__ import annotations

import contextlib
import io
import re

import cv2
import pytest
import torch
from conftest import REPO
from conftest import demo_scene as scene

from yolact import registry
from yolact.backends.meta import ExportedFileError
from yolact.backends.runtimes import OpenVinoRuntime, cpu_capabilities, openvino_config
from yolact.cli.eval_cli import main as eval_main
from yolact.core import gpu
from yolact.core.gpu import GpuOptionError, check_gpu_options, half_dtype, half_label
from yolact.core.structures import Detections
from yolact.export import main as export_main

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def bf16_cpu(monkeypatch) -> None:
    """Stand in for a CPU with bfloat16 instructions (PyTorch emulates them elsewhere)."""
    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, str]:
    """The demo model as ONNX and as OpenVINO."""
    root = tmp_path_factory.mktemp("bf16")
    with contextlib.redirect_stdout(io.StringIO()):
        assert export_main([f"--trained_model={DEMO}", f"--output={root / 'demo.onnx'}"]) == 0
        assert (
            export_main(
                [f"--trained_model={DEMO}", "--format=openvino", f"--output={root / 'demo'}"]
            )
            == 0
        )
    return {"onnx": str(root / "demo.onnx"), "openvino": str(root / "demo_openvino_model")}


def assert_close_detections(got: Detections, ref: Detections) -> None:
    """bfloat16 against float32: the same classes in the same order, boxes within 2 px,
    scores within 0.02, mask IoU >= 0.95 (bfloat16 keeps 8 bits of mantissa)."""
    assert len(ref) >= 3 and got.labels.tolist() == ref.labels.tolist()
    assert float((got.boxes - ref.boxes).abs().max()) <= 2.0
    assert float((got.scores - ref.scores).abs().max()) < 0.02
    assert got.masks is not None and ref.masks is not None
    inter = (got.masks & ref.masks).sum((1, 2)).float()
    union = (got.masks | ref.masks).sum((1, 2)).clamp(min=1).float()
    assert float((inter / union).min()) >= 0.95


# The device check and the precision it picks.


def test_half_precision_per_device(monkeypatch) -> None:
    assert half_dtype(torch.device("cuda")) == torch.float16
    assert half_dtype(torch.device("cpu")) == torch.bfloat16
    assert (half_label(torch.device("cuda:1")), half_label(torch.device("cpu"))) == ("fp16", "bf16")
    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: True)
    check_gpu_options(torch.device("cpu"), half=True)  # no error
    with pytest.raises(
        GpuOptionError, match="^--half runs on CUDA .fp16. or the CPU .bf16., not meta$"
    ):
        check_gpu_options(torch.device("meta"), half=True)
    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: False)
    with pytest.raises(
        GpuOptionError, match="^--half on the CPU runs bfloat16, and this CPU has no"
    ):
        check_gpu_options(torch.device("cpu"), half=True)
    check_gpu_options(torch.device("cpu"))  # float32 needs nothing


def test_bf16_flags_are_read_from_cpuinfo() -> None:
    zen4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
    skylake = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512vl avx512dq\n"
    sapphire = "flags\t\t: avx512f amx_tile amx_bf16 amx_int8\n"
    graviton3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
    graviton2 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n"
    assert [gpu.bf16_in_cpuinfo(t) for t in (zen4, skylake, sapphire, graviton3, graviton2)] == [
        True, False, True, True, False,
    ]  # fmt: skip
    assert gpu.bf16_in_cpuinfo("processor\t: 0\nmodel name\t: ?\n") is None


# PyTorch in bfloat16.


def test_yolact_half_on_cpu_is_bfloat16_and_agrees_with_float32(bf16_cpu) -> None:
    ref = registry.load_predictor(DEMO, device="cpu", score_threshold=0.3)
    half = registry.load_predictor(DEMO, device="cpu", score_threshold=0.3, half=True)
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert half.channels_last  # NHWC is oneDNN's fast bfloat16 layout
    batch = half.run_pre([scene(1)])
    assert batch.dtype == torch.bfloat16 and batch.is_contiguous(memory_format=torch.channels_last)
    assert all(v.dtype == torch.float32 for v in half.network(batch).values())
    for seed in (1, 6):
        assert_close_detections(half(scene(seed)), ref(scene(seed)))


def test_mask_rcnn_half_on_cpu_runs_its_convolutions_in_bfloat16(bf16_cpu) -> None:
    torch.manual_seed(0)
    predictor = registry.build_predictor(registry.get_config("mask_rcnn_tiny"), device="cpu",
                                         half=True)  # fmt: skip
    seen: list[torch.dtype] = []
    conv = next(m for m in predictor.model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    outputs = predictor.network(predictor.run_pre([scene(1)]))
    assert seen == [torch.bfloat16]
    assert all(t.dtype in (torch.float32, torch.int64) for d in outputs.detections
               for t in d.values())  # fmt: skip
    assert predictor(scene(1)).boxes.dtype == torch.float32


def test_yolact_plus_half_on_cpu_is_one_line(bf16_cpu) -> None:
    cfg = registry.get_config("yolact_plus_resnet50")
    message = (
        "yolact_plus_resnet50 has deformable convolutions, which torchvision runs in float32 "
        "only on the CPU; run it without --half"
    )
    with pytest.raises(GpuOptionError, match=f"^{re.escape(message)}$"):
        registry.build_predictor(cfg, device="cpu", half=True)


# Exported files.


def test_openvino_settings() -> None:
    assert openvino_config(False, 0, ["FP32", "BF16"]) == {"INFERENCE_PRECISION_HINT": "f32"}
    assert openvino_config(True, 2, ["FP32", "BF16"]) == {
        "INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": 2,
    }  # fmt: skip
    with pytest.raises(ExportedFileError, match=r"lacks \(OpenVINO reports FP32, INT8\)"):
        openvino_config(True, 0, ["FP32", "INT8"])


def test_openvino_half_runs_bfloat16_where_the_cpu_has_it(exported) -> None:
    from yolact.backends.meta import read_meta

    path = exported["openvino"]
    meta = read_meta(path)
    if "BF16" not in cpu_capabilities():
        with pytest.raises(ExportedFileError, match="^--half runs OpenVINO in bfloat16, which"):
            OpenVinoRuntime(path, meta, half=True)
        return
    runtime = OpenVinoRuntime(path, meta, half=True)
    hint = runtime.compiled.get_property("INFERENCE_PRECISION_HINT")
    assert runtime.precision == "bf16" and "bfloat16" in str(hint)
    f32 = OpenVinoRuntime(path, meta)
    assert "float32" in str(f32.compiled.get_property("INFERENCE_PRECISION_HINT"))
    ref = registry.load_predictor(path, device="cpu", score_threshold=0.3)
    half = registry.load_predictor(path, device="cpu", score_threshold=0.3, half=True)
    for seed in (1, 6):
        assert_close_detections(half(scene(seed)), ref(scene(seed)))


def test_onnxruntime_half_on_cpu_is_one_line(exported, bf16_cpu, tmp_path, capsys) -> None:
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), scene(1))
    code = eval_main(["--no_bar", "--cuda=False", f"--trained_model={exported['onnx']}",
                      "--half", f"--image={image}"])  # fmt: skip
    out, err = capsys.readouterr()
    line = (
        f"error: {exported['onnx']}: onnxruntime runs it in float32 on the CPU; for --half "
        "there (bfloat16) export it with --format=openvino\n"
    )
    assert (code, out, err) == (1, "", line)


def test_benchmark_half_on_cpu_skips_onnxruntime_and_says_bf16(tmp_path, bf16_cpu, capsys) -> None:
    code = eval_main([
        "--no_bar", "--cuda=False", "--benchmark", f"--trained_model={DEMO}",
        "--backends=pytorch,onnxruntime", "--half", "--max_images=2",
        "--benchmark_warmup=0", f"--benchmark_dir={tmp_path}",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    assert "skipping onnxruntime: " in err and "float32 on the CPU" in err
    report = (tmp_path / "comparison.md").read_text()
    assert "precision: bf16," in report and "(pytorch)" in report and "(onnxruntime)" not in report
