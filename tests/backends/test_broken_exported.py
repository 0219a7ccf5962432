"""A broken exported file ends in one line naming the cause: an OpenVINO model
without its .bin or .xml, metadata that is not JSON, has wrong types or misses
keys, and a format version that is absent, unknown or newer (issue 16, item 7)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from yolact.backends.meta import META_KEY
from yolact.cli.eval_cli import main as eval_main

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


def run_eval(path: Path, capsys) -> str:
    """eval.py on ``path``: exit 1 and one error line, returned."""
    code = eval_main([f"--trained_model={path}", f"--image={path.parent / 'x.png'}"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def openvino_copy(exported: dict[str, str], tmp_path: Path) -> Path:
    folder = tmp_path / "model_openvino_model"
    shutil.copytree(exported["openvino"], folder)
    return folder


@pytest.mark.parametrize("missing", ["model.bin", "model.xml"])
def test_an_openvino_model_without_a_file_names_it(exported, tmp_path, capsys, missing) -> None:
    folder = openvino_copy(exported, tmp_path)
    (folder / missing).unlink()
    assert run_eval(folder, capsys) == f"error: {folder}: missing {missing}"


def test_an_unreadable_openvino_graph_says_why_not_where(exported, tmp_path, capsys) -> None:
    folder = openvino_copy(exported, tmp_path)
    (folder / "model.xml").write_text("<net>")
    line = run_eval(folder, capsys)
    assert line.startswith(f"error: {folder}: OpenVINO cannot load it: ")
    assert "Exception from src" not in line and "Unable to read the model" in line


def _edited(d: dict) -> Callable[[dict], dict]:
    def edit(meta: dict) -> dict:
        meta.update(d)
        return {k: v for k, v in meta.items() if v is not _DROP}

    return edit


_DROP = object()
# (edit of the metadata dict, the cause the error line ends with)
CASES = {
    "wrong type": (
        _edited({"input_size": "160"}),
        "yolact metadata 'input_size' should be a positive integer, not '160'",
    ),
    "bool for int": (
        _edited({"batch": True}),
        "yolact metadata 'batch' should be null or a positive integer, not True",
    ),
    "wrong list": (
        _edited({"pixel_mean": [1, 2]}),
        "yolact metadata 'pixel_mean' should be a list of 3 numbers, not [1, 2]",
    ),
    "class names": (
        _edited({"class_names": [1]}),
        "yolact metadata 'class_names' should be a list of strings, not [1]",
    ),
    "missing keys": (
        _edited({"class_names": _DROP, "input_size": _DROP}),
        "yolact metadata without class_names, input_size",
    ),
    "unknown key": (_edited({"colour": "red"}), "unknown key(s) in yolact metadata: colour"),
    "no version": (_edited({"version": _DROP}), "yolact metadata without a format version"),
    "version string": (
        _edited({"version": "1"}),
        "unknown yolact metadata format version '1'",
    ),
    "version zero": (_edited({"version": 0}), "unknown yolact metadata format version 0"),
    "newer version": (
        _edited({"version": 2, "colour": "red"}),
        "yolact metadata format version 2 is newer than this yolact reads (1); update yolact",
    ),
    "not an object": (lambda meta: [meta], "yolact metadata is not a JSON object"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_openvino_metadata_is_checked(exported, tmp_path, capsys, case) -> None:
    folder = openvino_copy(exported, tmp_path)
    meta_file = folder / "metadata.json"
    edit, cause = CASES[case]
    meta_file.write_text(json.dumps(edit(json.loads(meta_file.read_text()))))
    assert run_eval(folder, capsys) == f"error: {meta_file}: {cause}"


@pytest.mark.parametrize("case", ["wrong type", "missing keys", "newer version"])
def test_onnx_metadata_is_checked(exported, tmp_path, capsys, case) -> None:
    model = onnx.load(exported["onnx"])
    (prop,) = [p for p in model.metadata_props if p.key == META_KEY]
    edit, cause = CASES[case]
    prop.value = json.dumps(edit(json.loads(prop.value)))
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    assert run_eval(path, capsys) == f"error: {path}: {cause}"


def test_metadata_that_is_not_json_is_one_line(exported, tmp_path, capsys) -> None:
    folder = openvino_copy(exported, tmp_path)
    meta_file = folder / "metadata.json"
    meta_file.write_text('{"version": 1,')
    line = run_eval(folder, capsys)
    assert line.startswith(f"error: {meta_file}: yolact metadata is not JSON (")
