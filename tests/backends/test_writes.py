"""The write-beside-then-move helpers of yolact.backends.writes (issue 16, item 6)."""

from __future__ import annotations

import os

import pytest

from yolact.backends import writes
from yolact.backends.writes import WriteError, write_file, write_folder


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _fill(folder: str, text: bytes) -> None:
    with open(os.path.join(folder, "model.xml"), "wb") as f:
        f.write(text)


def test_a_folder_that_cannot_be_moved_in_puts_the_old_one_back(tmp_path, monkeypatch) -> None:
    target = tmp_path / "m_openvino_model"
    target.mkdir()
    (target / "model.xml").write_bytes(b"old")
    rename = os.rename

    def moving_in_fails(src: str, dst: str) -> None:
        if src.endswith(".partial"):  # the new folder moving in
            raise OSError(28, "No space left on device")
        rename(src, dst)

    monkeypatch.setattr(writes.os, "rename", moving_in_fails)
    with pytest.raises(WriteError, match="No space left on device"):
        write_folder(str(target), lambda tmp: _fill(tmp, b"new"))
    assert (target / "model.xml").read_bytes() == b"old"
    assert os.listdir(tmp_path) == [target.name]


def test_a_failed_write_leaves_the_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file(str(target), write)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.onnx"]


def test_the_check_sees_the_new_file_beside_the_old(tmp_path) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    seen: list[tuple[str, bytes, bytes]] = []

    def check(tmp: str) -> None:
        with open(tmp, "rb") as f:
            seen.append((os.path.dirname(tmp), f.read(), target.read_bytes()))

    write_file(str(target), lambda tmp: _write(tmp, b"new"), check)
    assert seen == [(str(tmp_path), b"new", b"old")]
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["m.onnx"]
