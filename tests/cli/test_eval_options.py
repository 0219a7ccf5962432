"""eval.py's flags as a typed value: EvalOptions mirrors the parser, and run_eval does
from Python what the command line does."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolact.cli.eval_args import EvalOptions, build_parser, parse_args
from yolact.cli.eval_cli import main, run_eval

WEIGHTS = str(Path(__file__).resolve().parents[2] / "weights" / "yolact_tiny_synthetic.pth")


def test_options_have_every_flag_with_its_default():
    defaults = vars(build_parser().parse_args([]))
    assert {f.name: f.default for f in dataclasses.fields(EvalOptions)} == defaults


def test_from_args_keeps_every_value_and_is_frozen():
    argv = ["--trained_model=w.pth", "--top_k=3", "--display_masks=False", "--no_crop",
            "--video=0:o.mp4", "--video_multiframe=4", "--half"]  # fmt: skip
    options = EvalOptions.from_args(parse_args(argv))
    assert options == EvalOptions.parse(argv)
    assert (options.top_k, options.display_masks, options.crop, options.video) == (
        3, False, False, "0:o.mp4",
    )  # fmt: skip
    assert (options.video_multiframe, options.half) == (4, True)
    assert options.to_args() == parse_args(argv)
    assert isinstance(options.to_args(), argparse.Namespace)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.top_k = 1  # type: ignore[misc]


def test_run_eval_writes_what_the_command_line_writes(tmp_path, capsys):
    image = np.full((72, 96, 3), 60, np.uint8)
    cv2.circle(image, (40, 30), 15, (0, 200, 0), -1)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    by_cli, by_api = tmp_path / "cli.png", tmp_path / "api.png"
    argv = ["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}"]
    assert main([*argv, f"--image={tmp_path / 'in.png'}:{by_cli}"]) == 0
    cli_out = capsys.readouterr().out
    options = EvalOptions(trained_model=WEIGHTS, cuda=False, no_bar=True,
                          image=f"{tmp_path / 'in.png'}:{by_api}")  # fmt: skip
    assert run_eval(options) == 0
    api_out = capsys.readouterr().out
    assert by_api.read_bytes() == by_cli.read_bytes()
    assert api_out.replace(str(by_api), "OUT") == cli_out.replace(str(by_cli), "OUT")
