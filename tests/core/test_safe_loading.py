"""Checkpoints are read with ``torch.load(weights_only=True)``, on a torch whose
``weights_only`` unpickler has no known bypass (issue 16, item 8)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

# The first releases that fix every known weights_only bypass: CVE-2025-32434 (2.6.0)
# and CVE-2026-24747 / GHSA-63cw-57p8-fm3p (2.10.0); torchvision 0.25 pairs with 2.10.
TORCH_FLOOR = (2, 10)
TORCHVISION_FLOOR = (0, 25)


def _floor(package: str) -> tuple[int, ...]:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(rf'^\s*"{package}>=([0-9.]+)",\s*$', text, re.MULTILINE)
    assert match, f"no {package}>= floor in pyproject.toml"
    return tuple(int(part) for part in match.group(1).split("."))


def test_the_torch_floor_excludes_every_known_weights_only_bypass() -> None:
    assert _floor("torch") >= TORCH_FLOOR
    assert _floor("torchvision") >= TORCHVISION_FLOOR


def _torch_load_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and ast.unparse(node.func.value) == "torch"
    ]


def test_every_torch_load_in_the_package_is_weights_only() -> None:
    sources = [*(REPO / "yolact").rglob("*.py"), REPO / "eval.py", REPO / "train.py"]
    found, unsafe = 0, []
    for path in sources:
        for call in _torch_load_calls(path):
            found += 1
            flag = next((k.value for k in call.keywords if k.arg == "weights_only"), None)
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                unsafe.append(f"{path.relative_to(REPO)}:{call.lineno}")
    assert found >= 1  # the checkpoint reader itself
    assert unsafe == []
