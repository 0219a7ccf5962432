"""Bad source lists and scheduling flags of ``eval.py --video=A,B``/``--streams=FILE``:
one ``error:`` line each, before the model is built, nothing the user owns changed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_main, snapshot


def write_video(path: Path, frames: int = 2) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (32, 24))
    for i in range(frames):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two videos, an empty and a comments-only list, an old output; the cwd."""
    write_video(tmp_path / "a.avi")
    write_video(tmp_path / "b.avi")
    (tmp_path / "old.avi").write_bytes(b"an earlier run's video")
    (tmp_path / "empty.streams").write_bytes(b"")
    (tmp_path / "comments.streams").write_text("# a.avi\n\n   # b.avi\n")
    (tmp_path / "dup.streams").write_text("a.avi:old.avi\n# between\nb.avi:./x/../old.avi\n")
    monkeypatch.chdir(tmp_path)

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was built before the flags were checked")

    monkeypatch.setattr("yolact.cli.eval_cli.build_predictor", no_model)
    return tmp_path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--streams=none.streams"], "--streams: file not found: none.streams"),
        (["--streams=empty.streams"], "--streams: empty.streams lists no source (only blank or "
         "# lines)"),
        (["--streams=comments.streams"], "--streams: comments.streams lists no source (only "
         "blank or # lines)"),
        (["--streams=."], "--streams: expected a text file, got a folder: ."),
        (["--video=a.avi,,b.avi"], "--video: item 2 of 3 is empty in 'a.avi,,b.avi'"),
        (["--video=a.avi,b.avi,"], "--video: item 3 of 3 is empty in 'a.avi,b.avi,'"),
        (["--video=a.avi,:o.avi"], "--video: missing input before ':' in ':o.avi'"),
        (["--video=a.avi:old.avi,b.avi:old.avi"], "--video: OUT old.avi is given to two "
         "sources (the same file as old.avi); give each source its own OUT"),
        (["--video=a.avi:new.avi,b.avi:sub/../new.avi"], "--video: OUT sub/../new.avi is given "
         "to two sources (the same file as new.avi); give each source its own OUT"),
        (["--streams=dup.streams"], "--streams: OUT ./x/../old.avi is given to two sources "
         "(the same file as old.avi); give each source its own OUT"),
        (["--video=a.avi:o.avi,b.avi:a.avi"], "--video: OUT a.avi is the input a.avi itself "
         "(the same file); give another OUT"),
        (["--video=a.avi,b.avi:./a.avi"], "--video: OUT ./a.avi is the input a.avi itself "
         "(the same file); give another OUT"),
        (["--video=a.avi:o.avi,b.avi", "--output_json=o.avi"], "--output_json o.avi is also "
         "where the drawing o.avi goes; give another path"),
        (["--video=a.avi,b.avi", "--output_json=b.avi"], "--output_json b.avi is the input "
         "b.avi (the same file); give another path"),
        (["--video=a.avi", "--streams=dup.streams"], "give only one of --image, --images, "
         "--video, --streams"),
        (["--video=a.avi", "--detect_fps=-1"], "--detect_fps must be a positive number of "
         "frames per second, got -1.0"),
        (["--video=a.avi", "--detect_fps=0"], "--detect_fps must be a positive number of "
         "frames per second, got 0.0"),
        (["--video=a.avi", "--detect_fps=nan"], "--detect_fps must be a positive number of "
         "frames per second, got nan"),
        (["--video=a.avi", "--detect_fps=inf"], "--detect_fps must be a positive number of "
         "frames per second, got inf"),
        (["--video=a.avi", "--batch_wait_ms=-0.5"], "--batch_wait_ms must be a number of "
         "milliseconds >= 0, got -0.5"),
        (["--video=a.avi", "--batch_wait_ms=nan"], "--batch_wait_ms must be a number of "
         "milliseconds >= 0, got nan"),
        (["--video=a.avi", "--reconnect=-1"], "--reconnect must be a number of tries >= 0, "
         "got -1"),
        (["--image=a.png", "--detect_fps=5"], "--detect_fps goes with --video or --streams"),
        (["--images=in:out", "--reconnect=2"], "--reconnect goes with --video or --streams"),
        (["--image=a.png", "--batch_wait_ms=20"], "--batch_wait_ms goes with --video or "
         "--streams"),
    ],
)  # fmt: skip
def test_refused_in_one_line_before_the_model(folder, capsys, flags, message) -> None:
    before = snapshot(folder)
    code, out, err = run_main(capsys, "--trained_model=w.pth", *flags)
    assert code == 1
    assert err.strip() == f"error: {message}", err
    assert "Traceback" not in err and out == ""
    assert snapshot(folder) == before


def test_streams_and_video_lists_are_checked_alike(folder, capsys) -> None:
    """The same mistake reads the same from a --video list and a --streams file."""
    (folder / "in.streams").write_text("a.avi:o.avi\nb.avi:a.avi\n")
    _, _, from_file = run_main(capsys, "--trained_model=w.pth", "--streams=in.streams")
    _, _, from_list = run_main(capsys, "--trained_model=w.pth", "--video=a.avi:o.avi,b.avi:a.avi")
    assert from_file.replace("--streams", "--video") == from_list
