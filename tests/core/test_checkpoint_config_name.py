"""A config name read from a file becomes part of file names (checkpoints, CSV logs):
names that would leave the folder are refused in one line (issue 16, item 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import REPO

from yolact.core.weights import CheckpointError
from yolact.engine.checkpoint_names import CheckpointName
from yolact.registry import read_checkpoint

SHIPPED = REPO / "weights" / "yolact_tiny_synthetic.pth"
BAD_NAMES = ["../x", "../../etc/x", "/tmp/x", "a/b", "a\\b", "", ".", "..", "x\x00y", "C:x"]


def crafted(path: Path, name: object) -> Path:
    """The shipped model, with its stored config's name replaced."""
    state = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    state["config"] = {**state["config"], "name": name}
    torch.save(state, path)
    return path


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_stored_config_name_that_is_not_a_plain_file_name_is_refused(tmp_path, name) -> None:
    path = crafted(tmp_path / "m.pth", name)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(str(path))
    assert str(info.value) == (
        f"checkpoint {path} stores the config name {name!r}, which is not a plain file "
        "name (it is part of the names of the files written)"
    )


def test_a_stored_config_name_that_is_not_text_is_refused(tmp_path) -> None:
    path = crafted(tmp_path / "m.pth", 7)
    with pytest.raises(CheckpointError, match="stores the config name 7, which is not"):
        read_checkpoint(str(path))


def test_plain_names_are_read(tmp_path) -> None:
    path = crafted(tmp_path / "m.pth", "my_tiny-v2.1")
    ckpt = read_checkpoint(str(path))
    assert ckpt.config is not None and ckpt.config.name == "my_tiny-v2.1"


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", ""])
def test_checkpoint_file_names_never_hold_a_path(name) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        CheckpointName(name, 0, 1)


def test_a_file_whose_name_holds_no_plain_config_is_no_checkpoint_name(tmp_path) -> None:
    from yolact.engine.checkpoint_names import list_checkpoints

    (tmp_path / "a:b_1_2.pth").write_bytes(b"")
    (tmp_path / "a_1_2.pth").write_bytes(b"")
    assert CheckpointName.parse("a:b_1_2.pth") is None
    assert [name for name, _ in list_checkpoints(str(tmp_path), "a")] == [CheckpointName("a", 1, 2)]


def test_resuming_from_a_crafted_file_writes_nothing_outside_the_save_folder(
    tmp_path, capsys
) -> None:
    from yolact.cli import train_cli
    from yolact.data.synthetic import write_coco_dataset

    data = tmp_path / "data"
    write_coco_dataset(str(data), 2, 0, (48, 48))
    work = tmp_path / "work"
    work.mkdir()
    bad = crafted(work / "bad.pth", "../escaped")
    save = work / "save"
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(work))
    argv = [f"--resume={bad}", f"--train_ann={data / 'annotations' / 'train.json'}",
            f"--train_images={data / 'train'}", f"--save_folder={save}", "--batch_size=2",
            "--max_iter=1", "--num_workers=0", "--no_bar", "--validation_epoch=-1",
            "--save_interval=0", "--device=cpu"]  # fmt: skip
    assert train_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
        f"error: checkpoint {bad} stores the config name '../escaped', which is not a plain "
        "file name (it is part of the names of the files written)"
    ]
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(work))) == before
    assert not save.exists() or list(save.iterdir()) == []


def test_an_exported_file_with_such_a_config_name_is_refused(tmp_path) -> None:
    from yolact.backends.meta import OPENVINO_BIN, OPENVINO_META, OPENVINO_XML, ExportMeta
    from yolact.registry import exported_config

    cfg = read_checkpoint(str(SHIPPED)).config
    assert cfg is not None
    folder = tmp_path / "m_openvino_model"
    folder.mkdir()
    meta = ExportMeta(
        config_name="../x", config={**cfg.to_dict(), "name": "../x"},
        class_names=list(cfg.class_names), input_size=cfg.max_size, batch=1,
        pixel_mean=[0.0, 0.0, 0.0], pixel_std=[1.0, 1.0, 1.0],
    )  # fmt: skip
    (folder / OPENVINO_META).write_text(meta.to_json())
    (folder / OPENVINO_XML).write_text("")
    (folder / OPENVINO_BIN).write_bytes(b"")
    with pytest.raises(CheckpointError) as info:
        exported_config(str(folder))
    assert str(info.value) == (
        f"{folder} stores the config name '../x', which is not a plain file name "
        "(it is part of the names of the files written)"
    )


@pytest.mark.parametrize("name", ["../escaped", "/tmp/escaped", "a\\b", ".."])
def test_a_config_name_set_on_the_command_line_is_checked_up_front(tmp_path, capsys, name) -> None:
    from yolact.cli.train_cli import main

    save = tmp_path / "save"
    code = main(["--config=yolact_tiny", "--set", f"name={name}", f"--save_folder={save}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err == [
        f"error: config name {name!r} is not a plain file name "
        "(it is part of the names of the files written)"
    ]
    assert not save.exists() and not (tmp_path / "escaped").exists()
