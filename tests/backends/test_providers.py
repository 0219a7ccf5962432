"""onnxruntime's providers: TensorRT, then CUDA, then the CPU, each where present;
the tensorrt backend requires TensorRT and says so in one line where it is missing."""

from __future__ import annotations

import os

import pytest
from conftest import REPO

from yolact.backends import runtimes
from yolact.backends.runtimes import (
    CPU,
    CUDA,
    TENSORRT,
    TensorRTMissingError,
    onnx_providers,
    require_tensorrt,
    trt_cache_dir,
)
from yolact.cli.eval_cli import main

ort = pytest.importorskip("onnxruntime")

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
MODEL = os.path.join("runs", "export", "model.onnx")


def _available(monkeypatch, names: list[str]) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(names))


def test_tensorrt_then_cuda_then_cpu(monkeypatch, tmp_path) -> None:
    _available(monkeypatch, [TENSORRT, CUDA, CPU])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "model.onnx"
    model.write_bytes(b"graph")
    cache = trt_cache_dir(str(model))
    assert cache.startswith(str(tmp_path / "cache" / "yolact" / "tensorrt"))
    assert onnx_providers(str(model), "cuda:1", half=True) == [
        (
            TENSORRT,
            {
                "device_id": 1,
                "trt_fp16_enable": True,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": cache,
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": cache,
            },
        ),
        (CUDA, {"device_id": 1}),
        CPU,
    ]
    assert os.path.isdir(cache)  # made for TensorRT, private to the user
    assert os.stat(cache).st_mode & 0o777 == 0o700
    trt = onnx_providers(str(model), "cuda")[0]
    assert trt[0] == TENSORRT and trt[1]["trt_fp16_enable"] is False
    assert trt[1]["device_id"] == 0
    # The onnxruntime backend leaves TensorRT out; the CPU never gets a GPU provider.
    assert onnx_providers(MODEL, "cuda", tensorrt=False) == [(CUDA, {"device_id": 0}), CPU]
    assert onnx_providers(MODEL, "cpu", half=True) == [CPU]


def test_only_the_providers_present(monkeypatch) -> None:
    _available(monkeypatch, [CUDA, CPU])
    assert onnx_providers(MODEL, "cuda") == [(CUDA, {"device_id": 0}), CPU]
    _available(monkeypatch, [CPU])
    assert onnx_providers(MODEL, "cuda") == [CPU]


def test_tensorrt_required_but_missing_is_one_line(monkeypatch) -> None:
    _available(monkeypatch, [CUDA, CPU])
    message = (
        "the tensorrt backend needs onnxruntime's TensorrtExecutionProvider (onnxruntime-gpu "
        "with the TensorRT libraries); this onnxruntime has CUDAExecutionProvider, "
        "CPUExecutionProvider"
    )
    with pytest.raises(TensorRTMissingError) as e:
        require_tensorrt()
    assert str(e.value) == message
    with pytest.raises(TensorRTMissingError):
        onnx_providers(MODEL, "cuda", tensorrt=True)
    _available(monkeypatch, [TENSORRT, CUDA, CPU])
    require_tensorrt()
    with pytest.raises(runtimes.ExportedFileError, match="^the tensorrt backend needs a CUDA"):
        onnx_providers(MODEL, "cpu", tensorrt=True)


def test_tensorrt_backend_is_skipped_in_one_line_where_missing(tmp_path, capsys) -> None:
    """``--backends=pytorch,tensorrt`` here (no TensorRT): one 'skipping' line, PyTorch runs."""
    if TENSORRT in ort.get_available_providers():
        pytest.skip("this onnxruntime has TensorRT")
    code = main([
        "--benchmark", f"--trained_model={DEMO}", "--backends=pytorch,tensorrt",
        "--max_images=1", "--benchmark_batch=1", "--benchmark_warmup=0",
        f"--benchmark_dir={tmp_path}", "--cuda=False",
    ])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    skips = [line for line in err.splitlines() if line.startswith("skipping")]
    assert len(skips) == 1
    assert skips[0].startswith("skipping tensorrt: the tensorrt backend needs onnxruntime's ")
    assert "yolact_tiny (pytorch)" in (tmp_path / "comparison.md").read_text()


@pytest.mark.parametrize("bf16", [True, False])
def test_half_on_an_exported_file_on_cpu_is_one_line(tmp_path, capsys, monkeypatch, bf16) -> None:
    """An ONNX file with --half on the CPU: onnxruntime has no bfloat16 there, and a
    CPU without bfloat16 has no --half at all (the capability stood in for)."""
    from yolact.export import export
    from yolact.runtime import gpu

    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: bf16)
    path = export(DEMO, str(tmp_path / "m.onnx"), "onnx", check=False, log=False)
    code = main([f"--trained_model={path}", "--benchmark", "--half", "--cuda=False"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    if bf16:
        assert err == (
            f"error: {path}: onnxruntime runs it in float32 on the CPU; for --half there "
            "(bfloat16) export it with --format=openvino\n"
        )
    else:
        assert err.startswith("error: --half on the CPU runs bfloat16, and this CPU has no")
