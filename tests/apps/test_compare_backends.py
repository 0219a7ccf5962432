"""``eval.py --benchmark --backends=...``: one model exported to each runtime and timed
(and scored) side by side; ``--compare`` with several models."""

from __future__ import annotations

import csv

import pytest
from conftest import REPO

from yolact.cli.compare_cli import parse_backends
from yolact.cli.eval_cli import main
from yolact.cli.predictors import UsageError
from yolact.data.synthetic import write_coco_dataset

DEMO = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


def _rows(folder) -> list[dict[str, str]]:
    with open(folder / "comparison.csv") as f:
        return list(csv.DictReader(f))


def test_backends_time_and_score_every_runtime(tmp_path, capsys):
    """The demo model on PyTorch, onnxruntime and OpenVINO: one row per backend and
    batch, with box and mask AP on a tiny dataset; the runtimes score as PyTorch does."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    paths = write_coco_dataset(str(tmp_path / "d"), num_train=0, num_val=3, size=(96, 96))
    out_dir = tmp_path / "bench"
    code = main([
        "--benchmark", f"--trained_model={DEMO}", "--backends=pytorch,onnxruntime,openvino",
        "--fast_nms=True", "--max_images=3", "--benchmark_batch=2", "--benchmark_warmup=0",
        f"--benchmark_dir={out_dir}", f"--val_ann={paths['val_ann_file']}",
        f"--val_images={paths['val_image_dir']}", "--cuda=False", "--no_bar",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = _rows(out_dir)
    names = ["yolact_tiny (pytorch)", "yolact_tiny (onnxruntime)", "yolact_tiny (openvino)"]
    assert [(r["model"], r["batch"]) for r in rows] == [(n, b) for n in names for b in "12"]
    assert all(float(r["fps"]) > 0 and float(r["network_ms"]) > 0 for r in rows)
    box = [float(r["box_ap"]) for r in rows]
    mask = [float(r["mask_ap"]) for r in rows]
    assert mask[0] > 0.2 and box[0] > 0.2
    assert max(mask) - min(mask) < 0.02 and max(box) - min(box) < 0.02
    assert rows[0]["params_m"] != "nan" and rows[2]["params_m"] == "nan"
    md = (out_dir / "comparison.md").read_text()
    assert all(f"| {n} | 2 |" in md for n in names)
    assert (out_dir / "comparison.png").stat().st_size > 0
    assert "yolact_tiny (openvino)" in out


def test_a_backend_that_cannot_run_the_model_is_skipped_in_one_line(tmp_path, capsys):
    """The Mask R-CNN reference has no export: its runtimes are skipped, PyTorch still runs."""
    out_dir = tmp_path / "bench"
    code = main([
        "--benchmark", "--config=mask_rcnn_tiny", "--backends=pytorch,onnxruntime",
        "--max_images=1", "--benchmark_batch=1", "--benchmark_warmup=0",
        f"--benchmark_dir={out_dir}", "--cuda=False",
    ])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    skips = [line for line in err.splitlines() if line.startswith("skipping")]
    assert len(skips) == 1
    assert skips[0].startswith("skipping onnxruntime: the Mask R-CNN reference cannot be exported")
    assert "Traceback" not in err
    assert [(r["model"], r["batch"]) for r in _rows(out_dir)] == [("mask_rcnn_tiny (pytorch)", "1")]


def test_an_unknown_backend_is_one_error_line_with_the_choices(tmp_path, capsys):
    code = main(["--benchmark", "--config=yolact_tiny", "--backends=pytorch,coreml",
                 f"--benchmark_dir={tmp_path}", "--cuda=False"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "error: unknown backend 'coreml'; choose from pytorch, onnxruntime, openvino, tensorrt, "
        "onnxruntime-int8, openvino-int8, tensorrt-int8\n"
    )
    assert not (tmp_path / "comparison.csv").exists()


def test_backends_need_benchmark(capsys):
    code = main(["--config=yolact_tiny", "--backends=pytorch", "--image=x.png", "--cuda=False"])
    assert code == 1 and capsys.readouterr().err == "error: --backends goes with --benchmark\n"


def test_parse_backends_keeps_order_once_each():
    assert parse_backends(" OpenVINO,pytorch,openvino ") == ["openvino", "pytorch"]
    assert parse_backends(None) == []
    with pytest.raises(UsageError, match="unknown backend 'trt'"):
        parse_backends("trt")


def test_compare_takes_several_models(tmp_path, capsys):
    """--compare=A,B adds one row per model and batch after the --trained_model's."""
    out_dir = tmp_path / "bench"
    code = main([
        "--benchmark", f"--trained_model={DEMO}", "--compare=yolact_tiny,mask_rcnn_tiny",
        "--max_images=1", "--benchmark_batch=1", "--benchmark_warmup=0",
        f"--benchmark_dir={out_dir}", "--cuda=False",
    ])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    assert [r["model"] for r in _rows(out_dir)] == [
        "yolact_tiny (1)", "yolact_tiny (2)", "mask_rcnn_tiny"
    ]  # fmt: skip


def test_onnxruntime_workers_do_not_spin_between_runs(tmp_path):
    """Spinning onnxruntime workers held the cores while PyTorch pasted the masks: the
    onnxruntime row's post column was 4x the others' on 2 cores."""
    pytest.importorskip("onnxruntime")
    from yolact.export import export
    from yolact.predictor import Predictor

    path = export(DEMO, str(tmp_path / "m.onnx"), "onnx", check=False, log=False)
    predictor = Predictor.from_checkpoint(path, device="cpu")
    options = predictor.runtime.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_deformable_convolutions_skip_the_runtimes_that_cannot_run_them(tmp_path, capsys):
    """A YOLACT++-style model (one deformable block): exported for onnxruntime (whose
    file it then refuses) and refused by the OpenVINO export, each in one line."""
    import dataclasses

    import torch

    from yolact.models.yolact.model import build_model
    from yolact.registry import get_config

    pytest.importorskip("onnxruntime")
    base = get_config("yolact_tiny")
    backbone = dataclasses.replace(base.backbone, depth=50, width=16, dcn_layers=(0, 0, 0, 1))
    cfg = base.replace(name="yolact_tiny_dcn", backbone=backbone)
    torch.manual_seed(0)
    path = tmp_path / "dcn_1_1.pth"
    torch.save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict()}, path)
    out_dir = tmp_path / "bench"
    code = main([
        "--benchmark", f"--trained_model={path}", "--backends=pytorch,onnxruntime,openvino",
        "--max_images=1", "--benchmark_batch=1", "--benchmark_warmup=0",
        f"--benchmark_dir={out_dir}", "--cuda=False",
    ])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    skips = [line for line in err.splitlines() if line.startswith("skipping")]
    assert [s.split(":")[0] for s in skips] == ["skipping onnxruntime", "skipping openvino"]
    assert "(ONNX DeformConv), which onnxruntime cannot run" in skips[0]
    assert skips[1] == (
        "skipping openvino: OpenVINO cannot run deformable convolutions (ONNX DeformConv); "
        "export YOLACT++ to onnx for TensorRT instead"
    )
    assert "Traceback" not in err
    assert [r["model"] for r in _rows(out_dir)] == ["yolact_tiny_dcn (pytorch)"]
