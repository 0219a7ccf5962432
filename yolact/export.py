"""Export a model to ONNX or OpenVINO: network, box decoding, Fast NMS and masks
at prototype resolution in one graph, checked against PyTorch on the spot::

    python -m yolact.export --trained_model=weights/yolact_tiny_synthetic.pth \\
        --format=onnx --output=yolact_tiny.onnx
    python -m yolact.export --trained_model=W --format=openvino --output=out/yolact_tiny
        (writes out/yolact_tiny_openvino_model/)

The graph takes the normalised [B, 3, S, S] batch and returns ``boxes`` [B, D, 4]
(relative x1 y1 x2 y2), ``scores``, ``box_scores``, ``classes`` [B, D],
``masks`` [B, D, h, w] (soft, cropped) and ``count`` [B]; the file's metadata
holds the config, class names, input size and normalisation. Exported files run
like checkpoints: ``eval.py --trained_model=model.onnx``,
``Predictor.from_checkpoint("model_openvino_model")``.

Only a PyTorch checkpoint (or ``--config`` for random weights) is exported: an
exported file holds no weights to export again, and is refused in one line. The
output is written beside its place under a temporary name, checked, and only then
moved over an earlier export of the same name.

``--int8 --calib=IMAGE_DIR`` quantizes the network to INT8 (NNCF for OpenVINO,
onnxruntime's static QDQ quantization for ONNX), the post-processing kept in
float, and checks the result against float32 (:mod:`yolact.backends.int8_export`).

YOLACT++'s deformable convolutions are written as ONNX DeformConv (opset 19),
which only TensorRT runs today: such a file is exported unchecked, and
onnxruntime/OpenVINO refuse it in one line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from yolact.backends.int8_export import (
    Int8Options,
    add_int8_arguments,
    check_int8_options,
    compiled_float,
    int8_options,
    write_int8_onnx,
    write_int8_openvino,
)
from yolact.backends.meta import (
    META_KEY,
    OPENVINO_BIN,
    OPENVINO_META,
    OPENVINO_SUFFIX,
    OPENVINO_XML,
    ExportedFileError,
    ExportMeta,
    exported_format,
    read_meta,
)
from yolact.backends.onnx_ops import DEFORM_CONV_OPSET, register_deform_conv
from yolact.backends.runtimes import OnnxRuntime, OpenVinoRuntime, Runtime, runtime_error_line
from yolact.backends.writes import (
    WriteError,
    check_replaceable_file,
    check_replaceable_folder,
    check_writable_folder,
    write_file,
    write_folder,
)
from yolact.core.config import ConfigError
from yolact.core.family import ExportError, ExportSpec
from yolact.core.padded import OUTPUT_NAMES
from yolact.core.preprocess import SquarePreprocessor
from yolact.core.weights import CheckpointError
from yolact.io.outputs import same_file
from yolact.registry import family_of, resolve_config
from yolact.runtime.threads import ThreadsError, configure_threads

OPSET = 17
# What an OpenVINO model folder holds; an existing output folder with anything else
# is not replaced.
OPENVINO_FILES = (OPENVINO_XML, OPENVINO_BIN, OPENVINO_META)


def _example_batch(spec: ExportSpec, batch: int) -> torch.Tensor:
    """A drawn scene, pre-processed, repeated to ``batch`` (some detections to check)."""
    from yolact.data.scenes import synthetic_frames

    frames = synthetic_frames(batch, 240, 320, seed=1)
    pre = SquarePreprocessor(spec.input_size, spec.pixel_mean, spec.pixel_std, spec.channels)
    return pre(frames)


def compare_outputs(
    ref: Sequence[np.ndarray], got: Sequence[np.ndarray], tol: float = 1e-3
) -> tuple[float, str]:
    """How well an exported graph's outputs match PyTorch's.

    Every detection of ``ref`` is matched to one of ``got`` in the same image with
    the same class, boxes within ``tol`` (relative) and scores within ``tol``.

    Returns:
        (fraction of detections matched, a one-line summary).
    """
    boxes_r, scores_r, _, classes_r, masks_r, count_r = ref
    boxes_g, scores_g, _, classes_g, masks_g, count_g = got
    matched = total = 0
    worst_mask = 0.0
    for b in range(len(count_r)):
        n, m = int(count_r[b]), int(count_g[b])
        total += n
        if n == 0 or m == 0:
            continue
        same = (
            (classes_r[b, :n, None] == classes_g[b, None, :m])
            & (np.abs(boxes_r[b, :n, None] - boxes_g[b, None, :m]).max(-1) <= tol)
            & (np.abs(scores_r[b, :n, None] - scores_g[b, None, :m]) <= tol)
        )  # [n, m]
        hit = same.any(axis=1)
        matched += int(hit.sum())
        j = same.argmax(axis=1)[hit]
        if hit.any():
            diff = np.abs(masks_r[b, :n][hit].astype(np.float32) - masks_g[b, j].astype(np.float32))
            worst_mask = max(worst_mask, float(diff.mean()))
    fraction = matched / total if total else float(np.array_equal(count_r, count_g))
    summary = (
        f"{matched}/{total} detections match PyTorch (boxes and scores within {tol:g}), "
        f"counts {list(map(int, count_r))} vs {list(map(int, count_g))}, "
        f"mean mask difference {worst_mask:.2e}"
    )
    return fraction, summary


def _check(runtime: Runtime, module: torch.nn.Module, x: torch.Tensor, half: bool) -> str:
    with torch.no_grad():
        ref = [t.float().numpy() for t in module(x)]
    got = runtime.run(x.numpy())
    fraction, summary = compare_outputs(ref, got, 1e-2 if half else 1e-3)
    if fraction < 0.99:
        raise ExportError(f"{runtime.name} disagrees with PyTorch: {summary}")
    return f"checked with {runtime.name}: {summary}"


def export_onnx(
    spec: ExportSpec, meta: ExportMeta, path: str, x: torch.Tensor, dynamic_batch: bool
) -> None:
    """Write ``spec.module`` on input ``x`` to ``path`` with ``meta`` in its metadata."""
    import onnx

    opset = OPSET
    if spec.deformable:
        register_deform_conv()
        opset = DEFORM_CONV_OPSET
    axes = None
    if dynamic_batch:
        axes = {name: {0: "batch"} for name in ("images", *OUTPUT_NAMES)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on shape arithmetic
        try:
            torch.onnx.export(
                spec.module, (x,), path, dynamo=False, opset_version=opset,
                input_names=["images"], output_names=list(OUTPUT_NAMES), dynamic_axes=axes,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 (the exporter raises many kinds, with graph dumps)
            line = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise ExportError(f"torch.onnx.export failed: {line}") from None
    model = onnx.load(path)
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()
    onnx.save(model, path)


def openvino_dir(output: str) -> str:
    """``out/name`` or ``out/name.onnx`` -> ``out/name_openvino_model``."""
    base = output.rstrip("/\\")
    if base.endswith(OPENVINO_SUFFIX):
        return base
    root, ext = os.path.splitext(base)
    return (root if ext.lower() in (".onnx", ".xml") else base) + OPENVINO_SUFFIX


def output_path(output: str, fmt: str) -> str:
    """The path ``export`` writes: ``output`` (with ``.onnx`` added if missing), or
    :func:`openvino_dir`."""
    if fmt == "onnx":
        return output if output.lower().endswith(".onnx") else output + ".onnx"
    return openvino_dir(output)


def refuse_exported(path: str | None, task: str) -> None:
    """Refuse an exported file where the weights are needed.

    Raises:
        ExportError: ``path`` is an ``.onnx`` file or an OpenVINO model, in one line.
    """
    fmt = exported_format(path or "")
    if fmt is not None and os.path.exists(path or ""):  # a missing one: "no such file"
        kind = "an ONNX file" if fmt == "onnx" else "an OpenVINO model"
        raise ExportError(
            f"{path} is {kind} written by export, not weights; {task} needs the "
            ".pth checkpoint it was exported from"
        )


def check_output(path: str, fmt: str, inputs: Sequence[str] = ()) -> None:
    """Before any work: the output can be written, and replacing it destroys nothing
    but an earlier export (nor any of ``inputs``).

    Raises:
        WriteError: in one line.
    """
    for source in inputs:
        if os.path.exists(path) and same_file(path, source):
            raise WriteError(
                f"the output {path} would overwrite the input {source}; give another --output"
            )
    if fmt == "onnx":
        check_replaceable_file(path)
    else:
        check_replaceable_folder(path, OPENVINO_FILES)
    check_writable_folder(os.path.dirname(os.path.abspath(path)))


def save_openvino(onnx_path: str, meta: ExportMeta, folder: str, half: bool) -> None:
    """Convert an ONNX file to OpenVINO's model.xml/.bin in the existing ``folder``,
    with ``meta`` in its metadata.json."""
    import openvino as ov

    converted = ov.convert_model(onnx_path)
    ov.save_model(converted, os.path.join(folder, OPENVINO_XML), compress_to_fp16=half)
    with open(os.path.join(folder, OPENVINO_META), "w", encoding="utf-8") as f:
        f.write(meta.to_json())


def onnx_to_openvino(path: str, output: str) -> str:
    """An exported ONNX file as an OpenVINO model (same graph, same metadata).

    Returns:
        The ``*_openvino_model`` folder written.

    Raises:
        ExportedFileError: an unreadable file, or one OpenVINO cannot run.
    """
    meta = read_meta(path)
    if meta.deformable:
        raise ExportedFileError(
            f"{path} holds deformable convolutions (ONNX DeformConv), which OpenVINO cannot run"
        )
    folder = openvino_dir(output)
    try:
        write_folder(folder, lambda tmp: save_openvino(path, meta, tmp, meta.half))
    except RuntimeError as e:  # OpenVINO raises RuntimeError subclasses
        raise ExportedFileError(
            f"{path}: OpenVINO cannot convert it: {runtime_error_line(e)}"
        ) from None
    return folder


def export(
    trained_model: str | None,
    output: str,
    fmt: str = "onnx",
    *,
    config: str | None = None,
    half: bool = False,
    batch: int = 1,
    dynamic_batch: bool = False,
    nms_method: str | None = None,
    check: bool = True,
    log: bool = True,
    int8: Int8Options | None = None,
) -> str:
    """Export a checkpoint (or a config's random weights) and check it.

    The file (or folder) is written under a temporary name beside the output,
    checked there, and only then moved into place (:mod:`yolact.backends.writes`):
    a failure or a failed check leaves whatever the output held before. A missing
    output folder is made.

    With ``int8``, the float32 graph is checked against PyTorch, then quantized
    (:mod:`yolact.backends.int8_export`) and the INT8 graph checked against it.

    Returns:
        The path written (the ``.onnx`` file or the ``*_openvino_model`` directory).

    Raises:
        ExportError, ConfigError, CheckpointError, WriteError: in one line; an
            exported file as ``trained_model`` among them (it holds no weights).
    """
    say = print if log else (lambda *a, **k: None)
    if fmt not in ("onnx", "openvino"):
        raise ExportError(f"unknown format '{fmt}'; use onnx or openvino")
    if batch < 1:
        raise ExportError(f"--batch must be at least 1, got {batch}")
    refuse_exported(trained_model, "export")
    files = check_int8_options(int8, fmt, half) if int8 is not None else []
    path = output_path(output, fmt)
    check_output(path, fmt, [trained_model] if trained_model else [])
    cfg, ckpt = resolve_config(trained_model, config)
    family = family_of(cfg)
    model = family.build_model(cfg, ckpt, trained_model or "checkpoint").eval()
    spec = family.export_spec(model, cfg, nms_method)
    x = _example_batch(spec, 2 if dynamic_batch else batch)
    if half:
        spec.module.half()
        x = x.half()
    meta = ExportMeta(
        config_name=cfg.name,
        config=cfg.to_dict(),
        class_names=list(cfg.class_names),
        input_size=spec.input_size,
        batch=None if dynamic_batch else batch,
        pixel_mean=list(spec.pixel_mean),
        pixel_std=list(spec.pixel_std),
        channels=spec.channels,
        crop=spec.crop,
        crop_padding=spec.crop_padding,
        nms_method=spec.nms_method,
        half=half,
        deformable=spec.deformable,
    )
    checked: list[str] = []
    if int8 is not None and spec.deformable:
        raise ExportError("--int8 cannot quantize YOLACT++'s deformable convolutions")
    if int8 is not None and fmt == "onnx":

        def write_int8(tmp: str) -> None:
            with tempfile.TemporaryDirectory() as scratch:
                float_path = os.path.join(scratch, "float.onnx")
                export_onnx(spec, meta, float_path, x, dynamic_batch)
                if check:
                    checked.append(_check(OnnxRuntime(float_path, meta), spec.module, x, half))
                checked.extend(write_int8_onnx(float_path, tmp, meta, files, int8, check))

        write_file(path, write_int8)
        say(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB, INT8)")
        for line in checked:
            say(line)
        return path
    if fmt == "onnx":

        def verify(tmp: str) -> None:
            if check and not spec.deformable:
                checked.append(_check(OnnxRuntime(tmp, meta), spec.module, x, half))

        write_file(path, lambda tmp: export_onnx(spec, meta, tmp, x, dynamic_batch), verify)
        say(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
        if spec.deformable:
            say("note: the graph holds ONNX DeformConv, which only TensorRT runs; not checked")
        for line in checked:
            say(line)
        return path
    if spec.deformable:
        raise ExportError(
            "OpenVINO cannot run deformable convolutions (ONNX DeformConv); "
            "export YOLACT++ to onnx for TensorRT instead"
        )

    def write(tmp: str) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            onnx_path = os.path.join(scratch, "model.onnx")
            export_onnx(spec, meta, onnx_path, x, dynamic_batch)
            if int8 is None:
                save_openvino(onnx_path, meta, tmp, half)
                return
            if check:
                checked.append(_check(compiled_float(onnx_path), spec.module, x, half))
            checked.extend(write_int8_openvino(onnx_path, tmp, meta, cfg, files, int8, check))

    def verify_folder(tmp: str) -> None:
        if check and int8 is None:
            checked.append(_check(OpenVinoRuntime(tmp, meta), spec.module, x, half))

    write_folder(path, write, verify_folder)
    say(f"wrote {path}/" + (" (INT8)" if int8 is not None else ""))
    for line in checked:
        say(line)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m yolact.export", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--trained_model", help="the checkpoint to export")
    p.add_argument("--config", help="a registered config name (default: from the file)")
    p.add_argument("--format", default="onnx", choices=["onnx", "openvino"])
    p.add_argument("--output", required=True, help="the .onnx file, or the OpenVINO name")
    p.add_argument("--half", action="store_true", help="float16 weights and input")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--batch", type=int, default=1, help="the fixed batch size (default 1)")
    group.add_argument("--dynamic_batch", action="store_true", help="any batch size")
    p.add_argument(
        "--nms_method",
        choices=["fast", "cross_class"],
        help="the NMS in the graph (default: config's)",
    )
    p.add_argument("--no_check", action="store_true", help="skip the check against PyTorch")
    add_int8_arguments(p)
    p.add_argument("--threads", type=int, help="threads for PyTorch (default: the idle cores)")
    a = p.parse_args(argv)
    if a.trained_model is None and a.config is None:
        p.error("give --trained_model (or --config for random weights)")
    try:
        configure_threads(a.threads)
    except ThreadsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        int8 = int8_options(a)
        export(
            a.trained_model, a.output, a.format, config=a.config, half=a.half, batch=a.batch,
            dynamic_batch=a.dynamic_batch, nms_method=a.nms_method, check=not a.no_check,
            int8=int8,
        )  # fmt: skip
    except (ExportError, ExportedFileError, ConfigError, CheckpointError, WriteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
