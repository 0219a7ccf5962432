"""Export writes beside its output, checks there, and only then moves into place:
an output that cannot be written is one line before any work, a failed check
leaves what the output held before, and an OpenVINO model is replaced only once
the new one is checked (issue 16, item 6). The slimming tool likewise."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import REPO, digest, one_line

from yolact import export as export_module
from yolact.export import export
from yolact.export import main as export_main
from yolact.models.yolact.model import build_model
from yolact.registry import get_config
from yolact.slim import main as slim_main

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
NAMES = {"onnx": "m.onnx", "openvino": "m_openvino_model"}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> dict[str, str]:
    """Earlier exports (any batch size: not what a plain export writes)."""
    root = tmp_path_factory.mktemp("earlier")
    return {
        kind: export(DEMO, str(root / "m"), kind, dynamic_batch=True, check=False, log=False)
        for kind in ("onnx", "openvino")
    }


def place(earlier: dict[str, str], kind: str, folder: Path) -> Path:
    """A copy of the earlier export in ``folder``."""
    target = folder / NAMES[kind]
    if kind == "onnx":
        shutil.copy(earlier[kind], target)
    else:
        shutil.copytree(earlier[kind], target)
    return target


def fail_the_check(monkeypatch) -> None:
    monkeypatch.setattr(export_module, "compare_outputs", lambda *a, **k: (0.0, "forced"))


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_an_output_under_a_file_is_one_line_before_any_work(kind, tmp_path, capsys) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_bytes(b"mine")
    out = blocker / "sub" / "m"
    code = export_main([f"--trained_model={DEMO}", f"--format={kind}", f"--output={out}"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert one_line(captured.err) == (
        f"error: cannot write to {blocker / 'sub'}: {blocker} is not a folder"
    )
    assert blocker.read_bytes() == b"mine" and os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path, capsys) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    code = export_main([f"--trained_model={DEMO}", f"--output={folder / 'm.onnx'}"])
    assert code == 1
    assert one_line(capsys.readouterr().err).startswith(f"error: cannot write to {folder}: ")


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_a_failed_check_keeps_the_earlier_export(
    earlier, kind, tmp_path, monkeypatch, capsys
) -> None:
    target = place(earlier, kind, tmp_path)
    before = digest(target)
    fail_the_check(monkeypatch)
    code = export_main([f"--trained_model={DEMO}", f"--format={kind}", f"--output={target}"])
    runtime = "onnxruntime" if kind == "onnx" else "openvino"
    assert code == 1
    assert one_line(capsys.readouterr().err) == f"error: {runtime} disagrees with PyTorch: forced"
    assert digest(target) == before
    assert os.listdir(tmp_path) == [target.name]  # no temporary file left


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_a_failed_check_leaves_no_file(kind, tmp_path, monkeypatch, capsys) -> None:
    fail_the_check(monkeypatch)
    out = tmp_path / "m"
    assert export_main([f"--trained_model={DEMO}", f"--format={kind}", f"--output={out}"]) == 1
    one_line(capsys.readouterr().err)
    assert os.listdir(tmp_path) == []


def test_an_openvino_model_is_replaced_only_once_the_new_one_is_checked(
    earlier, tmp_path, monkeypatch, capsys
) -> None:
    target = place(earlier, "openvino", tmp_path)
    before = digest(target)
    seen: list[str] = []
    check = export_module._check

    def watched(*args: object) -> str:
        seen.append(digest(target))  # what the output holds while the new one is checked
        return check(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(export_module, "_check", watched)
    code = export_main([f"--trained_model={DEMO}", "--format=openvino", f"--output={target}"])
    out = capsys.readouterr().out
    assert code == 0 and "checked with openvino: 30/30 detections match" in out
    assert seen == [before]
    assert digest(target) != before and os.listdir(tmp_path) == [target.name]
    assert sorted(os.listdir(target)) == ["metadata.json", "model.bin", "model.xml"]
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_an_onnx_file_is_written_with_the_usual_permissions(earlier, tmp_path) -> None:
    target = place(earlier, "onnx", tmp_path)
    before = digest(target)
    assert export(DEMO, str(target), "onnx", log=False) == str(target)
    assert digest(target) != before and os.listdir(tmp_path) == [target.name]
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o666 & ~_umask())


def test_a_folder_holding_other_files_is_not_replaced(earlier, tmp_path, capsys) -> None:
    target = place(earlier, "openvino", tmp_path)
    (target / "notes.txt").write_bytes(b"mine")
    before = digest(target)
    code = export_main([f"--trained_model={DEMO}", "--format=openvino", f"--output={target}"])
    assert code == 1
    assert one_line(capsys.readouterr().err) == (
        f"error: {target} holds other files than an exported model (notes.txt); remove them "
        "or give another --output"
    )
    assert digest(target) == before


def test_an_onnx_output_that_is_a_folder_is_one_line(tmp_path, capsys) -> None:
    target = tmp_path / "m.onnx"
    target.mkdir()
    (target / "notes.txt").write_bytes(b"mine")
    assert export_main([f"--trained_model={DEMO}", f"--output={target}"]) == 1
    assert one_line(capsys.readouterr().err) == f"error: {target} is a folder; give a file name"
    assert (target / "notes.txt").read_bytes() == b"mine"


@pytest.fixture
def training_checkpoint(tmp_path) -> Path:
    """A train.py-like checkpoint: weights, config and optimizer state."""
    torch.manual_seed(0)
    model = build_model(get_config("yolact_tiny"))
    src = tmp_path / "run" / "yolact_tiny_0_5.pth"
    src.parent.mkdir()
    torch.save({"model": model.state_dict(), "config": model.cfg.to_dict(), "iteration": 5,
                "optimizer": {"state": {}}}, src)  # fmt: skip
    return src


def test_slimming_onto_its_input_by_another_spelling_is_refused(
    training_checkpoint, tmp_path, capsys
) -> None:
    before = digest(training_checkpoint)
    link = tmp_path / "link"
    link.symlink_to(training_checkpoint.parent, target_is_directory=True)
    other = link / training_checkpoint.name
    assert slim_main([str(training_checkpoint), str(other)]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"error: the output {other} would overwrite the input {training_checkpoint}; "
        "give another path"
    )
    assert digest(training_checkpoint) == before


def test_slimming_into_a_folder_that_cannot_exist_is_one_line(
    training_checkpoint, tmp_path, capsys
) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_bytes(b"mine")
    assert slim_main([str(training_checkpoint), str(blocker / "slim.pth")]) == 1
    assert one_line(capsys.readouterr().err) == (f"error: cannot write to {blocker}: not a folder")
    assert blocker.read_bytes() == b"mine"


def test_slimming_writes_beside_then_moves(training_checkpoint, tmp_path, capsys) -> None:
    dst = tmp_path / "slim.pth"
    dst.write_bytes(b"earlier")
    assert slim_main([str(training_checkpoint), str(dst)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {dst} (")
    keys = set(torch.load(dst, weights_only=True))
    assert keys == {"model", "config", "class_names", "iteration"}
    assert sorted(os.listdir(tmp_path)) == ["run", "slim.pth"]
