"""The INT8 rows of ``tools/original_bench.py``: each is an INT8 export calibrated on
generated frames (exported once per runtime), run like the other rows, and noted as
not comparable with the original on random weights."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from conftest import REPO

if str(REPO / "tools") not in sys.path:  # the tools are scripts: `python tools/X.py`
    sys.path.insert(0, str(REPO / "tools"))

import original_bench as ob  # noqa: E402
import original_code as oc  # noqa: E402
from test_original_bench import write_fake_original  # noqa: E402

from yolact.backends.meta import read_meta  # noqa: E402

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("w8") / "yolact_tiny_0_0.pth")
    return oc.write_original_weights("yolact_tiny", path)


def test_generated_calibration_writes_640x480_frames_unlike_the_timed_ones(tmp_path):
    from yolact.data.scenes import synthetic_frames

    folder = ob.generated_calibration(str(tmp_path), 3)
    names = sorted(p.name for p in (tmp_path / "calib").iterdir())
    assert folder == str(tmp_path / "calib") and names == ["0000.png", "0001.png", "0002.png"]
    first = cv2.imread(str(tmp_path / "calib" / "0000.png"))
    assert first.shape == (480, 640, 3) and first.dtype == np.uint8
    assert np.array_equal(first, synthetic_frames(1, 480, 640, seed=11)[0])  # PNG: lossless
    assert not np.array_equal(first, synthetic_frames(1, 480, 640)[0])  # the timed frames


def test_int8_rows_are_int8_exports_made_once_per_runtime(tmp_path, weights, monkeypatch):
    import yolact.export

    calls: list[tuple[str, object]] = []
    real = yolact.export.export
    monkeypatch.setattr(
        yolact.export,
        "export",
        lambda *a, **k: calls.append((a[2], k.get("int8"))) or real(*a, **k),
    )
    names = ["openvino", "openvino_int8", "openvino_int8_bf16", "onnxruntime_int8"]
    backends = ob.project_backends(weights, "yolact_tiny", names, str(tmp_path), 5, calib_size=2)
    assert [b.name for b in backends] == names
    assert [(fmt, opts is None) for fmt, opts in calls] == [
        ("openvino", True), ("openvino", False), ("onnx", False),
    ]  # fmt: skip
    int8_opts = [opts for _, opts in calls if opts is not None]
    assert all(o.calib == str(tmp_path / "calib") and o.calib_size == 2 for o in int8_opts)
    assert [b.run.half for b in backends] == [False, False, True, False]
    exported = sorted(p.name for p in tmp_path.iterdir() if p.name != "calib")
    assert exported == ["yolact_tiny_onnx_int8.onnx", "yolact_tiny_openvino_int8_openvino_model",
                        "yolact_tiny_openvino_openvino_model"]  # fmt: skip
    meta = read_meta(str(tmp_path / "yolact_tiny_onnx_int8.onnx"))
    assert meta.precision == "int8"
    assert read_meta(str(tmp_path / "yolact_tiny_openvino_openvino_model")).precision == "fp32"
    frames = [np.random.default_rng(s).integers(0, 255, (120, 160, 3), np.uint8) for s in (0, 1)]
    result = ob.run_side_by_side(backends, frames, warmup=0)
    assert list(result.ms) == names and all(len(v) == 2 for v in result.ms.values())
    for name in names[1:]:
        assert result.agreement[name].detections == 10  # top_k 5 on each frame


def test_default_list_has_openvino_int8_with_or_without_bf16(monkeypatch):
    from yolact.runtime import gpu

    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: False)
    assert ob.default_backends() == ("original", "pytorch", "onnxruntime", "openvino",
                                     "openvino_int8")  # fmt: skip
    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: True)
    assert ob.default_backends() == (
        "original", "pytorch", "onnxruntime", "openvino", "pytorch_bf16", "openvino_bf16",
        "openvino_int8",
    )  # fmt: skip


def test_cli_notes_why_int8_rows_differ_on_random_weights(tmp_path, capsys):
    code = ob.main([
        f"--original_repo={write_fake_original(tmp_path)}", "--config=yolact_tiny",
        "--images=1", "--warmup=0", "--backends=original,openvino_int8", "--threads=1",
        "--calib_size=1",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "openvino_int8 vs original:" in out
    assert out.rstrip().endswith(ob.RANDOM_INT8_NOTE) and ob.RANDOM_BF16_NOTE not in out


def test_calib_size_below_one_is_one_line(capsys):
    assert ob.main(["--calib_size=0"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --calib_size must be at least 1\n"
    assert len(err.strip().splitlines()) == 1
