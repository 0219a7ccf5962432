"""yolact.io.outputs: same-file detection, up-front place checks, writes beside the target."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import yolact.io.outputs as outputs
from yolact.io.outputs import (
    FileSet,
    OutputError,
    atomic_write,
    check_folder_writable,
    check_output_file,
    rescue_write,
    same_file,
    write_or_rescue,
)


def test_same_file_by_any_spelling(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    Path("a.jpg").write_bytes(b"a")
    Path("b.jpg").write_bytes(b"a")  # same bytes, another file
    os.symlink("a.jpg", "sym.jpg")
    os.link("a.jpg", "hard.jpg")
    os.symlink("missing.jpg", "dangling.jpg")
    for spelling in ("a.jpg", "./a.jpg", str(tmp_path / "a.jpg"), "sub/../a.jpg", "sym.jpg",
                     "hard.jpg"):  # fmt: skip
        assert same_file(spelling, "a.jpg"), spelling
    assert not same_file("b.jpg", "a.jpg")
    assert not same_file("new.jpg", "a.jpg")
    assert same_file("./missing.jpg", "missing.jpg")  # neither exists: the same place
    assert same_file("dangling.jpg", "missing.jpg")  # writing it would create missing.jpg


def test_file_set_finds_the_member(tmp_path) -> None:
    files = [tmp_path / f"{i}.png" for i in range(3)]
    for f in files:
        f.write_bytes(b"x")
    os.link(files[2], tmp_path / "link.png")
    found = FileSet(str(f) for f in files)
    assert found.find(str(tmp_path / "link.png")) == str(files[2])
    assert found.find(str(tmp_path / "." / "1.png")) == str(files[1])
    assert found.find(str(tmp_path / "other.png")) is None


def test_check_places(tmp_path, monkeypatch) -> None:
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "dir").mkdir()
    check_output_file(str(tmp_path / "new" / "deeper" / "r.json"), "--flag")  # creatable
    with pytest.raises(OutputError, match=r"^--flag: .*dir is a folder, expected a file name$"):
        check_output_file(str(tmp_path / "dir"), "--flag")
    with pytest.raises(OutputError, match=r"cannot create folder .*file/a: .*file is not a fold"):
        check_output_file(str(tmp_path / "file" / "a" / "r.json"), "--flag")
    # A folder this user may not write in (root may write anywhere, so access is faked).
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    with pytest.raises(OutputError) as info:
        check_folder_writable(str(tmp_path / "dir"), "--flag")
    folder = tmp_path / "dir"
    assert str(info.value) == f"--flag: cannot write in folder {folder} (permission denied)"


def test_atomic_write_failure_leaves_the_target_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_bytes(b"old")

    def replace_fails(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", replace_fails)
    with pytest.raises(OSError):
        atomic_write(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["r.json"]


def test_rescue_write_never_replaces_a_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    target = tmp_path / "gone" / "r.json"
    first = rescue_write(str(target), b"1")  # the folder is missing: the current folder
    second = rescue_write(str(target), b"2")
    assert first != second
    assert sorted(os.listdir(tmp_path / "cwd")) == sorted([Path(first).name, Path(second).name])
    assert Path(first).read_bytes() == b"1" and Path(second).read_bytes() == b"2"
    assert Path(first).name.startswith("r.unsaved-") and first.endswith(".json")


def test_write_or_rescue_says_where(tmp_path, monkeypatch) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    (tmp_path / "file").write_bytes(b"x")
    target = tmp_path / "file" / "r.json"
    with pytest.raises(OutputError) as info:
        write_or_rescue(str(target), b"[1]", "3 detections")
    message = str(info.value)
    saved = message.rsplit(" to ", 1)[1]
    assert message == f"cannot write {target} (Not a directory); saved the 3 detections to {saved}"
    assert Path(saved).read_bytes() == b"[1]"
    assert Path(saved).parent == tmp_path / "cwd"
