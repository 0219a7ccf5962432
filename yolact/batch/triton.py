"""A Triton Inference Server model repository for an exported model.

::

    python -m yolact.export --trained_model=W --output=yolact.onnx --dynamic_batch
    python -m yolact.batch.triton --model=yolact.onnx --repo=models --max_batch=8
    tritonserver --model-repository=models

writes ``models/<name>/config.pbtxt`` and ``models/<name>/1/model.onnx`` (the
onnxruntime backend), or ``1/model.xml`` and ``1/model.bin`` with
``--backend=openvino`` (from an OpenVINO export, or converted from the ONNX
file), or ``1/model.onnx`` and ``1/model.py`` with ``--backend=python`` (Triton's
Python backend running the graph with onnxruntime, for servers that have only
that backend, as the one PyTriton bundles: :mod:`yolact.batch.triton_model`),
and ``<name>/yolact_meta.json`` (the export's metadata: classes, input
size, normalisation, for clients). The config names the graph's real inputs and
outputs with their data types and shapes, read from the file; a graph exported
with ``--dynamic_batch`` gets ``max_batch_size`` and ``dynamic_batching``, one
with a fixed batch only ``--max_batch=0`` (no batching by the server).

The model folder is written beside its place and then moved there; an existing
one is replaced only when it holds nothing but what this writer writes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from yolact.backends.meta import (
    OPENVINO_BIN,
    OPENVINO_XML,
    ExportedFileError,
    exported_format,
    read_meta,
)
from yolact.backends.writes import WriteError, check_writable_folder, write_folder

BACKENDS = ("onnxruntime", "openvino", "python")
PYTHON_MODEL = "model.py"
META_FILE = "yolact_meta.json"
CONFIG_FILE = "config.pbtxt"
VERSION = "1"
# ONNX TensorProto element types -> Triton data types.
ONNX_TYPES = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 5: "TYPE_INT16",
              6: "TYPE_INT32", 7: "TYPE_INT64", 9: "TYPE_BOOL", 10: "TYPE_FP16",
              11: "TYPE_FP64", 16: "TYPE_BF16"}  # fmt: skip
# OpenVINO element type names -> Triton data types.
OPENVINO_TYPES = {"f32": "TYPE_FP32", "f16": "TYPE_FP16", "bf16": "TYPE_BF16",
                  "f64": "TYPE_FP64", "u8": "TYPE_UINT8", "i8": "TYPE_INT8",
                  "i32": "TYPE_INT32", "i64": "TYPE_INT64", "boolean": "TYPE_BOOL"}  # fmt: skip


class TritonError(ValueError):
    """A model or a repository that cannot be used; one line."""


@dataclass(frozen=True)
class Tensor:
    """A graph input or output: its name, Triton data type and shape (-1: any size)."""

    name: str
    data_type: str
    shape: tuple[int, ...]


def onnx_tensors(path: str) -> tuple[list[Tensor], list[Tensor]]:
    """The inputs and outputs of an ONNX file."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}

    def spec(value: onnx.ValueInfoProto) -> Tensor:
        kind = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim)
        if kind.elem_type not in ONNX_TYPES:
            raise TritonError(f"{path}: {value.name} has an ONNX type ({kind.elem_type}) "
                              "that Triton does not take")  # fmt: skip
        return Tensor(value.name, ONNX_TYPES[kind.elem_type], dims)

    inputs = [spec(v) for v in graph.input if v.name not in initializers]
    return inputs, [spec(v) for v in graph.output]


def openvino_tensors(xml: str) -> tuple[list[Tensor], list[Tensor]]:
    """The inputs and outputs of an OpenVINO model.xml."""
    import openvino as ov

    model = ov.Core().read_model(xml)

    def spec(port: object) -> Tensor:
        name = port.get_any_name()  # type: ignore[attr-defined]
        kind = port.get_element_type().get_type_name()  # type: ignore[attr-defined]
        dims = tuple(
            d.get_length() if d.is_static else -1
            for d in port.get_partial_shape()  # type: ignore[attr-defined]
        )
        if kind not in OPENVINO_TYPES:
            raise TritonError(f"{xml}: {name} has an element type ({kind}) Triton does not take")
        return Tensor(name, OPENVINO_TYPES[kind], dims)

    return [spec(p) for p in model.inputs], [spec(p) for p in model.outputs]


def _block(tensor: Tensor, batched: bool) -> str:
    dims = tensor.shape[1:] if batched else tensor.shape
    lines = [f'    name: "{tensor.name}"', f"    data_type: {tensor.data_type}"]
    if batched and not dims:  # a [batch] tensor: one value an item
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    else:
        lines.append(f"    dims: [ {', '.join(map(str, dims))} ]")
    return "  {\n" + "\n".join(lines) + "\n  }"


def config_text(
    name: str,
    backend: str,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    max_batch: int,
    instances: int = 1,
    kind: str = "KIND_CPU",
    queue_delay_us: int = 1000,
) -> str:
    """The ``config.pbtxt`` text (protobuf text format of Triton's ModelConfig).

    Args:
        max_batch: the server's largest batch (> 0: the first dimension of every
            tensor is the batch, left out of ``dims``, and requests are batched
            dynamically); 0: no batching, full shapes.
        instances, kind: the ``instance_group`` (model copies, KIND_CPU or KIND_GPU).
        queue_delay_us: how long the dynamic batcher waits to fill a batch.
    """
    batched = max_batch > 0
    parts = [f'name: "{name}"', f'backend: "{backend}"', f"max_batch_size: {max_batch}"]
    if backend == "openvino":
        parts.append(f'default_model_filename: "{OPENVINO_XML}"')
    parts.append("input [\n" + ",\n".join(_block(t, batched) for t in inputs) + "\n]")
    parts.append("output [\n" + ",\n".join(_block(t, batched) for t in outputs) + "\n]")
    if batched:
        parts.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}")
    parts.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]")
    return "\n".join(parts) + "\n"


def _check_batch(model: str, tensors: Sequence[Tensor], max_batch: int) -> None:
    if max_batch < 0:
        raise TritonError(f"--max_batch must be 0 (no batching) or more, got {max_batch}")
    fixed = [t.name for t in tensors if not t.shape or t.shape[0] != -1]
    if max_batch > 0 and fixed:
        raise TritonError(
            f"{model} has a fixed batch size ({fixed[0]}); export it with --dynamic_batch "
            "for Triton's dynamic batching, or give --max_batch=0"
        )


def _check_target(target: str) -> None:
    """An existing model folder is replaced only when it holds this writer's files."""
    if not os.path.lexists(target):
        return
    if not os.path.isdir(target) or os.path.islink(target):
        raise TritonError(f"{target} exists and is not a folder; give another --name or --repo")
    ours = {CONFIG_FILE, META_FILE, "model.onnx", PYTHON_MODEL, OPENVINO_XML, OPENVINO_BIN}
    for root, dirs, files in os.walk(target):
        rel = os.path.relpath(root, target)
        if rel != "." and not (rel.isdigit() and not dirs):
            raise TritonError(f"{target} holds other files than a model folder ({rel}); "
                              "remove them or give another --name")  # fmt: skip
        foreign = sorted(set(files) - ours)
        if foreign:
            raise TritonError(f"{target} holds other files than a model folder "
                              f"({foreign[0]}); remove them or give another --name")  # fmt: skip


def _default_name(model: str) -> str:
    base = os.path.basename(os.path.normpath(model))
    for suffix in (".onnx", "_openvino_model"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base


def _fill(tmp: str, model: str, fmt: str, backend: str, config: str, meta_json: str) -> None:
    """Write the model folder's files into ``tmp``."""
    version = os.path.join(tmp, VERSION)
    os.mkdir(version)
    if backend in ("onnxruntime", "python"):
        shutil.copyfile(model, os.path.join(version, "model.onnx"))
        if backend == "python":
            here = os.path.dirname(os.path.abspath(__file__))
            shutil.copyfile(os.path.join(here, "triton_model.py"),
                            os.path.join(version, PYTHON_MODEL))  # fmt: skip
    elif fmt == "openvino":
        for name in (OPENVINO_XML, OPENVINO_BIN):
            shutil.copyfile(os.path.join(model, name), os.path.join(version, name))
    else:
        import openvino as ov

        ov.save_model(ov.convert_model(model), os.path.join(version, OPENVINO_XML),
                      compress_to_fp16=False)  # fmt: skip
    for name, text in ((CONFIG_FILE, config), (META_FILE, meta_json)):
        with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
            f.write(text)


def write_repository(
    model: str,
    repo: str,
    *,
    backend: str = "onnxruntime",
    name: str | None = None,
    max_batch: int = 8,
    instances: int = 1,
    gpu: bool = False,
) -> str:
    """Write ``repo/<name>/`` for the exported ``model`` (see the module doc).

    Returns:
        The model folder written.

    Raises:
        TritonError, ExportedFileError, WriteError: in one line; ``repo`` is then
            as it was.
    """
    if backend not in BACKENDS:
        raise TritonError(f"--backend must be onnxruntime, openvino or python, got {backend!r}")
    if instances < 1:
        raise TritonError(f"--instances must be at least 1, got {instances}")
    fmt = exported_format(model)
    if fmt is None or not os.path.exists(model):
        raise TritonError(
            f"{model} is not an exported model (an .onnx file or an *_openvino_model "
            "folder written by python -m yolact.export)"
        )
    if fmt == "openvino" and backend != "openvino":
        raise TritonError(f"{model} is an OpenVINO model; give --backend=openvino or the .onnx")
    meta = read_meta(model)
    if fmt == "onnx":
        inputs, outputs = onnx_tensors(model)
    else:
        inputs, outputs = openvino_tensors(os.path.join(model, OPENVINO_XML))
    _check_batch(model, [*inputs, *outputs], max_batch)
    name = name or _default_name(model)
    if not name or name.startswith(".") or os.sep in name or name.isdigit():
        raise TritonError(f"--name must be a plain folder name, got {name!r}")
    target = os.path.join(repo, name)
    _check_target(target)
    check_writable_folder(repo)
    config = config_text(name, backend, inputs, outputs, max_batch, instances,
                         "KIND_GPU" if gpu else "KIND_CPU")  # fmt: skip
    write_folder(target, lambda tmp: _fill(tmp, model, fmt, backend, config, meta.to_json()))
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m yolact.batch.triton``; returns the exit code (1, one line, on errors)."""
    p = argparse.ArgumentParser(prog="python -m yolact.batch.triton",
                                description="Write a Triton model repository entry for an "
                                "exported model.")  # fmt: skip
    p.add_argument("--model", required=True, help="the .onnx file or *_openvino_model folder")
    p.add_argument("--repo", required=True, help="the model repository folder")
    p.add_argument("--backend", default="onnxruntime",
                   help="onnxruntime (default), openvino, or python (onnxruntime inside "
                   "Triton's Python backend)")  # fmt: skip
    p.add_argument("--name", default=None, help="the model's name (default: the file's stem)")
    p.add_argument("--max_batch", type=int, default=8,
                   help="largest batch the server forms (default 8; 0: no batching)")  # fmt: skip
    p.add_argument("--instances", type=int, default=1, help="model instances (default 1)")
    p.add_argument("--gpu", action="store_true", help="instances on the GPU (KIND_GPU)")
    a = p.parse_args(argv)
    try:
        target = write_repository(
            a.model, a.repo, backend=a.backend, name=a.name, max_batch=a.max_batch,
            instances=a.instances, gpu=a.gpu,
        )  # fmt: skip
    except (TritonError, ExportedFileError, WriteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    serve = f"tritonserver --model-repository={a.repo}"
    print(f"wrote {target} ({a.backend} backend); serve it: {serve}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
