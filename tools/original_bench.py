"""This project against the original YOLACT code, on the CPU, on the same frames and weights.

::

    python tools/original_bench.py --original_repo=PATH [--trained_model=W] --images=N

``PATH`` is a checkout of the original code (dbolya/yolact), imported in this
process, unedited, on the CPU (``tools/original_code.py``).

Without ``--trained_model`` the model gets random weights, written in the
original key layout by this project's own writer
(:func:`yolact.models.yolact.weights.save_weights`) and read by both sides.

Every timed call goes from a BGR uint8 frame to full-resolution masks at
batch 1. The original's path is its ``eval.py`` display path: ``FastBaseTransform``,
the network with Fast NMS, ``postprocess`` (every detection's mask upsampled
and binarised, score threshold 0) and the ``top_k`` best by score (5). This
project's predictors run with the same ``top_k`` and score threshold. The
backends take turns frame by frame (interleaved), after untimed warm-up frames.
The detections of every backend are compared with the original's: the same
classes, boxes within 1 pixel.

``pytorch_bf16`` and ``openvino_bf16`` are those backends with ``--half``, which
on the CPU is bfloat16 (where it has the instructions: AVX512-BF16 or AMX).

``openvino_int8`` and ``onnxruntime_int8`` are INT8 exports (``yolact export --int8``:
NNCF, and onnxruntime's static QDQ quantization) calibrated on ``--calib_size``
generated 640x480 frames (not the timed ones), unchecked against float32 at export
(random weights give nothing to compare; the agreement lines below still compare
every row with the original); ``openvino_int8_bf16`` is the OpenVINO INT8 file with
the bfloat16 hint on its float parts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from load_bench import busy_process
from original_code import (
    FrameDetections,
    OriginalCodeError,
    Runner,
    is_original_checkout,
    load_original,
    not_a_checkout,
    original_detections,
    original_runner,
    write_original_weights,
)

BACKENDS = (
    "original", "pytorch", "onnxruntime", "openvino", "pytorch_bf16", "openvino_bf16",
    "openvino_int8", "onnxruntime_int8", "openvino_int8_bf16",
)  # fmt: skip
# The float32 ones; the bfloat16 ones join them by default where the CPU has bfloat16,
# and OpenVINO INT8 always (onnxruntime INT8 and the INT8 + bf16 hint on request).
FLOAT32_BACKENDS = BACKENDS[:4]
BF16_BACKENDS = BACKENDS[4:6]
INT8_BACKENDS = BACKENDS[6:7]
# Generated frames the INT8 rows are calibrated on by default.
CALIB_FRAMES = 32


RANDOM_BF16_NOTE = (
    "bf16 rows on random weights: the top_k kept are the best of many near-equal random "
    "scores, which bfloat16's rounding reorders, so they need not match; give "
    "--trained_model to compare trained weights"
)
RANDOM_INT8_NOTE = (
    "int8 rows on random weights: as for bf16, INT8 rounding reorders the many "
    "near-equal random scores, so their top_k need not match the original's"
)


def default_backends() -> tuple[str, ...]:
    """The float32 backends, the bfloat16 ones where the CPU has bfloat16 instructions,
    and OpenVINO INT8."""
    from yolact.runtime.gpu import cpu_has_bf16

    return FLOAT32_BACKENDS + (BF16_BACKENDS if cpu_has_bf16() else ()) + INT8_BACKENDS


BOX_TOLERANCE_PX = 1.0


@dataclass
class Backend:
    """A way to run frames: ``run`` is timed, ``to_detections`` turns its result
    into :class:`FrameDetections` afterwards (untimed)."""

    name: str
    run: Runner
    to_detections: Callable[[Any], FrameDetections]


def predictor_detections(det: Any) -> FrameDetections:
    """A predictor's :class:`~yolact.core.structures.Detections` as :class:`FrameDetections`."""
    return FrameDetections(
        det.boxes.float().numpy(),
        det.labels.long().numpy(),
        det.scores.float().numpy(),
        None if det.masks is None else det.masks.numpy().astype(bool),
    )


@dataclass
class Agreement:
    """How one backend's detections compare with the reference's over the frames."""

    frames: int = 0
    frames_equal: int = 0
    detections: int = 0
    matched: int = 0
    max_box_px: float = 0.0
    min_mask_iou: float = 1.0

    def line(self, name: str, reference: str) -> str:
        verdict = "agree" if self.frames_equal == self.frames else "DIFFER"
        return (
            f"{name} vs {reference}: {verdict}: {self.frames_equal}/{self.frames} frames with "
            f"the same classes and boxes within {BOX_TOLERANCE_PX:g} px; {self.matched}/"
            f"{self.detections} detections matched, max box difference {self.max_box_px:g} px, "
            f"min mask IoU {self.min_mask_iou:.3f}"
        )


def compare_frame(ref: FrameDetections, other: FrameDetections, agreement: Agreement) -> None:
    """Add one frame to ``agreement``: each reference detection is matched to an
    unmatched one of ``other`` with its class and every box edge within
    :data:`BOX_TOLERANCE_PX` (closest first)."""
    agreement.frames += 1
    agreement.detections += len(ref.classes)
    free = list(range(len(other.classes)))
    matched = 0
    for i in range(len(ref.classes)):
        best, best_d = -1, float("inf")
        for j in free:
            if other.classes[j] != ref.classes[i]:
                continue
            d = float(np.abs(other.boxes[j] - ref.boxes[i]).max())
            if d <= BOX_TOLERANCE_PX and d < best_d:
                best, best_d = j, d
        if best < 0:
            continue
        free.remove(best)
        matched += 1
        agreement.max_box_px = max(agreement.max_box_px, best_d)
        if ref.masks is not None and other.masks is not None:
            a, b = ref.masks[i], other.masks[best]
            union = np.logical_or(a, b).sum()
            iou = float(np.logical_and(a, b).sum() / union) if union else 1.0
            agreement.min_mask_iou = min(agreement.min_mask_iou, iou)
    agreement.matched += matched
    if matched == len(ref.classes) == len(other.classes):
        agreement.frames_equal += 1


@dataclass
class SideBySide:
    """Per-frame milliseconds of each backend (interleaved) and their agreement with
    the first backend (the reference for the speed-up too)."""

    ms: dict[str, list[float]]
    agreement: dict[str, Agreement]
    frame_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    def median(self, name: str) -> float:
        return float(np.median(self.ms[name]))

    def rows(self) -> list[tuple[str, float, float, float, str]]:
        """(backend, median ms, mean ms, FPS, speed-up over the first backend) per backend."""
        names = list(self.ms)
        base = self.median(names[0])
        return [
            (
                n, self.median(n), float(np.mean(self.ms[n])), 1000.0 / self.median(n),
                f"{base / self.median(n):.2f}x",
            )
            for n in names
        ]  # fmt: skip

    def table(self) -> str:
        head = f"{'backend':<14} {'median ms':>10} {'mean ms':>9} {'FPS':>7} {'speed-up':>9}"
        lines = [head]
        lines += [f"{n:<14} {m:>10.1f} {a:>9.1f} {f:>7.2f} {s:>9}" for n, m, a, f, s in self.rows()]
        lines += [a.line(n, next(iter(self.ms))) for n, a in self.agreement.items()]
        return "\n".join(lines + self.notes)

    def markdown(self) -> str:
        first = next(iter(self.ms))
        lines = [
            f"| backend | median ms/frame | mean ms/frame | FPS | speed-up over {first} |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| {n} | {m:.1f} | {a:.1f} | {f:.2f} | {s} |" for n, m, a, f, s in self.rows()]
        extra = [a.line(n, first) for n, a in self.agreement.items()] + self.notes
        return "\n".join(lines) + ("\n\n" + "\n".join(f"- {x}" for x in extra) if extra else "")


def run_side_by_side(
    backends: Sequence[Backend], frames: Sequence[np.ndarray], warmup: int = 2
) -> SideBySide:
    """Time every backend on every frame, taking turns frame by frame (the order
    rotates each frame), after ``warmup`` untimed frames each; then compare each
    backend's detections with the first's.

    Raises:
        ValueError: no backends or no frames.
    """
    if not backends or not frames:
        raise ValueError("side by side needs at least one backend and one frame")
    for i in range(warmup):
        for b in backends:
            b.run(frames[i % len(frames)])
    ms: dict[str, list[float]] = {b.name: [] for b in backends}
    results: dict[str, list[Any]] = {b.name: [] for b in backends}
    for i, frame in enumerate(frames):
        turn = i % len(backends)
        for b in list(backends[turn:]) + list(backends[:turn]):
            t0 = time.perf_counter()
            out = b.run(frame)
            ms[b.name].append((time.perf_counter() - t0) * 1000.0)
            results[b.name].append(out)
    ref = backends[0]
    agreement: dict[str, Agreement] = {}
    for b in backends[1:]:
        agreement[b.name] = Agreement()
        for r, o in zip(results[ref.name], results[b.name]):
            compare_frame(ref.to_detections(r), b.to_detections(o), agreement[b.name])
    H, W = frames[0].shape[:2]
    return SideBySide(ms, agreement, (H, W))


def generated_calibration(folder: str, count: int = CALIB_FRAMES) -> str:
    """``count`` generated 640x480 frames (another seed than the timed ones) written
    as PNG files to ``folder``/calib, for the INT8 rows to calibrate on."""
    import cv2

    from yolact.data.scenes import synthetic_frames

    calib = os.path.join(folder, "calib")
    os.makedirs(calib, exist_ok=True)
    for i, frame in enumerate(synthetic_frames(count, 480, 640, seed=11)):
        cv2.imwrite(os.path.join(calib, f"{i:04d}.png"), frame)
    return calib


def project_backends(
    weights: str,
    config: str,
    names: Sequence[str],
    folder: str,
    top_k: int,
    calib_size: int = CALIB_FRAMES,
) -> list[Backend]:
    """This project's predictors for ``names`` (pytorch, onnxruntime, openvino;
    ``<name>_bf16`` for ``--half``, ``<name>_int8`` for an INT8 export) on ``weights``,
    with the process's thread plan; the exported graphs are written under ``folder``,
    once per format and precision (INT8: calibrated on ``calib_size`` generated frames,
    unchecked)."""
    from yolact.backends.int8_export import Int8Options
    from yolact.export import export
    from yolact.registry import load_predictor

    out = []
    exported: dict[str, str] = {}
    for name in names:
        runtime, *precision = name.split("_")
        source = weights
        if runtime in ("onnxruntime", "openvino"):
            fmt = "onnx" if runtime == "onnxruntime" else "openvino"
            int8 = "int8" in precision
            kind = fmt + ("_int8" if int8 else "")
            if kind not in exported:
                options = None
                if int8:
                    calib = generated_calibration(folder, calib_size)
                    options = Int8Options(calib, calib_size)
                exported[kind] = export(
                    weights, os.path.join(folder, f"{config}_{kind}.onnx"), fmt, config=config,
                    check=False, log=False, int8=options,
                )  # fmt: skip
            source = exported[kind]
        predictor = load_predictor(source, config=config, device="cpu", top_k=top_k,
                                   half="bf16" in precision)  # fmt: skip
        out.append(Backend(name, predictor, predictor_detections))
    return out


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _build_backends(a: argparse.Namespace, names: list[str], folder: str) -> list[Backend]:
    """The backends ``names`` in that order, on ``--trained_model`` or random weights."""
    weights = a.trained_model or write_original_weights(
        a.config, os.path.join(folder, f"{a.config}_0_0.pth")
    )
    backends: list[Backend] = []
    if "original" in names:
        code = load_original(a.original_repo, a.config, weights)
        backends.append(Backend("original", original_runner(code, a.top_k), original_detections))
    ours = [n for n in names if n != "original"]
    backends += project_backends(weights, a.config, ours, folder, a.top_k, a.calib_size)
    return sorted(backends, key=lambda b: names.index(b.name))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python tools/original_bench.py",
        description="This project against the original YOLACT code on the CPU, side by side.",
    )
    p.add_argument("--original_repo", default="", help="a checkout of dbolya/yolact")
    p.add_argument("--trained_model", help="an original-layout checkpoint (default: random)")
    p.add_argument("--config", default="yolact_base", help="config name (default yolact_base)")
    p.add_argument("--images", type=int, default=10, help="timed 640x480 frames")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames per backend")
    p.add_argument("--backends", default=None,
                   help="comma-separated, in order, of " + ", ".join(BACKENDS) + " (default: "
                   "the first four, the bf16 ones where the CPU has bfloat16, and "
                   "openvino_int8)")  # fmt: skip
    p.add_argument(
        "--calib_size",
        type=int,
        default=CALIB_FRAMES,
        help=f"generated frames the int8 rows calibrate on (default {CALIB_FRAMES})",
    )
    p.add_argument("--top_k", type=int, default=5, help="detections kept (eval.py's 5)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: plan)")
    p.add_argument("--busy", action="store_true", help="beside a spinning python process")
    p.add_argument("--markdown", help="also write the table to this markdown file")
    a = p.parse_args(argv)
    text = ",".join(default_backends()) if a.backends is None else a.backends
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in BACKENDS]
    if bad or not names or names.count("original") > 1 or len(set(names)) < len(names):
        print(f"error: --backends takes distinct names of {', '.join(BACKENDS)}", file=sys.stderr)
        return 2
    if a.images < 1 or a.warmup < 0:
        print("error: --images must be at least 1 and --warmup at least 0", file=sys.stderr)
        return 2
    if a.calib_size < 1:
        print("error: --calib_size must be at least 1", file=sys.stderr)
        return 2
    if "original" in names and not is_original_checkout(a.original_repo):
        print(f"error: {not_a_checkout(a.original_repo)}", file=sys.stderr)
        return 1
    if a.trained_model and not os.path.isfile(a.trained_model):
        print(f"error: {a.trained_model}: no such file", file=sys.stderr)
        return 2

    from yolact.core.weights import CheckpointError
    from yolact.data.scenes import synthetic_frames
    from yolact.runtime.threads import configure_threads

    with busy_process(a.busy):  # started first, so that the thread plan sees it
        try:
            plan = configure_threads(a.threads)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory(prefix="original_bench_") as folder:
            try:
                backends = _build_backends(a, names, folder)
            except (OriginalCodeError, CheckpointError, ValueError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            before = _load_average()
            result = run_side_by_side(backends, synthetic_frames(a.images, 480, 640), a.warmup)
            after = _load_average()
    H, W = result.frame_size
    result.notes.append(
        f"{a.config}, {'checkpoint ' + a.trained_model if a.trained_model else 'random weights'}"
        f", {len(result.ms[names[0]])} frames of {W}x{H}, batch 1, top_k {a.top_k}, score "
        f"threshold 0; {plan.intra_op} intra-op threads ({plan.source})"
        f"{', beside a busy process' if a.busy else ''}; load average {before} -> {after}"
    )
    if not a.trained_model and any(n.endswith("_bf16") for n in names):
        result.notes.append(RANDOM_BF16_NOTE)
    if not a.trained_model and any("_int8" in n for n in names):
        result.notes.append(RANDOM_INT8_NOTE)
    print(result.table())
    if a.markdown:
        with open(a.markdown, "w", encoding="utf-8") as f:
            f.write(result.markdown() + "\n")
        print(f"wrote {a.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
