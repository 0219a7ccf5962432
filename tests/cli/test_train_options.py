"""train.py's flags as a typed value: TrainRunOptions mirrors the parser, and run_train
does from Python what the command line does."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from yolact.cli.train_cli import TrainRunOptions, build_parser, main, run_train
from yolact.core.config import TrainConfig
from yolact.data.synthetic import SYNTHETIC_CLASSES, write_coco_dataset
from yolact.engine.trainer import TrainingError, TrainOptions
from yolact.registry import get_config, read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def small_cfg():
    """A 96 px model small enough for a few CPU iterations."""
    return get_config("yolact_tiny").replace(
        class_names=SYNTHETIC_CLASSES, max_size=96, fpn_channels=32, proto_channels=32,
        head_channels=32, num_prototypes=8, scales=((8,), (16,), (32,), (64,), (96,)),
        train=TrainConfig(lr=2e-3, warmup_until=2, warmup_init=1e-3, lr_steps=(100,),
                          max_iter=2, batch_size=4),
    )  # fmt: skip


def test_options_have_every_flag_with_its_default():
    defaults = vars(build_parser().parse_args([]))
    defaults["overrides"] = tuple(defaults["overrides"])
    assert {f.name: f.default for f in dataclasses.fields(TrainRunOptions)} == defaults


def test_from_args_and_the_engine_settings():
    argv = ["--batch_size=4", "--lr_steps=5,9", "--cuda=False", "--no_bar", "--no_autoscale",
            "--resume=runs/a/yolact_tiny_3_100.pth", "--set", "max_size=96", "--set",
            "train.lr=0.1"]  # fmt: skip
    options = TrainRunOptions.parse(argv)
    assert options == TrainRunOptions.from_args(build_parser().parse_args(argv))
    assert options.overrides == ("max_size=96", "train.lr=0.1")
    assert options.lr_steps == (5, 9) and options.autoscale is False
    engine = options.engine_options()
    assert isinstance(engine, TrainOptions)
    assert (engine.device, engine.bar, engine.save_folder) == ("cpu", False, "runs/a")
    assert (engine.batch_size, engine.lr_steps, engine.autoscale) == (4, (5, 9), False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seed = 1  # type: ignore[misc]


def test_run_train_trains_what_the_command_line_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("yolact.cli.train_cli.get_config", lambda name: small_cfg())
    paths = write_coco_dataset(str(tmp_path / "syn"), num_train=8, num_val=4, size=(96, 96),
                               seed=1)  # fmt: skip
    flags = dict(config="yolact_tiny", train_ann=paths["train_ann_file"],
                 train_images=paths["train_image_dir"], batch_size=4, num_workers=0,
                 validation_epoch=-1, no_bar=True, device="cpu")  # fmt: skip
    argv = [f"--{k}={v}" for k, v in flags.items() if not isinstance(v, bool)]
    assert main([*argv, "--no_bar", f"--save_folder={tmp_path / 'cli'}"]) == 0
    capsys.readouterr()
    result = run_train(TrainRunOptions(**flags, save_folder=str(tmp_path / "api")))
    assert (result.iteration, result.interrupted) == (2, False)
    by_cli = read_checkpoint(str(tmp_path / "cli" / "yolact_tiny_0_2.pth")).state_dict
    by_api = read_checkpoint(str(tmp_path / "api" / "yolact_tiny_0_2.pth")).state_dict
    assert by_cli.keys() == by_api.keys()
    assert all(torch.equal(by_cli[k], by_api[k]) for k in by_cli)


def test_bad_options_raise_what_the_command_line_prints(capsys):
    with pytest.raises(TrainingError, match="^--batch_size must be at least 1$"):
        run_train(TrainRunOptions(batch_size=0, train_ann="a.json", train_images="img"))
    assert main(["--batch_size=0"]) == 1
    assert capsys.readouterr().err == "error: --batch_size must be at least 1\n"
