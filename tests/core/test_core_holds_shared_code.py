"""Issue 17 item 3: yolact/core holds what every family shares at inference time.
Training-only code (ImageNet initialisation, checkpoint writing and management) is
the engine's; YOLACT-only ops are the YOLACT family's; image input checks are
core's, so core needs no I/O package."""

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
# Ops of the YOLACT family alone (prior box coding, prototype masks, Fast NMS).
YOLACT_ONLY = {
    "decode": "yolact.models.yolact.box_coding",
    "encode": "yolact.models.yolact.box_coding",
    "center_size": "yolact.models.yolact.box_coding",
    "assemble_masks": "yolact.models.yolact.mask_assembly",
    "crop_masks": "yolact.models.yolact.mask_assembly",
    "paste_masks": "yolact.models.yolact.mask_assembly",
    "fast_nms": "yolact.models.yolact.fast_nms",
    "cross_class_fast_nms": "yolact.models.yolact.fast_nms",
    "standard_nms": "yolact.models.yolact.fast_nms",
    "padded_fast_nms": "yolact.models.yolact.fast_nms",
    "padded_cross_class_fast_nms": "yolact.models.yolact.fast_nms",
    "padded_standard_nms": "yolact.models.yolact.fast_nms",
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


def test_core_defines_no_yolact_only_op() -> None:
    found = [
        f"{path.relative_to(CORE.parent)}: {name}"
        for path in sorted(CORE.rglob("*.py"))
        for name in sorted(_definitions(path) & YOLACT_ONLY.keys())
    ]
    assert found == []
    for name, module in YOLACT_ONLY.items():
        assert hasattr(importlib.import_module(module), name), (module, name)


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
