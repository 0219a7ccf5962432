"""Issue 16 items 10 and 11: what train.py prints. Off a terminal, plain progress lines
every --log_interval iterations instead of a bar's carriage returns; a loss legend and
a start-up summary; a resumed run stays in its checkpoint's folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO
from test_train import small_cfg
from train_run import HANG_S, child_env, tiny_set, train_args

from yolact.engine.checkpoint_names import find_latest
from yolact.engine.progress import LOSS_NAMES, Progress, loss_legend
from yolact.registry import read_checkpoint

LEGEND = (
    "losses: B box regression, C class confidence, M mask, S semantic segmentation, "
    "total their weighted sum"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_set(tmp_path_factory.mktemp("out"))


def test_piped_output_has_plain_lines_every_log_interval(tmp_path, data):
    args = train_args(data, f"--save_folder={tmp_path}", "--max_iter=5", "--log_interval=2",
                      "--num_workers=0")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, env=child_env(),
        capture_output=True, text=True, timeout=HANG_S,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stdout and "\r" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == LEGEND
    progress = [ln for ln in lines if ln.startswith("iteration ")]
    # Every 2nd iteration and the last; epochs of 2 iterations (8 images, batch 4).
    assert [ln.split("  ")[:2] for ln in progress] == [
        ["iteration 2/5", "epoch 0"], ["iteration 4/5", "epoch 1"], ["iteration 5/5", "epoch 2"]
    ]  # fmt: skip
    assert all(" B " in ln and " total " in ln and " lr " in ln for ln in progress)
    assert lines[-1] == f"finished at iteration 5; checkpoint: {tmp_path / 'yolact_tiny_2_5.pth'}"
    assert len(lines) == 5
    summary = [ln for ln in proc.stderr.splitlines() if ln.startswith("INFO: training ")]
    assert summary == [
        "INFO: training yolact_tiny: 8 images, 5 classes; device cpu; batch 4; lr 0.0005; "
        f"iterations 5; save folder {tmp_path}; 0 data workers"
    ]


def test_progress_on_a_terminal_is_a_bar(monkeypatch, capsys):
    class Tty:
        def __init__(self, stream):
            self.stream = stream

        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            return self.stream.write(text)

        def flush(self) -> None:
            self.stream.flush()

    monkeypatch.setattr(sys, "stdout", Tty(sys.stdout))
    monkeypatch.setattr(sys, "stderr", Tty(sys.stderr))
    progress = Progress(total=4, initial=0, interval=1)
    assert progress.bar is not None
    progress.close()
    assert Progress(total=4, initial=0, interval=1, bar=False).bar is None  # --no_bar


def test_loss_legend_names_every_printed_letter():
    assert loss_legend(["B", "C", "M", "S", "total"]) == LEGEND
    assert loss_legend(["B", "C", "M", "I", "total"]).endswith("I mask IoU, total their "
                                                               "weighted sum")  # fmt: skip
    assert loss_legend(["loss_classifier", "loss_mask", "total"]) is None
    docs = (REPO / "docs" / "training.md").read_text()
    for letter, name in LOSS_NAMES.items():
        assert f"| {letter} | {name}" in docs


def test_resumed_run_stays_in_its_checkpoints_folder(tmp_path, data, monkeypatch, capsys):
    from yolact.cli.train_cli import main

    monkeypatch.setattr("yolact.cli.train_cli.get_config", lambda name: small_cfg())
    monkeypatch.chdir(tmp_path)
    common = ["--config=yolact_tiny", "--num_workers=0", "--device=cpu", "--batch_size=4",
              "--no_bar", "--log_interval=1"]  # fmt: skip
    first = [f"--train_ann={data['train_ann_file']}", f"--train_images={data['train_image_dir']}"]
    assert main([*common, *first, "--save_folder=runs/walk", "--max_iter=2"]) == 0
    assert main([*common, "--resume=runs/walk/yolact_tiny_0_2.pth", "--max_iter=3"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["runs"]  # no weights/ beside it
    walk = tmp_path / "runs" / "walk"
    assert read_checkpoint(str(walk / "yolact_tiny_1_3.pth")).meta["iteration"] == 3
    rows = (walk / "yolact_tiny_train_log.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows] == ["iteration", "1", "2", "3"]
    # --resume=latest in that folder continues from there; --save_folder still wins.
    assert main([*common, "--resume=latest", "--save_folder=runs/walk", "--max_iter=4"]) == 0
    assert find_latest(str(walk), "yolact_tiny").endswith("yolact_tiny_1_4.pth")
    capsys.readouterr()
    resume = str(walk / "yolact_tiny_1_4.pth")
    assert main([*common, f"--resume={resume}", "--save_folder=other", "--max_iter=5"]) == 0
    assert os.listdir(tmp_path / "other") == ["yolact_tiny_2_5.pth", "yolact_tiny_train_log.csv"]


def test_log_interval_below_one_is_one_line(tmp_path, data, capsys):
    from yolact.cli.train_cli import main

    args = train_args(data, f"--save_folder={tmp_path}", "--max_iter=1", "--log_interval=0")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "error: --log_interval must be at least 1, got 0"
    assert "Traceback" not in err and os.listdir(tmp_path) == []


def test_startup_summary_names_the_validation_set(tmp_path, data, caplog, capsys):
    from test_train import datasets, opts

    from yolact.engine.trainer import Trainer

    train_set, val_set = datasets(data)
    o = opts(tmp_path, max_iter=1, validation_epoch=1, validation_size=3, progress=True)
    caplog.set_level("INFO", logger="yolact.train")
    Trainer(small_cfg().with_train(max_iter=1), o, train_set, val_set).run()
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("training")]
    assert summary == [
        "training yolact_tiny: 8 images, 5 classes, validation 3 images; device cpu; batch 4; "
        f"lr 0.002; iterations 1; save folder {tmp_path}; 0 data workers"
    ]
    assert capsys.readouterr().out.splitlines()[0] == LEGEND
