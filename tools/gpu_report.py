"""The GPU check and benchmark, as one prepared run for a machine lent with a GPU.

    python tools/gpu_report.py --out runs/gpu_report

1. runs ``pytest -m gpu tests/gpu`` (fp16 against float32, CUDA graphs against
   eager, channels_last, TensorRT against PyTorch, a batch of 32) into
   ``DIR/pytest_gpu.txt``;
2. times yolact_base (550 px) and yolact_tiny on 640x480 synthetic frames, frame
   in -> masks out, stage by stage (:func:`yolact.bench.benchmark.run_benchmark`):
   PyTorch fp32, fp16, fp16 + CUDA graph, onnxruntime's CUDA provider (fp32),
   TensorRT fp16 and TensorRT INT8 (an INT8 export, ``yolact export --int8``,
   calibrated on other generated frames) where onnxruntime has them, each at
   batch 1 and 32;
3. checks TensorRT INT8 against float32 on the demo model (``tools/gpu_int8.py``:
   same class, box within 3 px, mask IoU >= 0.9 for each float32 detection);
4. writes the table into ``DIR/gpu_benchmarks.md``: device, precision, batch, ms
   per stage, FPS, and for each row the eval.py command that times the same; then
   the INT8 agreement line.

The models have random weights with their BatchNorm statistics measured on the
frames (:func:`calibrate_batchnorm`; the raw random ResNet-101 overflows float16),
saved to ``DIR`` so that the eval.py commands use the same file. It needs torch,
torchvision, OpenCV, and onnx + onnxruntime for the exported rows, not pycocotools.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from gpu_int8 import demo_int8_agreement, export_int8_onnx, write_frames

from yolact.bench.benchmark import BenchmarkResult, StageTotals, run_benchmark
from yolact.bench.calibrate import calibrate_batchnorm
from yolact.core.predictor import Predictor
from yolact.data.scenes import synthetic_frames

# The repository root: this file is tools/gpu_report.py.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("yolact_base", "yolact_tiny")
BATCHES = (1, 32)
# (runtime, precision): the rows of each model and batch, in the order they run.
VARIANTS = (
    ("pytorch", "fp32"),
    ("pytorch", "fp16"),
    ("pytorch", "fp16 + CUDA graph"),
    ("tensorrt", "fp16"),
    ("tensorrt", "int8"),
    ("onnxruntime-cuda", "fp32"),
)
# Generated frames (another seed than the timed ones) the INT8 rows calibrate on.
CALIB_FRAMES = 32
FRAMES = {1: 200, 32: 320}
WARMUP = 3


@dataclass
class Row(StageTotals):
    """One timed configuration (milliseconds per frame)."""

    model: str
    runtime: str
    precision: str
    batch: int
    pre_ms: float
    network_ms: float
    post_ms: float
    command: str

    @staticmethod
    def from_result(result: BenchmarkResult, runtime: str, precision: str, command: str) -> Row:
        return Row(
            result.config, runtime, precision, result.batch_size, result.pre_ms,
            result.network_ms, result.post_ms, command,
        )  # fmt: skip


def markdown(device: str, notes: Sequence[str], rows: Sequence[Row], skipped: Sequence[str]) -> str:
    """The report: a heading, the device, notes, one table row per :class:`Row`, the skips."""
    lines = ["# GPU benchmarks", "", f"Device: {device}.", ""]
    for note in notes:
        lines += [note, ""]
    lines += [
        "| model | runtime | precision | batch | pre ms | network ms | post ms | total ms "
        "| FPS | command |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.runtime} | {r.precision} | {r.batch} | {r.pre_ms:.2f} "
            f"| {r.network_ms:.2f} | {r.post_ms:.2f} | {r.total_ms:.2f} | {r.fps:.1f} "
            f"| `{r.command}` |"
        )
    if skipped:
        lines += ["", "Not measured:", ""] + [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def random_checkpoint(
    config: str, folder: str, frames: Sequence[np.ndarray], device: str = "cuda"
) -> str:
    """``folder/<config>_random_bn.pth``: random weights, BatchNorm calibrated on ``frames``."""
    from yolact import registry

    path = os.path.join(folder, f"{config}_random_bn.pth")
    torch.manual_seed(0)
    cfg = registry.get_config(config)
    predictor = registry.build_predictor(cfg, device=device)
    calibrate_batchnorm(predictor.model, predictor.run_pre(list(frames)))
    state = {k: v.cpu() for k, v in predictor.model.state_dict().items()}
    torch.save(
        {"model": state, "config": cfg.to_dict(), "class_names": list(cfg.class_names)}, path
    )
    return path


def eval_command(model_file: str, precision: str, batch: int) -> str:
    """The eval.py command that times the same configuration (for an ONNX file eval.py
    takes TensorRT where onnxruntime has it, else the CUDA provider)."""
    flags = [f"--trained_model={model_file}", "--benchmark", f"--max_images={FRAMES[batch]}"]
    flags.append(f"--video_multiframe={batch}")
    if precision.startswith("fp16"):
        flags.append("--half")
    if "graph" in precision:
        flags.append("--cuda_graph")
    return "python eval.py " + " ".join(flags)


def build(
    runtime: str, precision: str, checkpoint: str, onnx: str | None, device: str = "cuda"
) -> Predictor:
    """The predictor of a row, with eval.py's defaults (top_k 5, fast NMS, masks)."""
    from yolact import registry

    half = precision.startswith("fp16")
    if precision == "int8":  # an INT8 file: TensorRT builds INT8 kernels from its Q/DQ scales
        assert onnx is not None
        return registry.load_predictor(onnx, device=device, top_k=5, nms_method="fast",
                                       tensorrt=True)  # fmt: skip
    if runtime == "pytorch":
        return registry.load_predictor(
            checkpoint, device=device, top_k=5, nms_method="fast", half=half,
            cuda_graph="graph" in precision,
        )  # fmt: skip
    assert onnx is not None
    return registry.load_predictor(
        onnx, device=device, top_k=5, nms_method="fast", half=half,
        tensorrt=runtime == "tensorrt",
    )  # fmt: skip


def run_pytest(folder: str, timeout_s: float) -> str:
    """``pytest -m gpu tests/gpu`` into ``folder/pytest_gpu.txt``; returns its summary line."""
    out = os.path.join(folder, "pytest_gpu.txt")
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rs",
           "-p", "no:cacheprovider"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout_s)  # fmt: skip
        text = done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        partial = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else ""
        text = f"{partial}\nstopped after {timeout_s:.0f} s\n"
    with open(out, "w", encoding="utf-8") as f:
        f.write(" ".join(cmd) + "\n\n" + text)
    last = [line for line in text.strip().splitlines() if line.strip()]
    return last[-1] if last else "no output"


def _export(checkpoint: str, folder: str) -> str:
    from yolact.export import export

    return export(checkpoint, os.path.join(folder, "model.onnx"), "onnx",
                  dynamic_batch=True, check=False, log=False)  # fmt: skip


def _export_int8(checkpoint: str, folder: str, model: str) -> str:
    """``model``'s INT8 ONNX file, calibrated on :data:`CALIB_FRAMES` generated frames."""
    calib = write_frames(synthetic_frames(CALIB_FRAMES, seed=11), os.path.join(folder, "calib"))
    return export_int8_onnx(checkpoint, os.path.join(folder, f"{model}_int8"), calib, CALIB_FRAMES)


def int8_agreement(folder: str, device: str, providers: Sequence[str], left_s: float) -> str:
    """TensorRT INT8 against float32 on the demo model (:func:`demo_int8_agreement`), or
    why it was not checked."""
    if "TensorrtExecutionProvider" not in providers:
        return "not checked: onnxruntime has no TensorrtExecutionProvider"
    if left_s <= 0:
        return "not checked: past the time budget"
    try:
        return demo_int8_agreement(os.path.join(folder, "int8_agreement"), device)[0]
    except Exception as e:  # noqa: BLE001 (reported, not fatal)
        line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"failed: {type(e).__name__}: {line}"


def _providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def device_line(device: str = "cuda") -> str:
    """The GPU's name and the software that ran on it."""
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    providers = ", ".join(_providers()) or "onnxruntime not installed"
    return (
        f"{name} (torch {torch.__version__}, CUDA {torch.version.cuda}; "
        f"onnxruntime providers: {providers})"
    )


def run_report(
    folder: str,
    budget_s: float,
    tests_timeout_s: float,
    *,
    device: str = "cuda",
    models: Sequence[str] = MODELS,
) -> int:
    """Everything ``tools/gpu_report.py`` says; returns the exit code.

    Args:
        device: where to run ("cpu" only checks the report's own code: the fp16 and
            CUDA graph rows are then listed as not measured, with the reason).
        models: the configs to time.
    """
    start = time.perf_counter()
    os.makedirs(folder, exist_ok=True)
    if tests_timeout_s > 0:
        print("running pytest -m gpu tests/gpu ...", flush=True)
        print(f"pytest: {run_pytest(folder, tests_timeout_s)}", flush=True)
    providers = _providers()
    frames = {b: synthetic_frames(n, seed=0) for b, n in FRAMES.items()}
    rows: list[Row] = []
    skipped: list[str] = []
    checkpoints = {m: random_checkpoint(m, folder, frames[1][:8], device) for m in models}
    exported: dict[str, str] = {}
    exported_int8: dict[str, str] = {}
    # Every PyTorch row first, then the exported ones, whose engines take long to build.
    for runtime, precision in VARIANTS:
        for model in models:
            checkpoint, onnx = checkpoints[model], exported.get(model)
            for batch in BATCHES:
                what = f"{model} {runtime} {precision} batch {batch}"
                provider = {"tensorrt": "TensorrtExecutionProvider",
                            "onnxruntime-cuda": "CUDAExecutionProvider"}.get(runtime)  # fmt: skip
                if provider is not None and provider not in providers:
                    skipped.append(f"{what}: onnxruntime has no {provider}")
                    continue
                if precision.startswith("fp16") and not device.startswith("cuda"):
                    skipped.append(f"{what}: fp16 needs CUDA (on the CPU --half is bfloat16)")
                    continue
                if time.perf_counter() - start > budget_s:
                    skipped.append(f"{what}: past the time budget of {budget_s:.0f} s")
                    continue
                try:
                    if precision == "int8":
                        if model not in exported_int8:
                            exported_int8[model] = _export_int8(checkpoint, folder, model)
                        onnx = exported_int8[model]
                    elif provider is not None and onnx is None:
                        onnx = _export(checkpoint, os.path.join(folder, f"{model}_onnx"))
                        exported[model] = onnx
                    predictor = build(runtime, precision, checkpoint, onnx, device)
                    result = run_benchmark(predictor, frames[batch], WARMUP, batch)
                except Exception as e:  # noqa: BLE001 (a row that fails is reported, not fatal)
                    line = str(e).strip().splitlines()[0] if str(e).strip() else ""
                    skipped.append(f"{what}: {type(e).__name__}: {line}")
                    continue
                finally:
                    if device.startswith("cuda"):
                        torch.cuda.empty_cache()
                command = eval_command(onnx if provider and onnx else checkpoint, precision, batch)
                rows.append(Row.from_result(result, runtime, precision, command))
                print(f"{what}: {rows[-1].fps:.1f} FPS", flush=True)
    agreement = int8_agreement(folder, device, providers, budget_s - (time.perf_counter() - start))
    print(agreement, flush=True)
    notes = [
        ", ".join(f"{FRAMES[b]} frames at batch {b}" for b in BATCHES) + ", 640x480 synthetic "
        f"(yolact.data.scenes.synthetic_frames), {WARMUP} warm-up batches excluded; "
        "ms per frame; FPS = frames (images) per second over the three stages.",
        "Random weights with BatchNorm statistics measured on the frames; top_k 5, fast NMS, "
        "masks pasted at the image size (eval.py's defaults). TensorRT and the CUDA "
        "provider run the exported ONNX file through onnxruntime; for that file eval.py "
        "takes TensorRT where onnxruntime has it (`--backends=onnxruntime` leaves it out).",
        "TensorRT INT8: the model exported with `yolact export --int8` (onnxruntime's QDQ "
        f"quantization, scales measured on {CALIB_FRAMES} other generated frames), run with "
        "`trt_int8_enable` (the scales taken from the Q/DQ nodes, no calibration table).",
        f"INT8 agreement: {agreement}",
        "Run: `python tools/gpu_report.py --out DIR`; pytest output in DIR/pytest_gpu.txt.",
    ]
    path = os.path.join(folder, "gpu_benchmarks.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(markdown(device_line(device), notes, rows, skipped))
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python tools/gpu_report.py", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--out", required=True, metavar="DIR", help="where the report is written")
    p.add_argument(
        "--budget_s",
        type=float,
        default=420.0,
        help="rows that would start later than this are listed as not measured",
    )
    p.add_argument("--tests_timeout_s", type=float, default=180.0,
                   help="stop pytest after this long (0: skip the tests)")  # fmt: skip
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "error: the GPU report needs a CUDA device; torch sees none here "
            f"(torch {torch.__version__})",
            file=sys.stderr,
        )
        return 1
    return run_report(a.out, a.budget_s, a.tests_timeout_s)


if __name__ == "__main__":
    sys.exit(main())
