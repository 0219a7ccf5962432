"""Issue 16 item 3: ``--output_json`` holds what a run produced, and never loses it.

A run whose inputs all failed exits 1 and leaves an existing file as it was; a
run that processed images with no detection writes ``[]``. The place is checked
before any work. A write that fails after the work saves the detections under
another name (beside the path, in the current folder or the temporary folder)
and one line says where.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO

import yolact.cli.eval_cli as cli
import yolact.io.outputs as outputs

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
OLD = b'[{"kept": "the results of an earlier run"}]'


def photo(seed: int = 0) -> np.ndarray:
    img = np.full((72, 96, 3), 60, np.uint8)
    cv2.circle(img, (40 + seed, 30), 15, (0, 200, 0), -1)
    return img


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int, err: str) -> str:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def old_json(tmp_path: Path) -> Path:
    path = tmp_path / "res.json"
    path.write_bytes(OLD)
    return path


def test_missing_image_leaves_the_json_as_it_was(tmp_path, capsys, old_json):
    code, out, err = run(capsys, f"--image={tmp_path}/missing.png", f"--output_json={old_json}")
    assert one_error_line(code, err) == f"error: image not found: {tmp_path}/missing.png"
    assert old_json.read_bytes() == OLD
    assert sorted(os.listdir(tmp_path)) == ["res.json"]


def test_missing_video_leaves_the_json_as_it_was(tmp_path, capsys, old_json):
    code, _, err = run(capsys, f"--video={tmp_path}/missing.mp4", f"--output_json={old_json}")
    assert one_error_line(code, err) == f"error: video file not found: {tmp_path}/missing.mp4"
    assert old_json.read_bytes() == OLD


def test_folder_whose_images_all_fail_exits_1_and_writes_nothing(tmp_path, capsys, old_json):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(b"not a png")
    (src / "b.jpg").write_bytes(b"")
    code, out, err = run(capsys, f"--images={src}:{tmp_path}/out", f"--output_json={old_json}")
    assert code == 1
    lines = err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("error:")] == [
        f"error: none of the 2 images in {src} could be read"
    ]
    assert all(ln.startswith(("skipping:", "error:")) for ln in lines)
    assert "Traceback" not in err
    assert old_json.read_bytes() == OLD


def test_empty_folder_exits_1_and_writes_nothing(tmp_path, capsys, old_json):
    src = tmp_path / "in"
    src.mkdir()
    code, _, err = run(capsys, f"--images={src}:{tmp_path}/out", f"--output_json={old_json}")
    assert one_error_line(code, err).startswith(f"error: no images in {src} (looked for .jpg")
    assert old_json.read_bytes() == OLD


def test_processed_image_without_detections_writes_an_empty_list(tmp_path, capsys, old_json):
    cv2.imwrite(str(tmp_path / "p.png"), photo())
    code, out, err = run(capsys, f"--image={tmp_path}/p.png", f"--output_json={old_json}",
                         "--score_threshold=1.0")  # fmt: skip
    assert code == 0, err
    assert old_json.read_bytes() == b"[]"
    assert f"wrote 0 detections to {old_json}" in out


@pytest.mark.parametrize("place", ["folder", "under_a_file", "folder_under_a_file"])
def test_unusable_place_is_refused_before_any_work(tmp_path, capsys, place):
    cv2.imwrite(str(tmp_path / "p.png"), photo())
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_bytes(b"user data")
    path = {"folder": tmp_path / "dir", "under_a_file": tmp_path / "file" / "res.json",
            "folder_under_a_file": tmp_path / "file" / "sub" / "res.json"}[place]  # fmt: skip
    code, out, err = run(capsys, f"--image={tmp_path}/p.png", f"--output_json={path}")
    line = one_error_line(code, err)
    expected = {
        "folder": f"error: --output_json: {path} is a folder, expected a file name",
        "under_a_file": f"error: --output_json: cannot create folder {path.parent}: "
        f"{tmp_path / 'file'} is not a folder",
        "folder_under_a_file": f"error: --output_json: cannot create folder {path.parent}: "
        f"{tmp_path / 'file'} is not a folder",
    }[place]
    assert line == expected
    assert "detections" not in out  # nothing was processed
    assert (tmp_path / "file").read_bytes() == b"user data"
    assert sorted(os.listdir(tmp_path)) == ["dir", "file", "p.png"]
    assert os.listdir(tmp_path / "dir") == []


def test_missing_folder_is_created(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "p.png"), photo())
    path = tmp_path / "new" / "deeper" / "res.json"
    code, out, err = run(capsys, f"--image={tmp_path}/p.png", f"--output_json={path}")
    assert code == 0, err
    assert isinstance(json.loads(path.read_text()), list)


def reference_json(tmp_path: Path, capsys, image: Path) -> bytes:
    """The bytes a run that can write produces for ``image``."""
    ref = tmp_path / "reference.json"
    code, _, err = run(capsys, f"--image={image}", f"--output_json={ref}")
    assert code == 0, err
    data = ref.read_bytes()
    ref.unlink()
    assert len(json.loads(data)) > 0
    return data


def after_the_work(monkeypatch, *changes) -> None:
    """Run ``changes`` once the image is processed (after the up-front check)."""
    real = cli.eval_image

    def then_change(*args, **kwargs):
        real(*args, **kwargs)
        for change in changes:
            change()

    monkeypatch.setattr(cli, "eval_image", then_change)


def file_instead_of(folder: Path):
    def change() -> None:
        shutil.rmtree(folder)
        folder.write_bytes(b"a file where the folder was")

    return change


def test_folder_removed_after_the_work_is_made_again(tmp_path, capsys, monkeypatch):
    image = tmp_path / "p.png"
    cv2.imwrite(str(image), photo())
    expected = reference_json(tmp_path, capsys, image)
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    after_the_work(monkeypatch, lambda: shutil.rmtree(out_dir))
    code, out, err = run(capsys, f"--image={image}", f"--output_json={out_dir}/res.json")
    assert code == 0, err
    assert (out_dir / "res.json").read_bytes() == expected


def test_folder_turned_into_a_file_saves_detections_in_the_current_folder(
    tmp_path, capsys, monkeypatch
):
    image = tmp_path / "p.png"
    cv2.imwrite(str(image), photo())
    expected = reference_json(tmp_path, capsys, image)
    out_dir, cwd = tmp_path / "results", tmp_path / "cwd"
    out_dir.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    after_the_work(monkeypatch, file_instead_of(out_dir))
    code, out, err = run(capsys, f"--image={image}", f"--output_json={out_dir}/res.json")
    line = one_error_line(code, err)
    (saved,) = list(cwd.iterdir())
    assert saved.name.startswith("res.unsaved-") and saved.suffix == ".json"
    n = len(json.loads(expected))
    assert line == (f"error: cannot write {out_dir}/res.json (Not a directory); "
                    f"saved the {n} detections of 1 images to {saved}")  # fmt: skip
    assert saved.read_bytes() == expected
    assert out_dir.read_bytes() == b"a file where the folder was"


def test_current_folder_gone_too_saves_in_the_temporary_folder(tmp_path, capsys, monkeypatch):
    image = tmp_path / "p.png"
    cv2.imwrite(str(image), photo())
    expected = reference_json(tmp_path, capsys, image)
    out_dir, cwd, tmp = tmp_path / "results", tmp_path / "cwd", tmp_path / "tmp"
    for d in (out_dir, cwd, tmp):
        d.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    after_the_work(monkeypatch, file_instead_of(out_dir), lambda: shutil.rmtree(cwd))
    code, out, err = run(capsys, f"--image={image}", f"--output_json={out_dir}/res.json")
    line = one_error_line(code, err)
    (saved,) = list(tmp.iterdir())
    assert line.endswith(f"saved the {len(json.loads(expected))} detections of 1 images to {saved}")
    assert saved.read_bytes() == expected


def test_disk_full_keeps_the_old_file_and_saves_beside_it(tmp_path, capsys, monkeypatch, old_json):
    image = tmp_path / "p.png"
    cv2.imwrite(str(image), photo())
    expected = reference_json(tmp_path, capsys, image)

    def disk_full(path: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs, "atomic_write", disk_full)
    code, out, err = run(capsys, f"--image={image}", f"--output_json={old_json}")
    line = one_error_line(code, err)
    assert old_json.read_bytes() == OLD
    (saved,) = [p for p in tmp_path.iterdir() if p.name.startswith("res.unsaved-")]
    assert line == (f"error: cannot write {old_json} (No space left on device); saved the "
                    f"{len(json.loads(expected))} detections of 1 images to {saved}")  # fmt: skip
    assert saved.read_bytes() == expected


def test_images_folder_with_some_failures_writes_what_was_read(tmp_path, capsys, old_json):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), photo())
    (src / "b.png").write_bytes(b"broken")
    code, out, err = run(capsys, f"--images={src}:{tmp_path}/out", f"--output_json={old_json}")
    assert code == 0, err
    results = json.loads(old_json.read_text())
    assert results and {r["file_name"] for r in results} == {"a.png"}
