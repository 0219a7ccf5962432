"""Issue 17 item 3: yolact/core holds what every family shares at inference time.
Training-only code (ImageNet initialisation, checkpoint writing and management) is
the engine's; image input checks are core's, so core needs no I/O package."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "yolact" / "core"
# Training-only functions and the package that holds them.
TRAINING_ONLY = {
    "initialise": "yolact.engine.init_weights",
    "deformable_extras": "yolact.engine.init_weights",
    "atomic_save": "yolact.engine.checkpoint_names",
    "find_latest": "yolact.engine.checkpoint_names",
    "resume_path": "yolact.engine.checkpoint_names",
    "prune": "yolact.engine.checkpoint_names",
    "CheckpointName": "yolact.engine.checkpoint_names",
}


def _definitions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
    }


def _calls_torch_save(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.save":
            return True
    return False


def test_core_defines_no_training_only_code() -> None:
    found = [
        f"{path.relative_to(CORE.parent)}: {name}"
        for path in sorted(CORE.rglob("*.py"))
        for name in sorted(_definitions(path) & TRAINING_ONLY.keys())
    ]
    assert found == []


def test_core_writes_no_checkpoint() -> None:
    assert [p.name for p in sorted(CORE.rglob("*.py")) if _calls_torch_save(p)] == []


def test_training_code_lives_in_the_engine() -> None:
    for name, module in TRAINING_ONLY.items():
        assert hasattr(importlib.import_module(module), name), (module, name)


def test_image_checks_are_core_and_io_names_the_same_objects() -> None:
    core = importlib.import_module("yolact.core.images")
    io = importlib.import_module("yolact.io.images")
    for name in ("InputError", "to_bgr8", "to_bgr8_batch"):
        assert getattr(io, name) is getattr(core, name)
    assert core.to_bgr8_batch([]) == ([], False)
