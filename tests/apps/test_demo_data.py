"""The demo keeps its data apart from the README's walkthrough and uses only data it
wrote itself, with its own parameters (issue 16, item 11)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from conftest import snapshot

import yolact.demo as demo
from yolact.data.synthetic import main as synthetic


def image_sizes(folder: Path) -> set[tuple[int, int]]:
    return {cv2.imread(str(p)).shape[:2] for p in folder.iterdir()}


def test_the_walkthrough_and_the_demo_write_different_folders(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    walk = ["--out", "data/synthetic", "--train", "2", "--val", "3", "--varied"]
    walk += ["--sizes", "64", "96"]
    assert synthetic(walk) == 0  # the README's walkthrough, at a small size
    before = snapshot(tmp_path / "data" / "synthetic")
    paths = demo.prepare_dataset(demo.DATA_DIR, 0, 3, 48)
    assert snapshot(tmp_path / "data" / "synthetic") == before
    assert Path(paths["val_image_dir"]).resolve().parent != (tmp_path / "data" / "synthetic")
    assert image_sizes(Path(paths["val_image_dir"])) == {(48, 48)}


def test_data_the_demo_did_not_write_is_refused_in_one_line(tmp_path, capsys) -> None:
    """The walkthrough's data with the demo's val count: refused, not scored, untouched."""
    other = tmp_path / "synthetic"
    assert synthetic(["--out", str(other), "--train", "2", "--val", "3", "--varied"]) == 0
    before = snapshot(other)
    code = demo.main([f"--data_dir={other}", "--num_val=3", "--size=48", "--no_bar",
                      f"--out={tmp_path / 'out'}"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert err.splitlines() == [
        f"error: {other} holds data that the demo did not write (no {demo.MANIFEST}); "
        "give --data_dir a new or empty folder"
    ]
    assert snapshot(other) == before
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_a_data_dir_that_is_a_file_is_refused_in_one_line(tmp_path, capsys) -> None:
    blocker = tmp_path / "data"
    blocker.write_bytes(b"mine")
    code = demo.main([f"--data_dir={blocker}", "--no_bar", f"--out={tmp_path / 'out'}"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.splitlines() == [
        f"error: {blocker} is not a folder; give --data_dir a new or empty folder"
    ]
    assert blocker.read_bytes() == b"mine"


def test_the_demo_rewrites_its_own_data_written_with_other_parameters(tmp_path, capsys) -> None:
    root = tmp_path / "demo_data"
    demo.prepare_dataset(str(root), 0, 2, 48)
    assert image_sizes(root / "val") == {(48, 48)}
    manifest = json.loads((root / demo.MANIFEST).read_text())
    assert manifest["size"] == 48 and manifest["seed"] == 0 and manifest["num_val"] == 2
    demo.prepare_dataset(str(root), 0, 2, 64)  # another size: its own data, written again
    assert image_sizes(root / "val") == {(64, 64)}
    demo.prepare_dataset(str(root), 0, 2, 64)
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[1] for line in printed] == ["writing", "writing", "using"]


def test_a_half_written_dataset_is_not_taken_for_a_finished_one(tmp_path, monkeypatch) -> None:
    """The manifest says complete only once the data is: a run stopped while writing
    leaves it incomplete, and the next run writes the data again instead of scoring a
    partial set."""
    root = tmp_path / "demo_data"
    demo.prepare_dataset(str(root), 0, 2, 48)

    def stopped(*args, **kwargs):
        (root / "val" / "000001.png").write_bytes(b"partial")
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(demo, "write_coco_dataset", stopped)
        with pytest.raises(KeyboardInterrupt):
            demo.prepare_dataset(str(root), 0, 2, 64)
    assert json.loads((root / demo.MANIFEST).read_text())["complete"] is False
    demo.prepare_dataset(str(root), 0, 2, 64)
    assert image_sizes(root / "val") == {(64, 64)}
