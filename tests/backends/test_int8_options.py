"""INT8 export's flags and calibration sources, without quantizing: bad input is one
line before any work (and the output stays as it was), ``--calib`` takes a folder,
a COCO annotation file or a dataset name, the metadata's precision reads back,
and TensorRT gets its INT8 options for an INT8 file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, digest, one_line

from yolact.backends import runtimes
from yolact.backends.calib import (
    CalibrationError,
    annotation_image_dir,
    calibration_batches,
    calibration_files,
)
from yolact.backends.int8_export import Int8Options
from yolact.backends.meta import ExportedFileError, ExportMeta
from yolact.backends.runtimes import CPU, CUDA, TENSORRT, onnx_providers
from yolact.data.synthetic import write_coco_dataset
from yolact.export import main as export_main

ort = pytest.importorskip("onnxruntime")

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    return write_coco_dataset(str(tmp_path_factory.mktemp("calib")), 5, 0, size=(40, 48))


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--int8"], "--int8 needs --calib"),
        (["--int8", "--calib=EMPTY"], "no images in it"),
        (["--int8", "--calib=MISSING"], "no such folder or file, nor a dataset name"),
        (["--int8", "--calib=IMAGES", "--half"], "--int8 and --half do not go together"),
        (["--int8", "--calib=IMAGES", "--max_ap_drop=0.01"], "--format=openvino only"),
        (["--int8", "--calib=IMAGES", "--format=openvino", "--max_ap_drop=0.01"],
         "--max_ap_drop needs --val_ann and --val_images"),
        (["--int8", "--calib=IMAGES", "--format=openvino", "--max_ap_drop=2",
          "--val_ann=ANN", "--val_images=IMAGES"], "a mask AP drop in (0, 1)"),
        (["--int8", "--calib=IMAGES", "--calib_size=0"], "--calib_size must be at least 1"),
        (["--calib=IMAGES"], "--calib go(es) with --int8"),
        (["--max_ap_drop=0.01", "--val_ann=ANN"], "--max_ap_drop, --val_ann go(es) with --int8"),
        (["--int8", "--calib=coco2017_val", "--config=yolact_tiny"], "annotation file"),
    ],
)  # fmt: skip
def test_bad_int8_flags_one_line(tmp_path, data, capsys, flags, needle) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    output = tmp_path / "model.onnx"
    output.write_bytes(b"an earlier export")
    before = digest(output)
    paths = {"EMPTY": str(empty), "MISSING": str(tmp_path / "nowhere"),
             "IMAGES": data["train_image_dir"], "ANN": data["train_ann_file"]}  # fmt: skip
    argv = [f"--trained_model={DEMO}", f"--output={output}"]
    for flag in flags:
        for key, value in paths.items():
            flag = flag.replace(f"={key}", f"={value}")
        argv.append(flag)
    if "--config=yolact_tiny" in argv:
        argv.remove(f"--trained_model={DEMO}")
    cwd = os.getcwd()
    os.chdir(tmp_path)  # coco2017_val resolves under ./data: not there
    try:
        assert export_main(argv) == 1
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert needle in one_line(err) and out == ""
    assert digest(output) == before


def test_calib_sources(tmp_path, data) -> None:
    images = sorted(os.listdir(data["train_image_dir"]))
    folder = calibration_files(data["train_image_dir"], 100)
    assert [os.path.basename(f) for f in folder] == images
    # Spread evenly over the folder: 5 images, 2 taken -> the 1st and the 3rd.
    assert [os.path.basename(f) for f in calibration_files(data["train_image_dir"], 2)] == [
        images[0], images[2],
    ]  # fmt: skip
    # A COCO annotation file finds its images beside it (root/annotations/train.json ->
    # root/train), or in --calib_images.
    assert annotation_image_dir(data["train_ann_file"]) == data["train_image_dir"]
    assert calibration_files(data["train_ann_file"], 100) == folder
    moved = tmp_path / "elsewhere.json"
    moved.write_bytes(Path(data["train_ann_file"]).read_bytes())
    with pytest.raises(CalibrationError, match="give --calib_images"):
        calibration_files(str(moved), 10)
    assert calibration_files(str(moved), 10, data["train_image_dir"]) == folder
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"annotations": []}))
    with pytest.raises(CalibrationError, match="not a COCO annotation file"):
        calibration_files(str(bad), 10)


def _meta(**extra: object) -> ExportMeta:
    return ExportMeta("yolact_tiny", {}, ["a"], 64, None, [0.0] * 3, [1.0] * 3, extra=extra)


def test_calibration_batches_fixed_batch(data) -> None:
    files = calibration_files(data["train_image_dir"], 100)
    meta = _meta()
    one = calibration_batches(files, meta)
    assert len(one) == 5 and one[0].shape == (1, 3, 64, 64) and one[0].dtype == np.float32
    meta.batch = 2
    two = calibration_batches(files, meta)
    assert [b.shape[0] for b in two] == [2, 2, 2]
    np.testing.assert_array_equal(two[1][1], one[3][0])
    np.testing.assert_array_equal(two[2][1], one[4][0])  # the last batch filled with its first


def test_precision_in_metadata() -> None:
    assert _meta().precision == "fp32" and _meta().quantization == {}
    half = _meta()
    half.half = True
    assert half.precision == "fp16"
    int8 = ExportMeta.from_json(_meta(precision="int8", quantization={"tool": "x"}).to_json(), "f")
    assert int8.precision == "int8" and int8.quantization == {"tool": "x"} and int8.version == 1
    with pytest.raises(ExportedFileError, match="'extra' should be an object"):
        ExportMeta.from_json(_meta(precision="int4").to_json(), "f")


def test_tensorrt_int8_options(monkeypatch, tmp_path) -> None:
    """An INT8 file on CUDA: TensorRT builds INT8 kernels from the file's Q/DQ scales
    (explicit quantization), no calibration table read; a float file gets none."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TENSORRT, CUDA, CPU])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "model.onnx"
    model.write_bytes(b"graph")
    trt = onnx_providers(str(model), "cuda", int8=True)[0]
    assert trt[0] == TENSORRT
    assert trt[1]["trt_int8_enable"] is True
    assert trt[1]["trt_int8_use_native_calibration_table"] is False
    assert "trt_int8_calibration_table_name" not in trt[1]
    assert trt[1]["trt_fp16_enable"] is False
    assert "trt_int8_enable" not in onnx_providers(str(model), "cuda")[0][1]
    assert onnx_providers(str(model), "cpu", int8=True) == [CPU]

    seen = {}

    def record(path: str, device: str, **kwargs: object) -> list:
        seen.update(kwargs)
        raise ExportedFileError("stop here")

    monkeypatch.setattr(runtimes, "onnx_providers", record)
    with pytest.raises(ExportedFileError, match="stop here"):
        runtimes.OnnxRuntime(str(model), _meta(precision="int8"), "cuda")
    assert seen["int8"] is True


def test_backends_int8_rows_calibration(tmp_path, data) -> None:
    """eval.py --backends=...,openvino-int8: calibrated on the dataset's images, else
    --images's folder (both checked against float32), else on 32 generated frames
    (unchecked: random weights); an exported --trained_model is not quantized."""
    from argparse import Namespace

    from yolact.bench.int8 import calibration_source
    from yolact.cli.compare_cli import _backend_flags, parse_backends

    assert parse_backends("openvino,openvino-int8,onnxruntime-int8")[1:] == [
        "openvino-int8", "onnxruntime-int8",
    ]  # fmt: skip
    images = data["train_image_dir"]
    flags = Namespace(dataset=None, val_images=images, images=None)
    assert calibration_source(flags, str(tmp_path)) == (Int8Options(images), True)
    flags = Namespace(dataset=None, val_images=None, images=f"{images}:{tmp_path / 'out'}")
    assert calibration_source(flags, str(tmp_path)) == (Int8Options(images), True)
    opts, check = calibration_source(Namespace(), str(tmp_path))
    assert opts.calib == str(tmp_path / "calib") and check is False
    assert len(calibration_files(opts.calib, 100)) == 32
    exported = tmp_path / "model.onnx"
    exported.write_bytes(b"graph")
    with pytest.raises(ExportedFileError, match="give the .pth checkpoint to quantize"):
        _backend_flags(Namespace(trained_model=str(exported)), "onnxruntime-int8", str(tmp_path))


def test_tensorrt_int8_row_needs_tensorrt(monkeypatch) -> None:
    """--backends=tensorrt-int8 asks for TensorRT before exporting anything."""
    from argparse import Namespace

    from yolact.backends.runtimes import TensorRTMissingError
    from yolact.cli.compare_cli import _backend_flags

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    with pytest.raises(TensorRTMissingError, match="TensorrtExecutionProvider"):
        _backend_flags(Namespace(trained_model=DEMO), "tensorrt-int8", "unused")


def test_validation_set_errors_are_one_line(tmp_path, data) -> None:
    """Accuracy control's validation set: unreadable, or without annotations."""
    from types import SimpleNamespace

    from yolact.backends.accuracy import MaskApValidator
    from yolact.core.family import ExportError
    from yolact.data.synthetic import SYNTHETIC_CLASSES

    cfg = SimpleNamespace(class_names=SYNTHETIC_CLASSES)  # the demo model's classes
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ExportError, match="^--val_ann: "):
        MaskApValidator(str(bad), data["train_image_dir"], cfg, _meta())
    empty = tmp_path / "empty.json"
    ann = json.loads(Path(data["train_ann_file"]).read_text())
    empty.write_text(json.dumps({**ann, "annotations": []}))
    with (
        pytest.warns(UserWarning, match="every image is background"),
        pytest.raises(ExportError, match="no annotations to measure AP against"),
    ):
        MaskApValidator(str(empty), data["train_image_dir"], cfg, _meta())


def test_deformable_model_refused(tmp_path, data, capsys) -> None:
    """YOLACT++'s deformable convolutions run on TensorRT alone: no INT8 export."""
    output = tmp_path / "plus.onnx"
    argv = ["--config=yolact_plus_base", f"--output={output}", "--int8",
            f"--calib={data['train_image_dir']}"]  # fmt: skip
    assert export_main(argv) == 1
    err = one_line(capsys.readouterr().err)
    assert err == "error: --int8 cannot quantize YOLACT++'s deformable convolutions"
    assert not output.exists() and os.listdir(tmp_path) == []
