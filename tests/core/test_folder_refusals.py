"""A folder given where a checkpoint file is needed, and export's thread sizing."""

from __future__ import annotations

import os

import pytest
import torch

from yolact.core.weights import CheckpointError, read_checkpoint


def test_a_folder_is_named_as_a_folder(tmp_path) -> None:
    folder = tmp_path / "m_openvino_model"
    folder.mkdir()
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(str(folder))
    assert str(e.value) == f"{folder} is a folder, not a checkpoint file"


def test_a_missing_file_is_still_not_found(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="^checkpoint not found: "):
        read_checkpoint(str(tmp_path / "nothing.pth"))


def test_train_resume_from_a_folder_is_one_line(tmp_path, capsys) -> None:
    from yolact.cli.train_cli import main

    folder = tmp_path / "m_openvino_model"
    folder.mkdir()
    code = main(["--config=yolact_tiny", f"--resume={folder}", f"--save_folder={tmp_path}/out"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err == [f"error: {folder} is a folder, not a checkpoint file"]


def test_export_sizes_its_threads(tmp_path, monkeypatch, capsys) -> None:
    from yolact import export

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    seen: list[int | None] = []

    def fake_export(*args: object, **kwargs: object) -> None:
        seen.append(torch.get_num_threads())

    monkeypatch.setattr(export, "export", fake_export)
    out = os.path.join(tmp_path, "m.onnx")
    assert export.main(["--config=yolact_tiny", f"--output={out}", "--threads=2"]) == 0
    assert seen == [2]
    assert export.main(["--config=yolact_tiny", f"--output={out}", "--threads=0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert seen == [2]
