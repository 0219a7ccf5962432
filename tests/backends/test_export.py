"""Export to ONNX / OpenVINO, and exported files run like checkpoints (yolact_tiny)."""

from __future__ import annotations

import contextlib
import io
import json
import os

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO

from yolact.backends.meta import ExportedFileError, read_meta
from yolact.backends.onnx_ops import DEFORM_CONV_OPSET, register_deform_conv
from yolact.backends.predictor import ExportedPredictor
from yolact.cli.eval_cli import main as eval_main
from yolact.core.backbone import ModulatedDeformConv
from yolact.core.structures import Detections
from yolact.data.scenes import make_scene
from yolact.data.synthetic import SYNTHETIC_CLASSES, write_coco_dataset
from yolact.export import main as export_main
from yolact.models.yolact.model import build_model
from yolact.predictor import Predictor
from yolact.registry import get_config

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The demo model as ONNX and OpenVINO; random yolact_tiny weights as a
    dynamic-batch ONNX and a fixed batch of 2."""
    root = tmp_path_factory.mktemp("exported")
    torch.manual_seed(0)
    random = root / "yolact_tiny_1_10.pth"
    torch.save(build_model(get_config("yolact_tiny")).state_dict(), random)
    runs = [
        [f"--trained_model={DEMO}", f"--output={root / 'demo.onnx'}"],
        [f"--trained_model={DEMO}", "--format=openvino", f"--output={root / 'demo'}"],
        [f"--trained_model={random}", f"--output={root / 'rand.onnx'}", "--dynamic_batch"],
        [f"--trained_model={random}", f"--output={root / 'rand2.onnx'}", "--batch=2"],
    ]
    paths = {"random": str(random)}
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        for argv in runs:
            assert export_main(argv) == 0
    paths["log"] = log.getvalue()
    paths.update(
        onnx=str(root / "demo.onnx"), openvino=str(root / "demo_openvino_model"),
        dynamic=str(root / "rand.onnx"), batch2=str(root / "rand2.onnx"),
    )  # fmt: skip
    return paths


def scenes(n: int, size: tuple[int, int] = (96, 128)) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [make_scene(rng, size)["image"] for _ in range(n)]


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    inter = (a & b).sum().item()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else inter / union


def assert_same_detections(got: Detections, ref: Detections) -> None:
    """Boxes within 1 px, scores within 1e-3, mask IoU >= 0.99 (issue 10)."""
    assert len(got) == len(ref) and len(ref) > 0
    assert torch.equal(got.labels, ref.labels)
    assert float((got.boxes - ref.boxes).abs().max()) <= 1.0
    assert float((got.scores - ref.scores).abs().max()) <= 1e-3
    assert got.masks is not None and ref.masks is not None
    for a, b in zip(got.masks, ref.masks):
        assert mask_iou(a, b) >= 0.99


def test_export_cli_checks_and_stores_metadata(files) -> None:
    out = files["log"]
    assert out.count("checked with onnxruntime:") == 3 and "checked with openvino:" in out
    assert "30/30 detections match PyTorch" in out  # the demo model on the drawn scene
    meta = read_meta(files["onnx"])
    assert meta.config_name == "yolact_tiny" and tuple(meta.class_names) == SYNTHETIC_CLASSES
    assert meta.input_size == 160 and meta.batch == 1 and meta.channels == "rgb"
    assert meta.pixel_mean == list(get_config("yolact_tiny").pixel_mean)
    assert meta.nms_method == "fast" and meta.crop and not meta.deformable
    assert read_meta(files["dynamic"]).batch is None and read_meta(files["batch2"]).batch == 2
    assert read_meta(files["openvino"]).config == meta.config
    graph = onnx.load(files["onnx"]).graph
    assert [o.name for o in graph.output] == [
        "boxes", "scores", "box_scores", "classes", "masks", "count"
    ]  # fmt: skip
    ops = {n.op_type for n in graph.node}
    assert {"TopK", "Trilu", "Conv"} <= ops  # Fast NMS inside the graph
    assert sorted(os.listdir(files["openvino"])) == ["metadata.json", "model.bin", "model.xml"]


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_exported_demo_model_detects_like_the_checkpoint(files, kind) -> None:
    images = scenes(2)
    ref = Predictor.from_checkpoint(DEMO, device="cpu", score_threshold=0.05)(images)
    exported = Predictor.from_checkpoint(files[kind], device="cpu", score_threshold=0.05)
    assert isinstance(exported, ExportedPredictor)
    assert tuple(exported.class_names) == SYNTHETIC_CLASSES
    got = exported(images)
    for g, r in zip(got, ref):
        assert_same_detections(g, r)


@pytest.mark.parametrize("kind", ["dynamic", "batch2"])
def test_random_weights_any_batch(files, kind) -> None:
    images = scenes(3)
    ref = Predictor.from_checkpoint(files["random"], device="cpu", top_k=20)(images)
    got = Predictor.from_checkpoint(files[kind], device="cpu", top_k=20)(images)
    assert len(got) == 3
    for g, r in zip(got, ref):
        assert_same_detections(g, r)


def test_options_and_stages(files) -> None:
    image = scenes(1)[0]
    predictor = Predictor.from_checkpoint(files["onnx"], device="cpu", top_k=2, masks=False)
    det = predictor(image)
    assert len(det) == 2 and det.masks is None
    raw = predictor.run_network(predictor.run_pre([image]))
    assert raw.count.tolist() == [2] and tuple(raw.masks.shape[2:]) == (40, 40)
    with pytest.raises(ExportedFileError, match="exported with fast NMS, not standard"):
        Predictor.from_checkpoint(files["onnx"], device="cpu", nms_method="standard")
    with pytest.raises(ExportedFileError, match="exported with crop=True"):
        Predictor.from_checkpoint(files["onnx"], device="cpu", crop=False)


def run_eval(capsys, *argv: str) -> tuple[int, str, str]:
    code = eval_main(["--no_bar", "--cuda=False", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_py_modes_with_an_exported_file(files, tmp_path, capsys) -> None:
    image = scenes(1, (72, 96))[0]
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), image)
    for kind in ("onnx", "openvino"):
        js = tmp_path / f"{kind}.json"
        code, out, err = run_eval(
            capsys, f"--trained_model={files[kind]}", f"--image={src}:{tmp_path / 'o.png'}",
            f"--output_json={js}",
        )  # fmt: skip
        assert code == 0, err
        assert "random weights" not in err
        assert cv2.imread(str(tmp_path / "o.png")).shape == image.shape
        dets = json.loads(js.read_text())
        assert len(dets) > 0 and isinstance(dets[0]["segmentation"]["counts"], str)
    ref_js = tmp_path / "ref.json"
    drawn = f"--image={src}:{tmp_path / 'r.png'}"
    code, _, err = run_eval(capsys, f"--trained_model={DEMO}", drawn, f"--output_json={ref_js}")
    assert code == 0, err
    ref = json.loads(ref_js.read_text())
    got = json.loads((tmp_path / "onnx.json").read_text())
    assert [d["category_id"] for d in got] == [d["category_id"] for d in ref]
    assert np.allclose([d["score"] for d in got], [d["score"] for d in ref], atol=1e-3)
    # A folder, a video and the benchmark.
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(scenes(2, (64, 80))):
        cv2.imwrite(str(folder / f"{i}.png"), im)
    code, _, err = run_eval(capsys, f"--trained_model={files['onnx']}",
                            f"--images={folder}:{tmp_path / 'out'}")  # fmt: skip
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["0.png", "1.png"]
    video = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 72))
    for _ in range(3):
        writer.write(image)
    writer.release()
    code, out, err = run_eval(capsys, f"--trained_model={files['onnx']}",
                              f"--video={video}:{tmp_path / 'out.avi'}")  # fmt: skip
    assert code == 0, err
    assert "processed 3 frames" in out
    code, out, err = run_eval(capsys, f"--trained_model={files['openvino']}", "--benchmark",
                              "--max_images=3", "--benchmark_warmup=1")  # fmt: skip
    assert code == 0, err
    assert "network" in out and "FPS" in out


def test_eval_py_dataset_ap_with_an_exported_file(files, tmp_path, capsys) -> None:
    data = write_coco_dataset(str(tmp_path), num_train=0, num_val=2, size=(96, 96))
    flags = [f"--val_ann={data['val_ann_file']}", f"--val_images={data['val_image_dir']}"]
    code, out_ref, err = run_eval(capsys, f"--trained_model={DEMO}", *flags)
    assert code == 0, err
    code, out, err = run_eval(capsys, f"--trained_model={files['onnx']}", *flags)
    assert code == 0, err
    table = [ln for ln in out.splitlines() if ln.strip().startswith(("box", "mask"))]
    assert table and table == [
        ln for ln in out_ref.splitlines() if ln.strip().startswith(("box", "mask"))
    ]


def test_errors_in_one_line(files, tmp_path, capsys) -> None:
    # A file without this project's metadata.
    bare = onnx.load(files["onnx"])
    del bare.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(bare, str(plain))
    code, _, err = run_eval(capsys, f"--trained_model={plain}", "--image=x.png")
    assert code == 1 and "without yolact metadata" in err and "Traceback" not in err
    # Deformable convolutions: only TensorRT runs them.
    meta = read_meta(files["onnx"])
    meta.deformable = True
    marked = onnx.load(files["onnx"])
    marked.metadata_props[0].value = meta.to_json()
    dcn = tmp_path / "dcn.onnx"
    onnx.save(marked, str(dcn))
    code, _, err = run_eval(capsys, f"--trained_model={dcn}", "--image=x.png")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "deformable convolutions (ONNX DeformConv), which onnxruntime cannot run" in err
    # The Mask R-CNN reference.
    assert export_main(["--config=mask_rcnn_tiny", f"--output={tmp_path / 'm.onnx'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the Mask R-CNN reference cannot be exported")
    assert len(err.strip().splitlines()) == 1
    # Another config name than the file's.
    code, _, err = run_eval(capsys, f"--trained_model={files['onnx']}", "--config=yolact_base",
                            "--image=x.png")  # fmt: skip
    assert code == 1 and "exported from config yolact_tiny, not yolact_base" in err


def test_deformable_conv_exports_as_onnx_deform_conv(tmp_path) -> None:
    register_deform_conv()
    torch.manual_seed(0)
    conv = ModulatedDeformConv(4, 6).eval()
    torch.nn.init.normal_(conv.conv_offset_mask.weight, std=0.1)
    path = tmp_path / "dcn.onnx"
    torch.onnx.export(conv, (torch.randn(1, 4, 9, 9),), str(path), dynamo=False,
                      opset_version=DEFORM_CONV_OPSET)  # fmt: skip
    nodes = [n for n in onnx.load(str(path)).graph.node if n.op_type == "DeformConv"]
    assert len(nodes) == 1 and len(nodes[0].input) == 5  # x, w, offset, bias, mask
    attrs = {a.name: list(a.ints) or a.i for a in nodes[0].attribute}
    assert attrs["pads"] == [1, 1, 1, 1] and attrs["strides"] == [1, 1]


def test_mask_rescoring_net_exports_and_matches(tmp_path) -> None:
    """YOLACT++'s re-scoring net pools globally without a shape-dependent kernel."""
    import onnxruntime as ort

    from yolact.models.yolact.maskiou import MaskIoUNet

    torch.manual_seed(0)
    net = MaskIoUNet(3, get_config("yolact_plus_base").maskiou_channels).eval()
    side = net.min_size + 4
    masks = torch.rand(5, 1, side, side)
    path = tmp_path / "maskiou.onnx"
    torch.onnx.export(net, (masks,), str(path), dynamo=False, opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: masks.numpy()})[0]
    with torch.no_grad():
        ref = net(masks)
    assert got.shape == (5, 3) and np.allclose(got, ref.numpy(), atol=1e-5)
    # The same as a max-pool over the whole map.
    feats = net.maskiou_net(masks)
    pooled = torch.nn.functional.max_pool2d(feats, feats.shape[2:]).flatten(1)
    assert torch.equal(ref, pooled)


def test_export_with_mask_rescoring_detects_like_pytorch(tmp_path, capsys) -> None:
    """A YOLACT++-style head (mask re-scoring, no deformable convs) in the graph."""
    torch.manual_seed(0)
    cfg = get_config("yolact_tiny").replace(use_maskiou=True, maskiou_channels=(8, 16, 32))
    model = build_model(cfg)
    for p in model.maskiou_net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ckpt = tmp_path / "yolact_tiny_2_20.pth"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict()}, ckpt)
    path = tmp_path / "plus.onnx"
    assert export_main([f"--trained_model={ckpt}", f"--output={path}"]) == 0
    assert "checked with onnxruntime" in capsys.readouterr().out
    images = scenes(2)
    ref = Predictor.from_checkpoint(str(ckpt), device="cpu", score_threshold=0.02)(images)
    got = Predictor.from_checkpoint(str(path), device="cpu", score_threshold=0.02)(images)
    for g, r in zip(got, ref):
        assert not torch.equal(r.scores, r.box_scores)  # re-scored
        assert_same_detections(g, r)


def test_cuda_without_a_cuda_runtime_runs_on_the_cpu(files, monkeypatch, capsys) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    for kind in ("onnx", "openvino"):
        predictor = Predictor.from_checkpoint(files[kind], device="cuda")
        assert predictor.device.type == "cpu" and len(predictor(scenes(1)[0])) > 0
    err = capsys.readouterr().err
    assert "no CUDA provider" in err and "OpenVINO models run on the CPU here, not cuda" in err


SIGNAL_AFTER_TWO_MODELS = """
import os, signal, sys, threading
from yolact.backends.meta import read_meta
from yolact.backends.runtimes import OpenVinoRuntime
path = sys.argv[1]
first = OpenVinoRuntime(path, read_meta(path))
second = OpenVinoRuntime(path, read_meta(path))
del first  # freed in the order they were made
del second
lock = threading.Lock()
lock.acquire()
signal.signal(signal.SIGTERM, lambda *_: (print("handled SIGTERM", flush=True), lock.release()))
threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGTERM)).start()
lock.acquire(timeout=60)  # the main thread waits, takes the signal, and its handler lets it go
print("done")
"""


def test_a_signal_after_two_openvino_models_were_freed_is_handled(files) -> None:
    """OpenVINO leaves the compiling thread on its own alternate signal stack; without
    :func:`signal_stack_kept` two models freed first-to-last left the main thread on a
    freed stack, and SIGTERM then crashed the process (exit -11)."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", SIGNAL_AFTER_TWO_MODELS, files["openvino"]],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-500:]
    assert run.stdout.split() == ["handled", "SIGTERM", "done"]


def test_signal_stack_is_put_back() -> None:
    """The helper restores the thread's alternate signal stack set inside the block."""
    import ctypes
    import sys

    from yolact.backends.runtimes import _SignalStack, signal_stack_kept

    if not sys.platform.startswith("linux"):
        with signal_stack_kept():  # a no-op elsewhere
            return
    libc = ctypes.CDLL(None, use_errno=True)
    before, inside, after = _SignalStack(), _SignalStack(), _SignalStack()
    libc.sigaltstack(None, ctypes.byref(before))
    memory = ctypes.create_string_buffer(1 << 16)
    with signal_stack_kept():
        mine = _SignalStack(ctypes.cast(memory, ctypes.c_void_p).value, 0, len(memory))
        assert libc.sigaltstack(ctypes.byref(mine), None) == 0
        libc.sigaltstack(None, ctypes.byref(inside))
        assert inside.ss_sp == mine.ss_sp
    libc.sigaltstack(None, ctypes.byref(after))
    assert (after.ss_sp, after.ss_size, after.ss_flags) == (
        before.ss_sp, before.ss_size, before.ss_flags,
    )  # fmt: skip
