"""Drawing and video outputs that cannot be written are refused in one line before any
work; the issue's own command, run as a user runs it, leaves the photo as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, snapshot

from yolact.cli.eval_cli import main

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


def photo() -> np.ndarray:
    img = np.full((72, 96, 3), 60, np.uint8)
    cv2.circle(img, (40, 30), 15, (0, 200, 0), -1)
    return img


def write_video(path: Path) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (96, 72))
    for _ in range(2):
        writer.write(photo())
    writer.release()


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    cv2.imwrite(str(tmp_path / "p.png"), photo())
    write_video(tmp_path / "a.mp4")
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "b.png"), photo())
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_bytes(b"user data")
    return tmp_path


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--image=p.png:out.xyz", "--image: cannot write images of type '.xyz' (out.xyz); "
         "use .png or .jpg"),
        ("--image=p.png:dir", "--image OUT: dir is a folder, expected a file name"),
        ("--image=p.png:file/o.png", "--image OUT: cannot create folder {t}/file: {t}/file is "
         "not a folder"),
        ("--video=a.mp4:dir", "--video OUT: dir is a folder, expected a file name"),
        ("--video=a.mp4:out.xyz", "--video: unsupported video extension '.xyz' for out.xyz "
         "(use .mp4, .m4v, .mov, .mkv, .avi)"),
        ("--video=a.mp4:file/o.mp4", "--video OUT: cannot create folder {t}/file: {t}/file is "
         "not a folder"),
        ("--images=in:file", "--images: OUT_DIR file is a file, expected a folder"),
        ("--images=in:file/out", "--images OUT_DIR: cannot create folder {t}/file/out: {t}/file "
         "is not a folder"),
    ],
)  # fmt: skip
def test_unusable_output_is_refused_before_any_work(inputs, capsys, monkeypatch, flag, message):
    monkeypatch.chdir(inputs)
    before = snapshot(inputs)
    code = main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}", flag])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [f"error: {message.format(t=inputs)}"]
    assert "detections" not in out and "processed" not in out
    assert snapshot(inputs) == before
    assert sorted(os.listdir(inputs)) == ["a.mp4", "dir", "file", "in", "p.png"]


def test_the_issue_command_leaves_the_photo(tmp_path):
    """``python eval.py --image=p.jpg:p.jpg`` in a subprocess, as a user types it."""
    cv2.imwrite(str(tmp_path / "p.jpg"), photo())
    before = (tmp_path / "p.jpg").read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "eval.py"), f"--trained_model={WEIGHTS}",
         "--image=p.jpg:p.jpg", "--cuda=False"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: --image: OUT p.jpg is the input p.jpg itself (the same file); give another OUT"
    ]
    assert proc.stdout == ""
    assert (tmp_path / "p.jpg").read_bytes() == before
    assert os.listdir(tmp_path) == ["p.jpg"]
