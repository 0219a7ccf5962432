"""Issue 16 item 2: eval.py never writes an output onto one of its inputs.

``--image IN:OUT``, ``--video SRC:OUT``, ``--images`` drawings and
``--output_json`` are refused in one line when they reach an input file by any
spelling of its path (relative, absolute, ``./``, ``..``, a symbolic or a hard
link), and the input's bytes stay as they were.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, snapshot

from yolact.cli.eval_cli import main

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


def photo(h: int = 72, w: int = 96) -> np.ndarray:
    img = np.full((h, w, 3), 60, np.uint8)
    cv2.circle(img, (40, 30), 15, (0, 200, 0), -1)
    return img


def write_video(path: Path, frames: int = 3) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (96, 72))
    for _ in range(frames):
        writer.write(photo())
    writer.release()
    assert path.stat().st_size > 0


def run_refused(capsys, *argv: str) -> str:
    """Run eval.py in process; assert exactly one error line, exit 1, no traceback."""
    code = main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}", *argv])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert "detections" not in out  # refused before any work
    return lines[0]


def spellings(tmp_path: Path, name: str) -> dict[str, str]:
    """Other spellings of ``tmp_path / name`` (the current folder is ``tmp_path``)."""
    (tmp_path / "sub").mkdir(exist_ok=True)
    os.symlink(tmp_path / name, tmp_path / f"link_{name}")
    os.link(tmp_path / name, tmp_path / f"hard_{name}")
    return {
        "same": name,
        "dot": f"./{name}",
        "absolute": str(tmp_path / name),
        "dotdot": f"sub/../{name}",
        "symlink": f"link_{name}",
        "hardlink": f"hard_{name}",
    }


SPELLINGS = ["same", "dot", "absolute", "dotdot", "symlink", "hardlink"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_image_drawn_onto_itself_is_refused(tmp_path, capsys, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    assert cv2.imwrite(str(tmp_path / "p.jpg"), photo())
    out = spellings(tmp_path, "p.jpg")[spelling]
    before = snapshot(tmp_path)
    line = run_refused(capsys, f"--image=p.jpg:{out}")
    assert line == (f"error: --image: OUT {out} is the input p.jpg itself (the same file); "
                    "give another OUT")  # fmt: skip
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_video_written_onto_itself_is_refused(tmp_path, capsys, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    write_video(tmp_path / "a.mp4")
    out = spellings(tmp_path, "a.mp4")[spelling]
    before = snapshot(tmp_path)
    line = run_refused(capsys, f"--video=a.mp4:{out}")
    assert line == (f"error: --video: OUT {out} is the input a.mp4 itself (the same file); "
                    "give another OUT")  # fmt: skip
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flag", ["image", "video"])
def test_output_json_onto_the_input_is_refused(tmp_path, capsys, monkeypatch, flag):
    monkeypatch.chdir(tmp_path)
    name = "p.jpg" if flag == "image" else "a.mp4"
    if flag == "image":
        assert cv2.imwrite(name, photo())
    else:
        write_video(tmp_path / name)
    os.link(name, "same_file.json")
    before = snapshot(tmp_path)
    for path in (name, f"./{name}", str(tmp_path / name), "same_file.json"):
        line = run_refused(capsys, f"--{flag}={name}", f"--output_json={path}")
        assert line == (f"error: --output_json {path} is the input {name} (the same file); "
                        "give another path")  # fmt: skip
    assert snapshot(tmp_path) == before


def test_output_json_onto_the_drawing_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cv2.imwrite("p.jpg", photo())
    line = run_refused(capsys, "--image=p.jpg:drawn.png", "--output_json=./drawn.png")
    assert line == ("error: --output_json ./drawn.png is also where the drawing drawn.png "
                    "goes; give another path")  # fmt: skip
    assert sorted(os.listdir(tmp_path)) == ["p.jpg"]


def test_images_drawing_onto_a_hard_linked_input_is_refused(tmp_path, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    dst.mkdir()
    assert cv2.imwrite(str(src / "a.png"), photo())
    assert cv2.imwrite(str(src / "b.jpg"), photo())
    os.link(src / "a.png", dst / "a.png")  # the drawing of a.png would go through the link
    before = snapshot(tmp_path)
    line = run_refused(capsys, f"--images={src}:{dst}")
    assert line == (f"error: --images: the drawing {dst / 'a.png'} would replace the input "
                    f"{src / 'a.png'} (the same file); give another OUT_DIR")  # fmt: skip
    assert snapshot(tmp_path) == before


def test_images_out_dir_linked_to_in_dir_is_refused(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    assert cv2.imwrite(str(src / "a.png"), photo())
    os.symlink(src, tmp_path / "out")
    before = snapshot(tmp_path)
    line = run_refused(capsys, f"--images={src}:{tmp_path / 'out'}")
    assert "--images: OUT_DIR must differ from IN_DIR" in line
    assert snapshot(tmp_path) == before


def test_output_json_onto_an_image_of_the_folder_is_refused(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    assert cv2.imwrite(str(src / "a.png"), photo())
    before = snapshot(tmp_path)
    js = f"{tmp_path}/in/../in/a.png"
    line = run_refused(capsys, f"--images={src}:{tmp_path / 'out'}", f"--output_json={js}")
    assert line == (f"error: --output_json {js} is the input {src / 'a.png'} (the same file); "
                    "give another path")  # fmt: skip
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "out").exists()


def test_image_with_another_out_is_still_drawn(tmp_path, capsys, monkeypatch):
    """The check refuses only the same file: a different OUT is written as before."""
    monkeypatch.chdir(tmp_path)
    assert cv2.imwrite("p.jpg", photo())
    os.mkdir("sub")
    before = Path("p.jpg").read_bytes()
    code = main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}",
                 "--image=./p.jpg:sub/../p_drawn.jpg"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert Path("p.jpg").read_bytes() == before
    assert cv2.imread("p_drawn.jpg").shape == (72, 96, 3)
    assert sorted(os.listdir(tmp_path)) == ["p.jpg", "p_drawn.jpg", "sub"]
