"""Side-by-side comparison: timings per model and batch, files written, memory figures."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from yolact.bench.compare import compare_models
from yolact.data.scenes import synthetic_frames
from yolact.models.yolact.model import build_model
from yolact.models.yolact.predictor import YolactPredictor
from yolact.registry import get_config


@pytest.fixture(scope="module")
def predictors():
    torch.manual_seed(0)
    small = get_config("yolact_tiny").replace(class_names=("a", "b", "c"), max_size=160)
    smaller = small.replace(name="yolact_tiny_96", max_size=96)
    return [
        (c.name, YolactPredictor(build_model(c), device="cpu", top_k=5)) for c in (small, smaller)
    ]


def fake_metrics(ap_box: float, ap_mask: float) -> dict:
    keys = ("AP", "AP50", "AP75", "APs", "APm", "APl")
    return {"bbox": dict.fromkeys(keys, ap_box), "segm": dict.fromkeys(keys, ap_mask)}


def test_compare_two_models_writes_table_csv_plot(tmp_path, predictors):
    frames = synthetic_frames(2, height=90, width=120)
    aps = {"yolact_tiny": (0.5, 0.4), "yolact_tiny_96": (0.3, 0.2)}
    result = compare_models(
        predictors, frames, batch_sizes=(1, 2), warmup=1,
        evaluate=lambda p: fake_metrics(*aps[p.cfg.name]),
    )  # fmt: skip
    rows = result.rows()
    assert [(r["model"], r["batch"]) for r in rows] == [
        ("yolact_tiny", 1), ("yolact_tiny", 2), ("yolact_tiny_96", 1), ("yolact_tiny_96", 2)
    ]  # fmt: skip
    for r in rows:
        assert r["total_ms"] == pytest.approx(
            r["pre_ms"] + r["network_ms"] + r["post_ms"], abs=0.05
        )
        assert r["fps"] == pytest.approx(1000 / r["total_ms"], rel=0.01, abs=0.006)
        assert r["peak_mem_mb"] > 10
    assert rows[0]["mask_ap"] == 0.4 and rows[2]["box_ap"] == 0.3
    files = result.write(str(tmp_path))
    assert [f.rsplit("/", 1)[1] for f in files] == [
        "comparison.md",
        "comparison.csv",
        "comparison.png",
    ]
    with open(tmp_path / "comparison.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    md = (tmp_path / "comparison.md").read_text()
    assert "| model | batch |" in md and "yolact_tiny_96" in md and "Device: cpu" in md
    assert (tmp_path / "comparison.png").stat().st_size > 2000
    printed = result.table()
    assert printed.splitlines()[0].split()[:3] == ["model", "batch", "pre_ms"]
    assert printed.splitlines()[0].endswith("box AP (0-1)  mask AP (0-1)")
    assert "| box AP (0-1) | mask AP (0-1) |" in md


def test_compare_without_dataset_plots_bars(tmp_path, predictors):
    frames = synthetic_frames(1, 90, 120)
    result = compare_models(predictors[:1], frames, batch_sizes=(1,), warmup=0)
    assert result.rows()[0]["mask_ap"] == ""
    result.write(str(tmp_path))
    assert (tmp_path / "comparison.png").exists()


def test_peak_memory_sees_an_allocation():
    """In a fresh process (so that no freed heap left by other tests can absorb
    the allocation), touching 64 MiB raises the measured peak by about that."""
    code = (
        "import numpy as np, torch\n"
        "from yolact.bench.compare import measure_peak_memory\n"
        "def allocate():\n"
        "    x = np.ones(64 * 2**20, dtype=np.uint8)\n"
        "    return int(x[::4096].sum())\n"
        "base = measure_peak_memory(torch.device('cpu'), lambda: None)\n"
        "peak = measure_peak_memory(torch.device('cpu'), allocate)\n"
        "print(peak - base)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert 50 < float(proc.stdout.split()[-1]) < 200


def test_eval_benchmark_compare_end_to_end(tmp_path, capsys):
    """eval.py --benchmark --compare: YOLACT against the Mask R-CNN reference on a
    dataset, writing the table, markdown, CSV and plot."""
    from yolact.cli.eval_cli import main
    from yolact.data.synthetic import SYNTHETIC_CLASSES, write_coco_dataset
    from yolact.models.mask_rcnn.weights import build_rcnn

    paths = write_coco_dataset(str(tmp_path / "d"), num_train=1, num_val=2, size=(96, 96))
    torch.manual_seed(0)
    y_cfg = get_config("yolact_tiny").replace(class_names=SYNTHETIC_CLASSES)
    r_cfg = get_config("mask_rcnn_tiny").replace(class_names=SYNTHETIC_CLASSES, min_size=96,
                                                 max_size=96)  # fmt: skip
    y_path, r_path = tmp_path / "y_1_1.pth", tmp_path / "r_1_1.pth"
    torch.save({"model": build_model(y_cfg).state_dict(), "config": y_cfg.to_dict()}, y_path)
    torch.save({"model": build_rcnn(r_cfg).state_dict(), "config": r_cfg.to_dict()}, r_path)
    out_dir = tmp_path / "bench"
    code = main([
        "--benchmark", f"--trained_model={y_path}", f"--compare={r_path}", "--max_images=1",
        "--benchmark_batch=2", "--benchmark_warmup=0", f"--benchmark_dir={out_dir}",
        f"--val_ann={paths['val_ann_file']}", f"--val_images={paths['val_image_dir']}",
        "--cuda=False", "--no_bar",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    with open(out_dir / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["batch"]) for r in rows] == [
        ("yolact_tiny", "1"), ("yolact_tiny", "2"), ("mask_rcnn_tiny", "1"), ("mask_rcnn_tiny", "2")
    ]  # fmt: skip
    assert all(0.0 <= float(r["mask_ap"]) <= 1.0 and float(r["fps"]) > 0 for r in rows)
    assert (out_dir / "comparison.png").exists() and (out_dir / "comparison.md").exists()
    assert "mask_rcnn_tiny" in out and "wrote" in out


def test_compare_needs_benchmark_batch(capsys):
    from yolact.cli.eval_cli import main

    code = main(["--benchmark", "--config=yolact_tiny", "--compare=mask_rcnn_tiny",
                 "--benchmark_batch=0", "--cuda=False"])  # fmt: skip
    assert code == 1 and "--benchmark_batch" in capsys.readouterr().err


def test_compare_the_demo_model_named_by_its_config(tmp_path, capsys):
    """--compare with --config=yolact_tiny on the demo model (a file that stores its own
    synthetic classes) scores both models on the synthetic shapes."""

    from yolact.cli.eval_cli import main
    from yolact.data.synthetic import write_coco_dataset

    demo = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
    paths = write_coco_dataset(str(tmp_path / "d"), num_train=1, num_val=2, size=(96, 96))
    out_dir = tmp_path / "bench"
    code = main([
        "--benchmark", f"--trained_model={demo}", "--config=yolact_tiny", f"--compare={demo}",
        "--max_images=1", "--benchmark_warmup=0", f"--benchmark_dir={out_dir}",
        f"--val_ann={paths['val_ann_file']}", f"--val_images={paths['val_image_dir']}",
        "--cuda=False", "--no_bar",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    with open(out_dir / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    ap = {r["model"]: r["mask_ap"] for r in rows}
    assert list(ap) == ["yolact_tiny (1)", "yolact_tiny (2)"]
    assert ap["yolact_tiny (1)"] == ap["yolact_tiny (2)"] and float(ap["yolact_tiny (1)"]) > 0.2


def test_a_predictor_without_a_torch_model_is_compared_with_unknown_parameters():
    """Exported graphs have no torch model: the comparison runs and says NaN."""
    import math

    inner = YolactPredictor(build_model(get_config("yolact_tiny")), device="cpu")

    class GraphOnly:
        device = inner.device
        class_names, cfg = inner.class_names, inner.cfg
        run_pre, run_network, run_post = inner.run_pre, inner.run_network, inner.run_post

    frames = synthetic_frames(2, 96, 128)
    result = compare_models([("graph", GraphOnly())], frames, batch_sizes=(1,), warmup=0)
    (report,) = result.reports
    assert math.isnan(report.params_m) and report.timings[0].fps > 0
