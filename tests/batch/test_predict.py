"""Issue 20 item 3: ``yolact predict`` writes one JSON line per image, equal to
``eval.py --output_json``; a second run resumes; N shards merged equal one run."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import cv2
import pytest
from conftest import REPO, demo_scene, one_line, run_main

from yolact.batch import jsonl, predict
from yolact.batch.jsonl import read_records
from yolact.batch.records import to_coco_results

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
N_IMAGES = 5


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = predict.main([f"--trained_model={WEIGHTS}", "--device=cpu", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(N_IMAGES):
        cv2.imwrite(str(folder / f"scene_{i}.png"), demo_scene(i))
    return folder


@pytest.fixture(scope="module")
def one_run(images, tmp_path_factory) -> bytes:
    """The output of one run over every image, one image a batch."""
    out = tmp_path_factory.mktemp("one") / "all.jsonl"
    assert predict.main([f"--trained_model={WEIGHTS}", "--device=cpu", f"--source={images}",
                         f"--out={out}", "--batch_size=1"]) == 0  # fmt: skip
    return out.read_bytes()


def test_records_equal_eval_output_json(images, tmp_path, capsys):
    code, _, err = run_main(capsys, f"--trained_model={WEIGHTS}",
                            f"--images={images}:{tmp_path / 'drawn'}",
                            f"--output_json={tmp_path / 'eval.json'}")  # fmt: skip
    assert code == 0, err
    out = tmp_path / "p.jsonl"
    code, stdout, err = run(capsys, f"--source={images}/*.png", f"--out={out}", "--batch_size=1")
    assert code == 0 and err == "", err
    assert stdout == (f"wrote {N_IMAGES} images ({len(to_coco_results(read_records(str(out))))} "
                      f"detections) to {out}; 0 already there, 0 unreadable skipped, "
                      f"{N_IMAGES} of {N_IMAGES} images in this shard\n")  # fmt: skip
    records = read_records(str(out))
    assert [r["file_name"] for r in records] == [f"scene_{i}.png" for i in range(N_IMAGES)]
    assert [r["image_id"] for r in records] == list(range(N_IMAGES))
    assert all((r["height"], r["width"]) == (120, 160) for r in records)
    expected = json.loads((tmp_path / "eval.json").read_text())
    assert len(expected) > N_IMAGES  # the model finds objects in these scenes
    # Exactly: one image a batch is what eval.py's --images runs.
    assert to_coco_results(records) == expected


def test_two_shards_merged_equal_one_run(images, one_run, tmp_path, capsys):
    lines = []
    for i in range(2):
        out = tmp_path / f"part{i}.jsonl"
        code, stdout, err = run(capsys, f"--source={images}", f"--out={out}",
                                f"--shard={i}/2", "--batch_size=1")  # fmt: skip
        assert code == 0 and err == "", err
        assert stdout.startswith(f"shard {i}/2: wrote ")
        lines += out.read_bytes().splitlines(keepends=True)
    assert sorted(lines) == sorted(one_run.splitlines(keepends=True))
    assert len(lines) == N_IMAGES


def test_second_run_skips_what_is_done(images, one_run, tmp_path, capsys):
    out = tmp_path / "all.jsonl"
    out.write_bytes(one_run)
    code, stdout, err = run(capsys, f"--source={images}", f"--out={out}")
    assert code == 0 and err == ""
    assert stdout.startswith(f"wrote 0 images (0 detections) to {out}; {N_IMAGES} already there")
    assert out.read_bytes() == one_run


def test_unfinished_last_line_is_dropped_by_a_copy_and_the_run_resumes(
    images, one_run, tmp_path, capsys
):
    lines = one_run.splitlines(keepends=True)
    out = tmp_path / "all.jsonl"
    cut = lines[1][: len(lines[1]) // 2]  # a line cut by a crash: no newline
    out.write_bytes(lines[0] + cut)
    inode = out.stat().st_ino
    code, stdout, err = run(capsys, f"--source={images}", f"--out={out}", "--batch_size=1")
    assert code == 0
    assert one_line(err) == (f"note: dropped the unfinished last line of {out} ({len(cut)} "
                             "bytes) left by an interrupted run")  # fmt: skip
    assert "1 already there" in stdout
    assert out.read_bytes() == one_run
    assert out.stat().st_ino != inode  # the kept part was written beside and moved over
    assert os.listdir(tmp_path) == ["all.jsonl"]


def test_sigterm_keeps_complete_lines_and_a_rerun_finishes(
    images, one_run, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "all.jsonl"
    write = jsonl.LineWriter.write

    def write_then_terminate(self, line: str) -> None:
        write(self, line)
        if self.lines == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(jsonl.LineWriter, "write", write_then_terminate)
    code, _, err = run(capsys, f"--source={images}", f"--out={out}", "--batch_size=1")
    assert code == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1].startswith("stopped by SIGTERM; kept ")
    kept = out.read_bytes()
    assert kept.endswith(b"\n") and one_run.startswith(kept)
    assert 1 <= len(kept.splitlines()) < N_IMAGES
    monkeypatch.setattr(jsonl.LineWriter, "write", write)
    code, _, err = run(capsys, f"--source={images}", f"--out={out}", "--batch_size=1")
    assert code == 0 and err == ""
    assert out.read_bytes() == one_run


def test_unreadable_image_is_skipped_with_a_line_and_counted(images, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("scene_0.png", "scene_1.png"):
        (src / name).write_bytes((images / name).read_bytes())
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out.jsonl"
    code, stdout, err = run(capsys, f"--source={src}", f"--out={out}")
    assert code == 0
    why = "cannot decode image (corrupt or not an image)"
    assert one_line(err) == f"skipping: {why}: {src}/broken.png"
    assert "wrote 2 images" in stdout and "1 unreadable skipped" in stdout
    assert [r["file_name"] for r in read_records(str(out))] == ["scene_0.png", "scene_1.png"]
    assert [r["image_id"] for r in read_records(str(out))] == [1, 2]  # broken.png is 0


def test_list_file_and_coco_json_sources(images, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two images, one twice\n{images}/scene_3.png\n\n"
                       f"{os.path.relpath(images / 'scene_1.png', tmp_path)}\n"
                       f"{images}/scene_3.png\n")  # fmt: skip
    out = tmp_path / "list.jsonl"
    assert run(capsys, f"--source={listing}", f"--out={out}")[0] == 0
    records = read_records(str(out))
    assert [(r["image_id"], r["file_name"]) for r in records] == [(0, "scene_1.png"),
                                                                  (1, "scene_3.png")]  # fmt: skip
    coco = tmp_path / "ann.json"
    coco.write_text(json.dumps({"images": [{"id": 42, "file_name": "scene_2.png"},
                                           {"id": 7, "file_name": "scene_4.png"}]}))  # fmt: skip
    out = tmp_path / "coco.jsonl"
    assert run(capsys, f"--source={coco}", f"--image_dir={images}", f"--out={out}")[0] == 0
    records = read_records(str(out))
    assert [(r["image_id"], r["file_name"], r["path"]) for r in records] == [
        (7, "scene_4.png", f"{images}/scene_4.png"), (42, "scene_2.png", f"{images}/scene_2.png")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard=2/2"], "--shard must be i/N with 0 <= i < N (like 0/4), got '2/2'"),
        (["--shard=a/b"], "--shard must be i/N with 0 <= i < N (like 0/4), got 'a/b'"),
        (["--shard=1"], "--shard must be i/N with 0 <= i < N (like 0/4), got '1'"),
        (["--batch_size=0"], "--batch_size must be at least 1, got 0"),
        (["--device=tpu"], "unknown device 'tpu'"),
    ],
)
def test_bad_flags_are_one_line(images, tmp_path, capsys, args, message):
    code, _, err = run(capsys, f"--source={images}", f"--out={tmp_path / 'o.jsonl'}", *args)
    assert code == 1 and one_line(err) == f"error: {message}"
    assert os.listdir(tmp_path) == []


def test_no_images_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, f"--source={tmp_path}/*.jpg", f"--out={tmp_path / 'o.jsonl'}")
    assert code == 1 and one_line(err).startswith(f"error: no images in {tmp_path}/*.jpg (looked")
    assert os.listdir(tmp_path) == []


def test_out_onto_an_input_or_a_foreign_file_changes_nothing(images, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    target = images / "scene_2.png"
    code, _, err = run(capsys, f"--source={images}", f"--out={target}")
    assert code == 1
    assert one_line(err) == (f"error: --out {target} is the input {target} (the same file); "
                             "give another --out")  # fmt: skip
    foreign = tmp_path / "notes.txt"
    foreign.write_bytes(b"my notes\n")
    code, _, err = run(capsys, f"--source={images}", f"--out={foreign}")
    assert code == 1
    assert one_line(err) == (
        f"error: --out {foreign} is not the output of a predict run "
        "(line 1 is not a record with a 'path'); give another --out"
    )
    assert foreign.read_bytes() == b"my notes\n"
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before


def test_an_exported_model_runs_sharded_then_resumed_into_one_file(
    images, exported, tmp_path, capsys
):
    """An .onnx export (fixed batch 1, run in chunks) like a checkpoint: one shard,
    then the whole list into the same file, holds the lines of one run."""
    onnx_file = exported["onnx"]
    one, mixed = tmp_path / "one.jsonl", tmp_path / "mixed.jsonl"
    argv = [f"--trained_model={onnx_file}", "--device=cpu", f"--source={images}", "--batch_size=1"]
    assert predict.main([*argv, f"--out={one}"]) == 0
    assert predict.main([*argv, f"--out={mixed}", "--shard=1/3"]) == 0
    first = len(mixed.read_bytes().splitlines())
    assert predict.main([*argv, f"--out={mixed}"]) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    assert out.startswith(f"wrote {N_IMAGES - first} images") and f"{first} already" in out
    assert sorted(mixed.read_bytes().splitlines()) == sorted(one.read_bytes().splitlines())
    assert len(read_records(str(one))) == N_IMAGES


def test_score_threshold_keeps_the_detections_above_it(images, one_run, tmp_path, capsys):
    out = tmp_path / "high.jsonl"
    code, _, err = run(capsys, f"--source={images}", f"--out={out}", "--batch_size=1",
                       "--score_threshold=0.5")  # fmt: skip
    assert code == 0 and err == ""
    full = [json.loads(line) for line in one_run.splitlines()]
    for r in full:
        r["detections"] = [d for d in r["detections"] if d["score"] > 0.5]
    assert read_records(str(out)) == full
    assert 0 < sum(len(r["detections"]) for r in full) < len(to_coco_results(
        json.loads(line) for line in one_run.splitlines()))  # fmt: skip
