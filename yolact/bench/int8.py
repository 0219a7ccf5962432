"""float32 against bfloat16 against INT8, side by side in one run, on the same frames::

    python -m yolact.bench.int8 --trained_model=weights/yolact_tiny_synthetic.pth \\
        --calib=data/demo/val --frames=200
    python -m yolact.bench.int8 --config=yolact_base --frames=10 --rounds=2 \\
        --calib=synthetic --runtimes=openvino

The model is exported once in float32 and once in INT8 (``python -m yolact.export
--int8``) to a temporary folder, then every row is timed frame in (640x480 BGR
uint8) -> masks pasted at the image size, eval.py's display path (``top_k`` 5),
batch 1, in ``--rounds`` rounds taking turns, so a change in the machine's load
falls on every row alike. Rows: OpenVINO float32, bfloat16 (``--half``), INT8, INT8
with the bfloat16 hint (its float parts in bfloat16); onnxruntime float32 and INT8
with ``--runtimes=openvino,onnxruntime``. With ``--val_ann``/``--val_images`` each
row's box and mask AP are measured too (every detection kept).

``--calib=synthetic`` calibrates on 32 generated 640x480 frames (random weights, say;
the agreement check is then skipped, as random weights give no detections to
compare).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

import cv2
import numpy as np

from yolact.backends.int8_export import Int8Options
from yolact.bench.benchmark import run_benchmark
from yolact.core.predictor import Predictor
from yolact.data.scenes import synthetic_frames
from yolact.engine.evaluate import AP_UNIT, evaluate_dataset

# The rows: (name, export, bfloat16 hint).
ROWS: dict[str, list[tuple[str, str, bool]]] = {
    "openvino": [
        ("OpenVINO float32", "openvino", False),
        ("OpenVINO bfloat16", "openvino", True),
        ("OpenVINO INT8", "openvino-int8", False),
        ("OpenVINO INT8 + bf16 hint", "openvino-int8", True),
    ],
    "onnxruntime": [
        ("onnxruntime float32", "onnx", False),
        ("onnxruntime INT8", "onnx-int8", False),
    ],
}


def _synthetic_calibration(folder: str, count: int = 32) -> str:
    """``count`` generated 640x480 frames written to ``folder``/calib."""
    calib = os.path.join(folder, "calib")
    os.makedirs(calib, exist_ok=True)
    for i, frame in enumerate(synthetic_frames(count, seed=11)):
        cv2.imwrite(os.path.join(calib, f"{i:04d}.png"), frame)
    return calib


def calibration_source(args: argparse.Namespace, folder: str) -> tuple[Int8Options, bool]:
    """The calibration of eval.py's ``--backends=...,openvino-int8`` rows, and whether
    to check the INT8 graph against float32: the dataset's images (``--dataset``,
    ``--val_images``), else ``--images``'s folder, else 32 generated frames written to
    ``folder`` (then unchecked: random weights, which is what a run without data
    times, give nothing to compare)."""
    from yolact.data.coco import named_dataset
    from yolact.io.sources import split_in_out

    if getattr(args, "dataset", None):
        return Int8Options(named_dataset(args.dataset)[1]), True
    if getattr(args, "val_images", None):
        return Int8Options(args.val_images), True
    if getattr(args, "images", None):
        return Int8Options(split_in_out(args.images)[0]), True
    return Int8Options(_synthetic_calibration(folder)), False


def export_all(
    args: argparse.Namespace, kinds: Sequence[str], folder: str
) -> dict[str, str]:  # fmt: skip
    """Each needed export of the model in ``folder``: kind -> path."""
    from yolact.export import export

    calib, check = args.calib, True
    if calib == "synthetic":
        calib, check = _synthetic_calibration(folder), False
    paths = {}
    for kind in kinds:
        fmt = kind.split("-")[0]
        int8 = Int8Options(calib, args.calib_size) if kind.endswith("int8") else None
        paths[kind] = export(
            args.trained_model, os.path.join(folder, kind), fmt, config=args.config,
            check=check, log=False, int8=int8,
        )  # fmt: skip
        print(f"exported {kind}: {paths[kind]}", flush=True)
    return paths


def time_rows(
    predictors: Sequence[tuple[str, Predictor]], frames: Sequence[np.ndarray], rounds: int
) -> dict[str, list[float]]:
    """ms per frame of each row in each round, the rows taking turns."""
    times: dict[str, list[float]] = {name: [] for name, _ in predictors}
    for _ in range(rounds):
        for name, predictor in predictors:
            times[name].append(run_benchmark(predictor, frames, warmup=3).total_ms)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m yolact.bench.int8", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--trained_model", help="the checkpoint (default: --config's random weights)")
    p.add_argument("--config", help="a registered config name")
    p.add_argument("--calib", required=True, help="calibration images, or 'synthetic'")
    p.add_argument("--calib_size", type=int, default=100)
    p.add_argument("--frames", type=int, default=100, help="640x480 frames timed per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runtimes", default="openvino", help="openvino[,onnxruntime]")
    p.add_argument("--val_ann", help="COCO annotations for box and mask AP")
    p.add_argument("--val_images", help="their image folder")
    p.add_argument("--threads", type=int, default=0, help="runtime threads (0: all cores)")
    args = p.parse_args(argv)
    if args.trained_model is None and args.config is None:
        p.error("give --trained_model or --config")
    rows = [r for name in args.runtimes.split(",") for r in ROWS[name.strip()]]
    frames = synthetic_frames(args.frames, seed=0)
    with tempfile.TemporaryDirectory(prefix="yolact_int8_bench_") as folder:
        paths = export_all(args, list(dict.fromkeys(kind for _, kind, _ in rows)), folder)
        predictors = [
            (name, Predictor.from_checkpoint(paths[kind], device="cpu", top_k=5,
                                             threads=args.threads or None, half=half))
            for name, kind, half in rows
        ]  # fmt: skip
        times = time_rows(predictors, frames, args.rounds)
        aps = {}
        if args.val_ann and args.val_images:
            from yolact.data.coco import CocoDataset

            for name, kind, half in rows:
                keep_all = Predictor.from_checkpoint(paths[kind], device="cpu", half=half)
                dataset = CocoDataset(args.val_ann, args.val_images)
                metrics = evaluate_dataset(keep_all, dataset, progress=False).metrics
                assert metrics is not None  # the annotations hold ground truth
                aps[name] = (metrics["bbox"]["AP"], metrics["segm"]["AP"])
    base = float(np.median(times[rows[0][0]])), float(np.min(times[rows[0][0]]))
    print(f"\n{args.frames} frames of 640x480 per round, {args.rounds} rounds; ms per frame "
          f"(frame in -> masks out, top_k 5); speed-up against {rows[0][0]}")  # fmt: skip
    ap_head = f" | box AP ({AP_UNIT}) | mask AP ({AP_UNIT})" if aps else ""
    print(f"| row | ms per round | median ms (FPS, speed-up) | best ms (FPS, speed-up){ap_head} |")
    print("|---|---|---|---|" + ("---|---|" if aps else ""))
    for name, _, _ in rows:
        median, best = float(np.median(times[name])), float(np.min(times[name]))
        rounds = ", ".join(f"{t:.1f}" for t in times[name])
        ap = f" | {aps[name][0]:.4f} | {aps[name][1]:.4f}" if aps else ""
        print(f"| {name} | {rounds} | {median:.1f} ({1000 / median:.1f}, {base[0] / median:.2f}x) "
              f"| {best:.1f} ({1000 / best:.1f}, {base[1] / best:.2f}x){ap} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
