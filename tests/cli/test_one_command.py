"""Issue 17 item 5: one installed command, ``yolact``, whose subcommands are the
older entry points (eval.py, train.py, ``python -m yolact.export`` ...) unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO

from yolact.cli import main as cli

SUBCOMMANDS = (
    "eval", "train", "export", "slim", "demo", "benchmark", "synthetic", "plots", "predict",
)  # fmt: skip
DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


def run(*argv: str, cwd: str = str(REPO)) -> subprocess.CompletedProcess:
    """A command in a subprocess, without a display (nothing opens a window)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def test_pyproject_installs_the_command() -> None:
    tomllib = pytest.importorskip("tomllib")
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["scripts"] == {"yolact": "yolact.cli.main:main"}


def test_help_lists_every_subcommand() -> None:
    done = run("-m", "yolact.cli.main", "--help")
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == "usage: yolact <command> [arguments]"
    listed = [ln.split()[0] for ln in lines[lines.index("commands:") + 1 :] if ln.startswith("  ")]
    assert listed == list(SUBCOMMANDS)


def test_entry_function_help(capsys) -> None:
    assert cli.main(["--help"]) == 0
    assert capsys.readouterr().out == cli.usage()


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_help(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main([name, "--help"])
    out, err = capsys.readouterr()
    assert stop.value.code == 0 and err == ""
    assert out.startswith("usage: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [],
            "yolact: error: give a command (eval, train, export, slim, demo, benchmark, "
            "synthetic, plots, predict); see yolact --help\n",
        ),  # fmt: skip
        (
            ["serve"],
            "yolact: error: unknown command 'serve'; choose from eval, train, "
            "export, slim, demo, benchmark, synthetic, plots, predict\n",
        ),  # fmt: skip
    ],
)
def test_no_or_unknown_command_is_one_line(argv: list[str], message: str) -> None:
    done = run("-m", "yolact.cli.main", *argv)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)


@pytest.mark.parametrize(
    ("name", "module", "leading"),
    [
        ("eval", "yolact.cli.eval_cli", []),
        ("benchmark", "yolact.cli.eval_cli", ["--benchmark"]),
        ("train", "yolact.cli.train_cli", []),
        ("export", "yolact.export", []),
        ("slim", "yolact.slim", []),
        ("demo", "yolact.demo", []),
        ("synthetic", "yolact.data.synthetic", []),
        ("plots", "yolact.engine.plots", []),
        ("predict", "yolact.batch.predict", []),
    ],
)
def test_subcommand_passes_its_arguments_unchanged(
    name: str, module: str, leading: list[str], monkeypatch
) -> None:
    import importlib

    seen: list[list[str]] = []
    target = importlib.import_module(module)
    monkeypatch.setattr(target, "main", lambda argv=None: seen.append(list(argv)) or 7)
    assert cli.main([name, "--a=1", "b"]) == 7
    assert seen == [[*leading, "--a=1", "b"]]


def test_yolact_eval_is_eval_py(tmp_path) -> None:
    """The same image through ``eval.py`` and ``yolact eval``: the same bytes out."""
    rng = np.random.default_rng(0)
    image = np.full((96, 128, 3), 50, np.uint8)
    cv2.circle(image, (40, 40), 22, tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    cv2.rectangle(image, (70, 30), (120, 80), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), image)
    outputs = {}
    for name, argv in {
        "old": ["eval.py"],
        "new": ["-m", "yolact.cli.main", "eval"],
    }.items():
        js = tmp_path / f"{name}.json"
        done = run(
            *argv, f"--trained_model={DEMO}", f"--image={src}:{tmp_path / name}.png",
            f"--output_json={js}", "--cuda=False", "--no_bar",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs[name] = ((tmp_path / f"{name}.png").read_bytes(), json.loads(js.read_text()))
    assert outputs["new"] == outputs["old"]


def test_yolact_benchmark_runs_the_benchmark() -> None:
    done = run(
        "-m", "yolact.cli.main", "benchmark", f"--trained_model={DEMO}", "--cuda=False",
        "--max_images=2", "--benchmark_warmup=1", "--no_bar",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].split()[0] == "FPS"
