"""Issue 17 item 4: the wheel built from the project holds the library, not the
maintainer tools (they live in tools/ and run as ``python tools/X.py``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

TOOLS = ("original_bench", "original_code", "load_bench", "gpu_report")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The file names in a wheel built from a copy of the project (the build writes
    build/ and *.egg-info beside its sources, so not in the checkout)."""
    pytest.importorskip("setuptools", reason="the build backend is not installed")
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("yolact", "tools"):
        shutil.copytree(REPO / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md", "eval.py", "train.py"):
        shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (built,) = Path(out).glob("yolact-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_wheel_holds_the_library(wheel: Path, wheel_names: list[str]) -> None:
    for module in ("yolact/__init__.py", "yolact/cli/main.py", "yolact/export.py",
                   "yolact/slim.py", "yolact/demo.py", "yolact/bench/benchmark.py"):  # fmt: skip
        assert module in wheel_names
    (entry_points,) = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as z:
        text = z.read(entry_points).decode()
    assert text.split() == ["[console_scripts]", "yolact", "=", "yolact.cli.main:main"]


def test_wheel_holds_no_maintainer_tool(wheel_names: list[str]) -> None:
    found = [n for n in wheel_names if any(Path(n).stem == tool for tool in TOOLS)]
    assert found == []
    assert [n for n in wheel_names if n.startswith(("tools/", "tests/", "yolact/apps/"))] == []
