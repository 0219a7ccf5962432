"""The harness that times this project beside the original YOLACT code, on a small fake
"original" checkout written here (same module layout and entry points, CUDA calls at
import), so no download is needed."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

import yolact

if str(REPO / "tools") not in sys.path:  # the tools are scripts: `python tools/X.py`
    sys.path.insert(0, str(REPO / "tools"))

import original_bench as ob  # noqa: E402
import original_code as oc  # noqa: E402

FAKE = {
    "data/__init__.py": "from .config import *\n",
    "data/config.py": """
        class Config:
            def __init__(self, **kw):
                self.__dict__.update(kw)

            def replace(self, other):
                self.__dict__.update(other.__dict__)

        yolact_tiny_config = Config(name="yolact_tiny", rescore_bbox=False)
        cfg = Config(name=None, rescore_bbox=False)

        def set_cfg(name):
            cfg.replace(eval(name))
    """,
    "utils/__init__.py": "",
    "utils/augmentations.py": """
        import torch

        class FastBaseTransform(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.mean = torch.zeros(3).float().cuda()[None, :, None, None]

            def forward(self, img):
                return img.permute(0, 3, 1, 2) - self.mean
    """,
    "layers/__init__.py": "",
    "layers/output_utils.py": """
        import torch
        from data import cfg

        def postprocess(preds, w, h, crop_masks=True, score_threshold=0):
            assert cfg.rescore_bbox and crop_masks
            masks = torch.zeros(3, h, w)
            masks[1, 2:6, 3:9] = 1
            return preds["classes"], preds["scores"], preds["boxes"], masks
    """,
    "yolact.py": """
        import torch
        from data.config import cfg

        torch.cuda.current_device()
        assert torch.zeros(1).cuda().device.type == "cpu"

        class Detect:
            use_fast_nms = False
            use_cross_class_nms = True

        class Yolact(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.detect = Detect()
                self.keys = []

            def load_weights(self, path):
                self.keys = sorted(torch.load(path))

            def forward(self, x):
                return {
                    "classes": torch.tensor([2, 0, 1]),
                    "scores": torch.tensor([0.2, 0.9, 0.5]),
                    "boxes": torch.tensor([[1, 1, 5, 5], [3, 2, 9, 6], [0, 0, 4, 4]]),
                }
    """,
}


def write_fake_original(root: Path, files: dict[str, str] = FAKE) -> str:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return str(root)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("w") / "yolact_tiny_0_0.pth")
    return oc.write_original_weights("yolact_tiny", path)


def test_original_loads_on_the_cpu_and_leaves_no_trace(tmp_path, tiny_weights, monkeypatch):
    """Its CUDA calls run as no-ops while it loads; afterwards torch is unpatched, its
    modules are gone and a module it displaced is back; the weights are in its layout."""
    repo = write_fake_original(tmp_path)
    other = types.ModuleType("data")
    monkeypatch.setitem(sys.modules, "data", other)
    current_device, tensor_cuda = torch.cuda.current_device, torch.Tensor.cuda
    code = oc.load_original(repo, "yolact_tiny", tiny_weights)
    assert torch.cuda.current_device is current_device and torch.Tensor.cuda is tensor_cuda
    assert sys.modules["data"] is other and sys.modules["yolact"] is yolact
    assert not [m for m in sys.modules if m.startswith(("layers", "utils.aug", "_original"))]
    assert {"data.config", "layers.output_utils", oc.ORIGINAL_MODEL_MODULE} <= set(code.modules)
    assert code.net.detect.use_fast_nms and not code.net.detect.use_cross_class_nms
    assert any(k.startswith("proto_net.") for k in code.net.keys)
    assert "prediction_layers.0.conf_layer.weight" in code.net.keys
    assert code.cfg.mask_proto_debug is False


def test_random_weights_give_finite_distinct_scores(tiny_weights):
    """BatchNorm statistics calibrated: the random model's scores are finite and not all tied."""
    from yolact.registry import load_predictor

    predictor = load_predictor(tiny_weights, config="yolact_tiny", device="cpu", top_k=5)
    det = predictor(np.full((120, 160, 3), 90, np.uint8))
    assert torch.isfinite(det.boxes).all() and torch.isfinite(det.scores).all()
    assert len(det) == 5 and len(set(det.scores.tolist())) > 1


def test_original_path_sorts_keeps_top_k_and_restores_its_config(tmp_path, tiny_weights):
    code = oc.load_original(write_fake_original(tmp_path), "yolact_tiny", tiny_weights)
    out = oc.original_runner(code, top_k=2)(np.zeros((8, 12, 3), np.uint8))
    det = oc.original_detections(out)
    assert det.classes.tolist() == [0, 1] and det.scores.tolist() == pytest.approx([0.9, 0.5])
    assert det.boxes.tolist() == [[3, 2, 9, 6], [0, 0, 4, 4]]
    assert det.masks is not None and det.masks.shape == (2, 8, 12)
    assert det.masks[0].sum() == 24 and det.masks[1].sum() == 0
    assert code.cfg.rescore_bbox is False


def test_loading_errors_are_one_line(tmp_path, tiny_weights):
    with pytest.raises(oc.OriginalCodeError, match="not a checkout of the original YOLACT"):
        oc.load_original(str(tmp_path), "yolact_tiny", tiny_weights)
    repo = write_fake_original(tmp_path / "a")
    with pytest.raises(oc.OriginalCodeError, match="^the original code has no config 'x_config'$"):
        oc.load_original(repo, "x", tiny_weights)
    broken = write_fake_original(tmp_path / "b", {**FAKE, "yolact.py": "raise KeyError('boom')"})
    with pytest.raises(oc.OriginalCodeError) as e:
        oc.load_original(broken, "yolact_tiny", tiny_weights)
    assert str(e.value) == f"the original code failed to load from {broken}: KeyError: 'boom'"
    assert "data" not in sys.modules or sys.modules["data"].__file__ is None


def _dets(boxes: list[list[float]], classes: list[int]) -> oc.FrameDetections:
    masks = np.zeros((len(classes), 4, 4), bool)
    masks[:, :2] = True
    return oc.FrameDetections(
        np.array(boxes, float).reshape(-1, 4), np.array(classes), np.ones(len(classes)), masks
    )


def test_detections_agree_within_one_pixel_and_by_class():
    ref = _dets([[10, 10, 50, 40], [0, 0, 20, 20]], [3, 1])
    a = ob.Agreement()
    ob.compare_frame(ref, _dets([[1, 0, 20, 20], [10, 11, 50, 40]], [1, 3]), a)
    assert (a.frames, a.frames_equal, a.matched, a.max_box_px) == (1, 1, 2, 1.0)
    assert a.min_mask_iou == 1.0
    ob.compare_frame(ref, _dets([[10, 10, 52, 40], [0, 0, 20, 20]], [3, 1]), a)
    ob.compare_frame(ref, _dets([[10, 10, 50, 40], [0, 0, 20, 20]], [3, 2]), a)
    ob.compare_frame(ref, _dets([[10, 10, 50, 40], [0, 0, 20, 20], [5, 5, 6, 6]], [3, 1, 0]), a)
    assert (a.frames, a.frames_equal, a.detections, a.matched) == (4, 1, 8, 6)
    assert a.line("pytorch", "original").startswith("pytorch vs original: DIFFER: 1/4 frames")


def test_backends_take_turns_and_the_table_gives_the_speed_up():
    calls: list[str] = []

    def backend(name: str) -> ob.Backend:
        def run(frame: np.ndarray) -> str:
            calls.append(name)
            return name

        return ob.Backend(name, run, lambda _: _dets([[0, 0, 4, 4]], [0]))

    frames = [np.zeros((6, 8, 3), np.uint8)] * 3
    result = ob.run_side_by_side([backend("a"), backend("b")], frames, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert [len(v) for v in result.ms.values()] == [3, 3] and result.frame_size == (6, 8)
    result.ms = {"a": [30.0, 10.0, 20.0], "b": [5.0, 5.0, 6.0]}
    rows = result.rows()
    assert rows[0] == ("a", 20.0, 20.0, 50.0, "1.00x") and rows[1][4] == "4.00x"
    assert result.markdown().splitlines()[3] == "| b | 5.0 | 5.3 | 200.00 | 4.00x |"
    assert "b vs a: agree: 3/3 frames" in result.table()
    with pytest.raises(ValueError, match="at least one backend"):
        ob.run_side_by_side([], frames)


def test_cli_times_the_original_and_pytorch_and_writes_markdown(tmp_path, tiny_weights, capsys):
    md = tmp_path / "out.md"
    code = ob.main([
        f"--original_repo={write_fake_original(tmp_path)}", "--config=yolact_tiny",
        f"--trained_model={tiny_weights}", "--images=2", "--warmup=0",
        "--backends=original,pytorch", f"--markdown={md}", "--threads=1",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["backend", "median", "ms", "mean", "ms", "FPS", "speed-up"]
    assert lines[1].startswith("original ") and lines[1].endswith(" 1.00x")
    assert lines[2].startswith("pytorch ")
    assert "pytorch vs original: DIFFER: 0/2 frames" in out
    assert "yolact_tiny, checkpoint" in out and "1 intra-op threads (--threads)" in out
    assert md.read_text().startswith("| backend | median ms/frame |")
    assert ob.RANDOM_BF16_NOTE not in out  # float32 rows, and a checkpoint


def test_cli_notes_why_bf16_rows_differ_on_random_weights(tmp_path, capsys, monkeypatch):
    from yolact.runtime import gpu

    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: True)
    code = ob.main([
        f"--original_repo={write_fake_original(tmp_path)}", "--config=yolact_tiny",
        "--images=1", "--warmup=0", "--backends=original,pytorch_bf16", "--threads=1",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "pytorch_bf16 vs original:" in out
    assert out.rstrip().endswith(ob.RANDOM_BF16_NOTE)


def test_bf16_backends_run_with_half_and_share_the_export(tmp_path, tiny_weights, monkeypatch):
    """``pytorch_bf16`` is the PyTorch predictor with ``half`` (bfloat16 on the CPU; the
    capability stood in for), agreeing with float32 on random weights; the OpenVINO
    rows export once; the default list has the bf16 rows only where the CPU has bf16."""
    from yolact.runtime import gpu

    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: True)
    assert ob.default_backends() == ob.BACKENDS[:7]
    names = ["pytorch", "pytorch_bf16", "onnxruntime", "openvino"]
    exports: list[str] = []
    import yolact.export

    real = yolact.export.export
    monkeypatch.setattr(
        yolact.export, "export", lambda *a, **k: exports.append(a[2]) or real(*a, **k)
    )
    backends = ob.project_backends(tiny_weights, "yolact_tiny", names, str(tmp_path), 5)
    assert [b.name for b in backends] == names and exports == ["onnx", "openvino"]
    half = backends[1].run
    assert half.half and next(half.model.parameters()).dtype == torch.bfloat16
    assert not backends[0].run.half and not backends[3].run.half
    frames = [
        np.random.default_rng(s).integers(0, 255, (120, 160, 3), dtype=np.uint8) for s in (0, 1)
    ]
    result = ob.run_side_by_side(backends[:2], frames, warmup=0)
    assert result.agreement["pytorch_bf16"].detections == 10
    monkeypatch.setattr(gpu, "cpu_has_bf16", lambda: False)
    assert ob.default_backends() == ("original", "pytorch", "onnxruntime", "openvino",
                                     "openvino_int8")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends=original,tensorrt"], "error: --backends takes distinct names of original"),
        (["--images=0"], "error: --images must be at least 1"),
        (["--original_repo=/nonexistent"], "error: /nonexistent is not a checkout"),
    ],
)
def test_cli_bad_input_is_one_line(args, message, capsys):
    assert ob.main(args) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1


def test_the_package_never_imports_the_harness():
    """The original's loader stays off the normal import path (eval.py, the API)."""
    import subprocess

    code = (
        "import sys, yolact, yolact.registry, yolact.cli.eval_cli, yolact.bench.benchmark; "
        "tools = ('original_bench', 'original_code', 'load_bench', 'gpu_report'); "
        "print(sorted(m for m in sys.modules if m in tools))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
