"""``python -m yolact.export --int8``: the float32 graph, quantized over calibration
images (the network only; :mod:`yolact.backends.quantize`), checked against the
float32 graph on the spot (:mod:`yolact.backends.agreement`) and, for OpenVINO,
optionally held within a mask AP drop (:mod:`yolact.backends.accuracy`).

A quantized graph whose detections disagree with float32 beyond the tolerances
of :mod:`yolact.backends.agreement` is refused in one line, and nothing is
written (``--no_check`` skips the check, for random weights say).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from yolact.backends.agreement import Agreement, compare_graphs
from yolact.backends.calib import DEFAULT_CALIB_SIZE, calibration_batches, calibration_files
from yolact.backends.meta import OPENVINO_META, OPENVINO_XML, ExportMeta
from yolact.backends.quantize import (
    ONNX_QUANTIZED_OPS,
    import_nncf,
    onnx_int8_summary,
    openvino_int8_summary,
    quantize_onnx,
    quantize_openvino,
)
from yolact.backends.runtimes import (
    CompiledOpenVino,
    OnnxRuntime,
    OpenVinoRuntime,
    Runtime,
    signal_stack_kept,
)
from yolact.core.config import ModelConfig
from yolact.core.family import ExportError

if TYPE_CHECKING:
    from yolact.backends.accuracy import AccuracyReport

# Calibration batches the INT8 graph is checked on against float32.
CHECK_IMAGES = 8


@dataclass
class Int8Options:
    """The ``--int8`` flags.

    Attributes:
        calib: an image folder, a COCO annotation file or a dataset name.
        calib_size: the most calibration images.
        calib_images: the image folder of an annotation-file ``calib``.
        max_ap_drop: the mask AP drop (0-1) accuracy control keeps within (OpenVINO).
        val_ann, val_images: the validation set accuracy control measures AP on.
        val_max_images: its first this many images (-1: all).
    """

    calib: str | None
    calib_size: int = DEFAULT_CALIB_SIZE
    calib_images: str | None = None
    max_ap_drop: float | None = None
    val_ann: str | None = None
    val_images: str | None = None
    val_max_images: int = -1


def check_int8_options(opts: Int8Options, fmt: str, half: bool) -> list[str]:
    """Check the flags before any work.

    Returns:
        The calibration image files.

    Raises:
        ExportError: in one line (CalibrationError for the images).
    """
    if opts.calib is None:
        raise ExportError(
            "--int8 needs --calib=IMAGE_DIR (or a COCO annotation file, or a dataset name) "
            "to calibrate on"
        )
    if half:
        raise ExportError(
            "--int8 and --half do not go together: an INT8 export keeps its float parts in "
            "float32 (run it with --half for bfloat16 there)"
        )
    if opts.max_ap_drop is not None:
        if fmt != "openvino":
            raise ExportError(
                "--max_ap_drop is NNCF's accuracy control, for --format=openvino only"
            )
        if not (0 < opts.max_ap_drop < 1):
            raise ExportError(f"--max_ap_drop is a mask AP drop in (0, 1), not {opts.max_ap_drop}")
        if not (opts.val_ann and opts.val_images):
            raise ExportError("--max_ap_drop needs --val_ann and --val_images to measure AP on")
        for flag, path in (("--val_ann", opts.val_ann), ("--val_images", opts.val_images)):
            if not os.path.exists(path):
                raise ExportError(f"{flag} {path}: no such file or folder")
    return calibration_files(opts.calib, opts.calib_size, opts.calib_images)


def check_plain_options(opts: Int8Options) -> None:
    """Without ``--int8``: refuse its flags in one line (ExportError)."""
    given = [
        flag for flag, value in (
            ("--calib", opts.calib), ("--calib_images", opts.calib_images),
            ("--max_ap_drop", opts.max_ap_drop), ("--val_ann", opts.val_ann),
            ("--val_images", opts.val_images),
        ) if value is not None
    ]  # fmt: skip
    if given:
        raise ExportError(f"{', '.join(given)} go(es) with --int8")


def int8_meta(meta: ExportMeta, facts: dict[str, Any]) -> ExportMeta:
    """``meta`` marked INT8, with ``facts`` as its ``quantization``."""
    extra = {**meta.extra, "precision": "int8", "quantization": facts}
    return dataclasses.replace(meta, extra=extra)


def _calibration_facts(opts: Int8Options, files: Sequence[str], tool: str) -> dict[str, Any]:
    source = os.path.basename(os.path.normpath(opts.calib or ""))
    return {
        "tool": tool,
        "calibration": {"source": source, "images": len(files)},
        "post_processing": "float",
    }


def _agreement(float_rt: Runtime, int8_rt: Runtime, batches: Sequence[np.ndarray],
               input_size: int) -> Agreement:  # fmt: skip
    sample = list(batches[:CHECK_IMAGES])
    return compare_graphs(
        [float_rt.run(b) for b in sample], [int8_rt.run(b) for b in sample], input_size
    )


def _checked(agreement: Agreement) -> str:
    """The agreement's line; ExportError where it is beyond the tolerances."""
    if not agreement.within_tolerance():
        raise ExportError(
            f"refused: {agreement.line()}; beyond the tolerance ({agreement.tolerance_line()}); "
            "nothing written (calibrate on images like the model's, or --no_check)"
        )
    return agreement.line()


def compiled_float(onnx_path: str) -> Runtime:
    """An ONNX file converted and compiled by OpenVINO in float32."""
    import openvino as ov

    model = ov.convert_model(onnx_path)
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    with signal_stack_kept():  # as OpenVinoRuntime does
        return CompiledOpenVino(ov.Core().compile_model(model, "CPU", config))


def write_int8_onnx(
    float_path: str, out: str, meta: ExportMeta, files: Sequence[str], opts: Int8Options,
    check: bool = True,
) -> list[str]:  # fmt: skip
    """Quantize the float32 ONNX file ``float_path`` into ``out`` (onnxruntime, QDQ,
    S8S8, per-channel weights) and check it.

    Returns:
        The lines to print: the graph's INT8 summary and the agreement.
    """
    import onnxruntime as ort

    batches = calibration_batches(files, meta)
    tool = f"onnxruntime {ort.__version__} quantize_static (QDQ, S8S8, per-channel weights, MinMax)"
    facts = _calibration_facts(opts, files, tool)
    facts["quantized_ops"] = list(ONNX_QUANTIZED_OPS)
    quantize_onnx(float_path, out, batches, int8_meta(meta, facts))
    lines = [onnx_int8_summary(out).line()]
    if check:
        agreement = _agreement(OnnxRuntime(float_path, meta), OnnxRuntime(out, meta), batches,
                               meta.input_size)  # fmt: skip
        lines.append(_checked(agreement))
        facts["agreement"] = agreement.as_dict()
        quantize_meta_onnx(out, int8_meta(meta, facts))
    return lines


def quantize_meta_onnx(path: str, meta: ExportMeta) -> None:
    """Replace the yolact metadata of the ONNX file ``path``."""
    import onnx

    from yolact.backends.meta import META_KEY

    model = onnx.load(path)
    for prop in model.metadata_props:
        if prop.key == META_KEY:
            prop.value = meta.to_json()
    onnx.save(model, path)


def _quantize_openvino(
    model: Any, batches: Sequence[np.ndarray], meta: ExportMeta, cfg: ModelConfig,
    opts: Int8Options,
) -> tuple[Any, AccuracyReport | None]:  # fmt: skip
    """NNCF's quantization, under accuracy control with ``opts.max_ap_drop``."""
    if opts.max_ap_drop is None:
        return quantize_openvino(model, batches), None
    from yolact.backends.accuracy import MaskApValidator, quantize_with_ap_control

    assert opts.val_ann is not None and opts.val_images is not None  # checked up front
    validator = MaskApValidator(opts.val_ann, opts.val_images, cfg, meta, opts.val_max_images)
    return quantize_with_ap_control(model, batches, validator, opts.max_ap_drop)


def write_int8_openvino(
    onnx_path: str, folder: str, meta: ExportMeta, cfg: ModelConfig, files: Sequence[str],
    opts: Int8Options, check: bool = True,
) -> list[str]:  # fmt: skip
    """Convert the float32 ONNX file to OpenVINO, quantize it with NNCF (under
    accuracy control with ``opts.max_ap_drop``) into ``folder`` and check it.

    Returns:
        The lines to print.
    """
    import openvino as ov

    nncf = import_nncf()
    model = ov.convert_model(onnx_path)
    batches = calibration_batches(files, meta)
    facts = _calibration_facts(opts, files, f"nncf {nncf.__version__} quantize")
    lines: list[str] = []
    with signal_stack_kept():  # NNCF compiles models on this thread
        quantized, control = _quantize_openvino(model, batches, meta, cfg, opts)
    if control is not None:
        facts["tool"] = f"nncf {nncf.__version__} quantize_with_accuracy_control"
        facts["accuracy_control"] = control.as_dict()
        lines.append(control.line())
    ov.save_model(quantized, os.path.join(folder, OPENVINO_XML), compress_to_fp16=False)
    lines.insert(0, openvino_int8_summary(quantized).line())
    if check:
        with signal_stack_kept():
            config = {"INFERENCE_PRECISION_HINT": "f32"}
            float_rt = CompiledOpenVino(ov.Core().compile_model(model, "CPU", config))
        agreement = _agreement(float_rt, OpenVinoRuntime(folder, meta), batches, meta.input_size)
        lines.append(_checked(agreement))
        facts["agreement"] = agreement.as_dict()
    with open(os.path.join(folder, OPENVINO_META), "w", encoding="utf-8") as f:
        f.write(int8_meta(meta, facts).to_json())
    return lines


def add_int8_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--int8`` flags."""
    p.add_argument("--int8", action="store_true", help="quantize the network to INT8")
    p.add_argument(
        "--calib", help="calibration images: a folder, a COCO annotation file or a dataset name"
    )
    p.add_argument("--calib_size", type=int, default=DEFAULT_CALIB_SIZE,
                   help=f"the most calibration images (default {DEFAULT_CALIB_SIZE})")  # fmt: skip
    p.add_argument("--calib_images", help="the image folder of a --calib annotation file")
    p.add_argument("--max_ap_drop", type=float,
                   help="accuracy control (openvino): the mask AP drop (0-1) to keep")  # fmt: skip
    p.add_argument("--val_ann", help="accuracy control: the COCO validation annotations")
    p.add_argument("--val_images", help="accuracy control: their image folder")
    p.add_argument("--val_max_images", type=int, default=-1,
                   help="accuracy control: the first this many images (default all)")  # fmt: skip


def int8_options(a: argparse.Namespace) -> Int8Options | None:
    """The parsed ``--int8`` flags; None without ``--int8``.

    Raises:
        ExportError: an ``--int8`` flag without ``--int8``, in one line.
    """
    opts = Int8Options(
        a.calib, a.calib_size, a.calib_images, a.max_ap_drop, a.val_ann, a.val_images,
        a.val_max_images,
    )  # fmt: skip
    if not a.int8:
        check_plain_options(opts)
        return None
    return opts
