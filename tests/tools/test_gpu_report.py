"""``python tools/gpu_report.py``: its refusal without CUDA, its table, its commands,
and the BatchNorm calibration that keeps random weights in float16's range."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import REPO

if str(REPO / "tools") not in sys.path:  # the tools are scripts: `python tools/X.py`
    sys.path.insert(0, str(REPO / "tools"))

import gpu_report  # noqa: E402
from gpu_report import Row, eval_command, markdown  # noqa: E402

from yolact.bench.calibrate import calibrate_batchnorm  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_refuses_without_cuda_in_one_line(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "tools/gpu_report.py", "--out", str(tmp_path / "r")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "error: the GPU report needs a CUDA device; torch sees none here "
        f"(torch {torch.__version__})\n"
    )
    assert not (tmp_path / "r").exists()


def test_markdown_table_from_given_numbers() -> None:
    rows = [
        Row("yolact_base", "pytorch", "fp16 + CUDA graph", 1, 0.5, 2.0, 1.5, "python eval.py a"),
        Row("yolact_base", "tensorrt", "fp16", 32, 0.25, 0.125, 0.125, "python eval.py b"),
    ]
    assert rows[0].total_ms == 4.0 and rows[0].fps == 250.0 and rows[1].fps == 2000.0
    text = markdown("NVIDIA H200 (torch 2.11)", ["Note one.", "Note two."], rows,
                    ["yolact_tiny tensorrt fp16 batch 1: onnxruntime has no X"])  # fmt: skip
    assert text == (
        "# GPU benchmarks\n"
        "\n"
        "Device: NVIDIA H200 (torch 2.11).\n"
        "\n"
        "Note one.\n"
        "\n"
        "Note two.\n"
        "\n"
        "| model | runtime | precision | batch | pre ms | network ms | post ms | total ms "
        "| FPS | command |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|\n"
        "| yolact_base | pytorch | fp16 + CUDA graph | 1 | 0.50 | 2.00 | 1.50 | 4.00 | 250.0 "
        "| `python eval.py a` |\n"
        "| yolact_base | tensorrt | fp16 | 32 | 0.25 | 0.12 | 0.12 | 0.50 | 2000.0 "
        "| `python eval.py b` |\n"
        "\n"
        "Not measured:\n"
        "\n"
        "- yolact_tiny tensorrt fp16 batch 1: onnxruntime has no X\n"
    )


def test_eval_commands_match_the_rows() -> None:
    assert eval_command("r/yolact_base_random_bn.pth", "fp16 + CUDA graph", 32) == (
        "python eval.py --trained_model=r/yolact_base_random_bn.pth --benchmark "
        "--max_images=320 --video_multiframe=32 --half --cuda_graph"
    )
    assert eval_command("r/m.onnx", "fp32", 1) == (
        "python eval.py --trained_model=r/m.onnx --benchmark --max_images=200 --video_multiframe=1"
    )
    assert gpu_report.FRAMES == {1: 200, 32: 320}


def test_batchnorm_calibration_bounds_random_activations() -> None:
    """A random ResNet-style stack: after calibration each BatchNorm's output has mean
    about 0 and variance about 1 on the calibration batch, and momentum is restored."""
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for _ in range(6):
        layers += [torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8)]
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), *layers).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=1.0)
    x = torch.rand(4, 3, 16, 16) * 100
    assert net(x).abs().max() > 1e5  # raw: past float16's 65504
    calibrate_batchnorm(net, x)
    assert not net.training and all(
        m.momentum == 0.1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )
    out = net(x)
    assert abs(out.mean().item()) < 0.1 and abs(out.var().item() - 1) < 0.1


def test_the_report_runs_end_to_end_on_the_cpu(tmp_path, monkeypatch, one_thread) -> None:
    """The report's own code on the CPU with yolact_tiny and two frames: the fp32 rows are
    timed, the rows that need CUDA or a provider are listed with the reason, and a row's
    eval.py command runs on the checkpoint the report saved."""
    monkeypatch.setattr(gpu_report, "BATCHES", (1, 2))
    monkeypatch.setattr(gpu_report, "FRAMES", {1: 2, 2: 2})
    monkeypatch.setattr(gpu_report, "WARMUP", 1)
    out = tmp_path / "r"
    assert gpu_report.run_report(str(out), 600, 0, device="cpu", models=("yolact_tiny",)) == 0
    text = (out / "gpu_benchmarks.md").read_text()
    assert text.startswith("# GPU benchmarks\n\nDevice: cpu (torch ")
    assert "2 frames at batch 1, 2 frames at batch 2, 640x480 synthetic" in text
    timed = [line for line in text.splitlines() if line.startswith("| yolact_tiny |")]
    assert [line.split(" | ")[1:4] for line in timed] == [
        ["pytorch", "fp32", "1"], ["pytorch", "fp32", "2"],
    ]  # fmt: skip
    half = "fp16 needs CUDA (on the CPU --half is bfloat16)"
    assert f"- yolact_tiny pytorch fp16 batch 1: {half}\n" in text
    assert f"- yolact_tiny pytorch fp16 + CUDA graph batch 2: {half}\n" in text
    trt = "- yolact_tiny tensorrt fp16 batch 1: onnxruntime has no TensorrtExecutionProvider\n"
    assert trt in text
    assert not (out / "pytest_gpu.txt").exists()  # tests_timeout_s=0 skips them
    command = timed[1].split("`")[1]
    assert command == (
        f"python eval.py --trained_model={out}/yolact_tiny_random_bn.pth --benchmark "
        "--max_images=2 --video_multiframe=2"
    )
    from yolact.cli.eval_cli import main

    assert main([*command.split()[2:], "--cuda=False"]) == 0
