"""eval.py's dataset mode: result and metric files never replace the annotation file or
each other, bad places are refused before the evaluation, and a write that fails after
it keeps the results under another name, said in one line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO

import yolact.cli.eval_cli as cli
from yolact.data.synthetic import write_coco_dataset

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("synthetic")
    return write_coco_dataset(str(root), num_train=1, num_val=2, size=(64, 64))


def run(capsys, data: dict[str, str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}",
                     f"--val_ann={data['val_ann_file']}",
                     f"--val_images={data['val_image_dir']}", *argv])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int, out: str, err: str) -> str:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("flag", ["--bbox_det_file", "--mask_det_file", "--metrics_json"])
def test_output_onto_the_annotation_file_is_refused(data, tmp_path, capsys, flag):
    ann = Path(data["val_ann_file"])
    before = ann.read_bytes()
    link = tmp_path / "ann_link.json"
    os.symlink(ann, link)
    code, out, err = run(capsys, data, "--output_coco_json", f"--bbox_det_file={tmp_path}/b.json",
                         f"--mask_det_file={tmp_path}/m.json", f"{flag}={link}")  # fmt: skip
    line = one_error_line(code, out, err)
    assert line == (f"error: {flag} {link} is the annotation file {ann} (the same file); "
                    "give another path")  # fmt: skip
    assert "AP" not in out  # refused before the evaluation
    assert ann.read_bytes() == before


def test_two_outputs_onto_one_file_are_refused(data, tmp_path, capsys):
    code, out, err = run(capsys, data, "--output_coco_json", f"--bbox_det_file={tmp_path}/r.json",
                         f"--mask_det_file={tmp_path}/./r.json")  # fmt: skip
    line = one_error_line(code, out, err)
    assert line == (f"error: --mask_det_file {tmp_path}/./r.json is the file of --bbox_det_file "
                    "too; give another path")  # fmt: skip
    assert os.listdir(tmp_path) == []


def test_metrics_under_a_file_is_refused_before_the_evaluation(data, tmp_path, capsys):
    (tmp_path / "file").write_bytes(b"user data")
    code, out, err = run(capsys, data, f"--metrics_json={tmp_path}/file/m.json")
    line = one_error_line(code, out, err)
    assert line == (f"error: --metrics_json: cannot create folder {tmp_path}/file: "
                    f"{tmp_path}/file is not a folder")  # fmt: skip
    assert "AP" not in out
    assert (tmp_path / "file").read_bytes() == b"user data"


def test_folder_turned_into_a_file_after_the_evaluation_keeps_the_results(
    data, tmp_path, capsys, monkeypatch
):
    out_dir, cwd = tmp_path / "out", tmp_path / "cwd"
    out_dir.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    real = cli.evaluate_dataset

    def then_break_the_folder(*args, **kwargs):
        result = real(*args, **kwargs)
        shutil.rmtree(out_dir)
        out_dir.write_bytes(b"a file where the folder was")
        return result

    monkeypatch.setattr(cli, "evaluate_dataset", then_break_the_folder)
    bbox, mask, metrics = cwd / "b.json", out_dir / "m.json", out_dir / "metrics.json"
    code, out, err = run(capsys, data, "--output_coco_json", f"--bbox_det_file={bbox}",
                         f"--mask_det_file={mask}", f"--metrics_json={metrics}")  # fmt: skip
    line = one_error_line(code, out, err)
    assert f"wrote {bbox}" in out  # the file that could be written was
    saved = sorted(p for p in cwd.iterdir() if p != bbox)
    assert [p.name.split(".unsaved-")[0] for p in saved] == ["m", "metrics"]
    saved_mask = next(p for p in saved if p.name.startswith("m.unsaved-"))
    saved_metrics = next(p for p in saved if p.name.startswith("metrics.unsaved-"))
    assert line == (
        f"error: cannot write {mask} (Not a directory); saved the mask results to {saved_mask}; "
        f"cannot write {metrics} (Not a directory); saved the metrics to {saved_metrics}"
    )
    assert len(json.loads(saved_mask.read_text())) == len(json.loads(bbox.read_text())) > 0
    assert set(json.loads(saved_metrics.read_text())) >= {"bbox", "segm", "num_images"}
