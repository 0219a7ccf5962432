"""Issue 17 item 4: the maintainer tools run as scripts from the repository root,
``python tools/X.py``, importing the ``yolact`` package and their sibling tools."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.parametrize("tool", ["original_bench", "load_bench", "gpu_report"])
def test_tool_runs_as_a_script(tool: str) -> None:
    done = subprocess.run(
        [sys.executable, f"tools/{tool}.py", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"usage: python tools/{tool}.py ")


def test_the_tools_are_not_in_the_package() -> None:
    assert not (REPO / "yolact" / "apps").exists()
    for tool in ("original_bench", "original_code", "load_bench", "gpu_report"):
        assert (REPO / "tools" / f"{tool}.py").is_file()
        assert list((REPO / "yolact").rglob(f"{tool}.py")) == []
