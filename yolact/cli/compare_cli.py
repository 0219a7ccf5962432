"""``eval.py --benchmark --compare OTHER[,OTHER...]`` and ``--backends=...``: models
and runtimes side by side on the same frames."""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from collections.abc import Callable

from yolact.backends.meta import ExportedFileError, exported_format
from yolact.backends.runtimes import require_tensorrt
from yolact.backends.writes import WriteError, check_writable_folder
from yolact.bench.compare import compare_models
from yolact.cli.predictors import UsageError, benchmark_frames, build_predictor
from yolact.core.family import ExportError
from yolact.core.predictor import Predictor
from yolact.data.coco import CocoDataset, named_dataset
from yolact.engine.evaluate import evaluate_dataset, match_classes
from yolact.runtime.gpu import half_label

# ``--backends`` names -> the export format (None: the PyTorch model itself); tensorrt
# is the ONNX file on onnxruntime's TensorRT provider, onnxruntime the same without it;
# the -int8 ones are exported with --int8 (yolact.bench.int8.calibration_source).
BACKENDS: dict[str, str | None] = {
    "pytorch": None,
    "onnxruntime": "onnx",
    "openvino": "openvino",
    "tensorrt": "onnx",
    "onnxruntime-int8": "onnx",
    "openvino-int8": "openvino",
    "tensorrt-int8": "onnx",
}


def parse_backends(text: str | None) -> list[str]:
    """``"pytorch,openvino"`` -> ``["pytorch", "openvino"]``, in order, once each.

    Raises:
        UsageError: an unknown name, in one line listing the choices.
    """
    names = [n.strip().lower() for n in (text or "").split(",") if n.strip()]
    for n in names:
        if n not in BACKENDS:
            raise UsageError(f"unknown backend '{n}'; choose from {', '.join(BACKENDS)}")
    return list(dict.fromkeys(names))


def _other_args(args: argparse.Namespace, spec: str) -> argparse.Namespace:
    """The flags of a compared model: ``spec`` names a checkpoint, an exported file or a config."""
    other = copy.copy(args)
    if spec.endswith((".pth", ".pt")) or os.path.exists(spec):
        other.trained_model, other.config = spec, None
    else:
        other.trained_model, other.config = None, spec
    return other


def _export_for(
    args: argparse.Namespace, fmt: str, folder: str, int8: bool = False
) -> argparse.Namespace:
    """Export the ``--trained_model``/``--config`` model to ``fmt`` in ``folder`` (in
    INT8 with ``int8``); the flags that load the exported file instead (any batch size)."""
    from yolact.bench.int8 import calibration_source
    from yolact.export import export

    nms = "cross_class" if args.cross_class_nms else ("fast" if args.fast_nms else None)
    quantize, check = calibration_source(args, folder) if int8 else (None, True)
    path = export(args.trained_model, os.path.join(folder, "model"), fmt, config=args.config,
                  dynamic_batch=True, nms_method=nms, log=False, int8=quantize,
                  check=check)  # fmt: skip
    other = copy.copy(args)
    other.trained_model, other.config = path, None
    return other


def _exported_for(args: argparse.Namespace, backend: str, folder: str) -> argparse.Namespace:
    """The flags that run the exported ``--trained_model`` on ``backend``: an ONNX
    file runs on onnxruntime and TensorRT as it is, and on OpenVINO converted (the
    same graph); an OpenVINO model runs on OpenVINO alone; PyTorch needs weights.

    Raises:
        ExportedFileError: a backend that cannot run the file, in one line.
    """
    path = args.trained_model
    source = exported_format(path)
    if backend == "pytorch" or backend.endswith("-int8"):
        kind = "an ONNX file" if source == "onnx" else "an OpenVINO model"
        task = "to time PyTorch" if backend == "pytorch" else "to quantize"
        raise ExportedFileError(
            f"{path} is {kind} without PyTorch weights; give the .pth checkpoint {task}"
        )
    if source == "openvino" and backend != "openvino":
        raise ExportedFileError(f"{path} is an OpenVINO model; {backend} runs .onnx files")
    if backend.startswith("tensorrt"):
        require_tensorrt()
    other = copy.copy(args)
    if source == "onnx" and backend == "openvino":
        from yolact.export import onnx_to_openvino

        other.trained_model = onnx_to_openvino(path, os.path.join(folder, "model"))
    return other


def _backend_flags(args: argparse.Namespace, backend: str, folder: str) -> argparse.Namespace:
    """The flags of ``--backends``'s ``backend`` row: the model itself (pytorch), or
    the model exported to the backend's format in ``folder``; an exported
    ``--trained_model`` is not exported again (:func:`_exported_for`)."""
    fmt = BACKENDS[backend]
    if exported_format(args.trained_model or ""):
        flags = _exported_for(args, backend, folder)
    else:
        if backend.startswith("tensorrt"):
            require_tensorrt()  # before the export, which takes a while
        int8 = backend.endswith("-int8")
        flags = args if fmt is None else _export_for(args, fmt, folder, int8)
    if fmt == "onnx":
        flags.tensorrt = backend.startswith("tensorrt")
    return flags


def _unique(names: list[str]) -> list[str]:
    """Number repeated row names: ``a, a`` -> ``a (1), a (2)``."""
    return [f"{n} ({names[:i].count(n) + 1})" if names.count(n) > 1 else n
            for i, n in enumerate(names)]  # fmt: skip


def _predictors(
    args: argparse.Namespace, build: Callable[[argparse.Namespace], Predictor], folder: str
) -> list[tuple[str, Predictor]]:
    """One predictor per ``--backends`` entry (rows ``<config> (<backend>)``), then one
    per ``--compare`` entry; a backend that cannot run the model (or the exported
    file) is skipped in one line."""
    out: list[tuple[str, Predictor]] = []
    backends = parse_backends(args.backends)
    for backend in backends:
        try:
            predictor = build(_backend_flags(args, backend, os.path.join(folder, backend)))
        except (ExportError, ExportedFileError, WriteError) as e:
            print(f"skipping {backend}: {e}", file=sys.stderr)
            continue
        out.append((f"{predictor.cfg.name} ({backend})", predictor))
    if not backends:
        predictor = build(args)
        out.append((predictor.cfg.name, predictor))
    for spec in (s.strip() for s in (args.compare or "").split(",")):
        if spec:
            predictor = build(_other_args(args, spec))
            out.append((predictor.cfg.name, predictor))
    if not out:
        raise UsageError("no backend can run this model")
    names = _unique([n for n, _ in out])
    return [(n, p) for n, (_, p) in zip(names, out)]


def run_compare(args: argparse.Namespace) -> int:
    """Time every model at batch 1 and ``--benchmark_batch``; with a dataset
    (``--dataset`` or ``--val_ann/--val_images``) also measure their AP."""
    if args.benchmark_batch < 1:
        raise UsageError("--benchmark_batch must be at least 1")
    parse_backends(args.backends)  # a bad name fails before any work
    try:
        check_writable_folder(args.benchmark_dir)  # nor find out after all the work
    except WriteError as e:
        raise UsageError(f"--benchmark_dir: {e}") from None
    dataset = None
    if args.dataset or args.val_ann or args.val_images:
        if not args.dataset and not (args.val_ann and args.val_images):
            raise UsageError("--val_ann and --val_images go together")
        files = named_dataset(args.dataset) if args.dataset else (args.val_ann, args.val_images)
        dataset = CocoDataset(*files)
    # Every model keeps every detection, as for AP, so they all do the same work.
    classes = dataset.class_names if dataset is not None else None
    source = os.path.basename(dataset.ann_file) if dataset is not None else "the dataset"

    def build(flags: argparse.Namespace) -> Predictor:
        return build_predictor(flags, keep_all=True, class_names=classes, class_source=source)

    evaluate = None
    if dataset is not None:

        def evaluate(predictor: Predictor) -> dict | None:
            matched, note = match_classes(dataset, predictor.class_names)
            if note:
                print(note, file=sys.stderr)
            result = evaluate_dataset(predictor, matched, max_images=args.max_images,
                                      progress=not args.no_bar)  # fmt: skip
            return result.metrics

    with tempfile.TemporaryDirectory(prefix="yolact_backends_") as folder:
        models = _predictors(args, build, folder)
        default = 50 if models[0][1].device.type == "cuda" else 8
        count = args.max_images if args.max_images > 0 else default
        frames = benchmark_frames(args, count)
        sizes = (1,) if args.benchmark_batch == 1 else (1, args.benchmark_batch)
        half = half_label(models[0][1].device) if args.half else "fp32"
        precision = half + (", CUDA graph" if args.cuda_graph else "")
        comparison = compare_models(models, frames, batch_sizes=sizes, warmup=args.benchmark_warmup,
                                    evaluate=evaluate, precision=precision)  # fmt: skip
    print(comparison.table())
    try:
        written = comparison.write(args.benchmark_dir)
    except WriteError as e:
        raise UsageError(str(e)) from None
    for path in written:
        print(f"wrote {path}")
    return 0
