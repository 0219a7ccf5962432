"""An exported file holds no weights: where weights are needed it is refused in one
line, and ``--backends`` on it times only the runtimes it can run (issue 16, item 1)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import digest, one_line

from yolact.cli.eval_cli import main as eval_main
from yolact.export import main as export_main
from yolact.slim import main as slim_main

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_exporting_an_exported_file_over_itself_is_refused(exported, kind, capsys) -> None:
    path = exported[kind]
    before = digest(path)
    code = export_main([f"--trained_model={path}", f"--format={kind}", f"--output={path}"])
    line = one_line(capsys.readouterr().err)
    assert code == 1
    what = "an ONNX file" if kind == "onnx" else "an OpenVINO model"
    assert line == (
        f"error: {path} is {what} written by export, not weights; export needs the .pth "
        "checkpoint it was exported from"
    )
    assert digest(path) == before


def test_exporting_an_exported_file_elsewhere_writes_nothing(exported, tmp_path) -> None:
    """The command line of the issue, in a process of its own."""
    out = tmp_path / "m2.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "yolact.export", f"--trained_model={exported['onnx']}",
         "--format=onnx", f"--output={out}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert "is an ONNX file written by export, not weights" in one_line(proc.stderr)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_slimming_an_exported_file_is_refused(exported, kind, tmp_path, capsys) -> None:
    path = exported[kind]
    before = digest(path)
    assert slim_main([path, str(tmp_path / "slim.pth")]) == 1
    what = "an ONNX file" if kind == "onnx" else "an OpenVINO model"
    assert one_line(capsys.readouterr().err) == (
        f"error: {path} is {what} written by export; slim a train.py checkpoint"
    )
    assert digest(path) == before and os.listdir(tmp_path) == []


def _bench(path: str, backends: str, folder: Path, monkeypatch) -> tuple[int, list[str]]:
    """``eval.py --benchmark --backends`` on ``path``; nothing may be exported."""

    def no_export(*args: object, **kwargs: object) -> str:
        raise AssertionError("an exported file was exported again")

    monkeypatch.setattr("yolact.export.export", no_export)
    code = eval_main([
        "--benchmark", f"--trained_model={path}", f"--backends={backends}",
        "--max_images=1", "--benchmark_batch=1", "--benchmark_warmup=0",
        f"--benchmark_dir={folder}", "--cuda=False",
    ])  # fmt: skip
    rows = []
    if code == 0:
        with open(folder / "comparison.csv") as f:
            rows = [r["model"] for r in csv.DictReader(f)]
    return code, rows


def test_backends_on_an_onnx_file_time_its_runtimes(exported, tmp_path, monkeypatch, capsys):
    path = exported["onnx"]
    before = digest(path)
    code, rows = _bench(path, "pytorch,onnxruntime,openvino", tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 0, err
    assert rows == ["yolact_tiny (onnxruntime)", "yolact_tiny (openvino)"]
    skips = [line for line in err.splitlines() if line.startswith("skipping")]
    assert skips == [
        f"skipping pytorch: {path} is an ONNX file without PyTorch weights; give the .pth "
        "checkpoint to time PyTorch"
    ]
    assert "Traceback" not in err and digest(path) == before


def test_backends_on_an_openvino_model_time_openvino_alone(
    exported, tmp_path, monkeypatch, capsys
) -> None:
    path = exported["openvino"]
    code, rows = _bench(path, "onnxruntime,tensorrt,openvino,pytorch", tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 0, err
    assert rows == ["yolact_tiny (openvino)"]
    skips = [line for line in err.splitlines() if line.startswith("skipping")]
    assert skips == [
        f"skipping onnxruntime: {path} is an OpenVINO model; onnxruntime runs .onnx files",
        f"skipping tensorrt: {path} is an OpenVINO model; tensorrt runs .onnx files",
        f"skipping pytorch: {path} is an OpenVINO model without PyTorch weights; give the "
        ".pth checkpoint to time PyTorch",
    ]


def test_no_backend_that_can_run_the_file_is_one_line(exported, tmp_path, monkeypatch, capsys):
    code, rows = _bench(exported["onnx"], "pytorch", tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 1 and rows == []
    lines = err.strip().splitlines()
    assert lines[0].startswith("skipping pytorch: ") and len(lines) == 2
    assert lines[1] == "error: no backend can run this model" and "Traceback" not in err
