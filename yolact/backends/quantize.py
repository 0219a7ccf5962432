"""INT8 post-training quantization of an exported graph, the network only.

The exported graph is the network (backbone, FPN, ProtoNet, prediction heads: the
``/model/`` scope of the traced module's node names) followed by the
post-processing (box decoding, Fast NMS and mask assembly: ``/post/``, and the
loose nodes the exporter names after their op). Only the network is quantized; the
post-processing stays in float: its sorting, IoU matrix and mask product gain
nothing from INT8 and would lose ranks and edges.

- OpenVINO: NNCF post-training quantization (:func:`quantize_openvino`), with
  everything outside the network, and the FPN (:data:`KEEP_FLOAT`), in NNCF's
  ignored scope, and NNCF's full bias correction (not its fast one).
- ONNX: onnxruntime's static quantization (:func:`quantize_onnx`), QDQ format,
  signed 8-bit activations and weights, per-channel weights, the network's nodes
  alone (less the FPN) given to quantize.

:func:`onnx_int8_summary` and :func:`openvino_int8_summary` walk a quantized graph
and say which convolutions run in INT8 and whether any post-processing does.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from yolact.backends.meta import META_KEY, ExportMeta
from yolact.core.family import ExportError

# The name scope of the network's nodes in an exported graph (the traced wrapper's
# ``model`` attribute); every other node is post-processing.
NETWORK_SCOPE = "/model/"
# An NNCF ignored-scope pattern that matches every node outside the network.
OUTSIDE_NETWORK = r"^(?!/model/).*"
# The network's layers kept in float too: the FPN. Quantizing its sums and
# convolutions moved a few of the demo model's boxes by 4-6 px (of 160) and a
# mask to IoU 0.87 against float32; with the FPN in float every detection agrees
# within 3 px and IoU 0.9 but for the few that float32 itself moves under +-2 grey
# levels of noise (docs/benchmarks.md, INT8). Regular expressions on node names.
KEEP_FLOAT = (r"^/model/fpn/",)
# onnxruntime: the network's ops given to quantize. Conv is where the time goes;
# Add (the residual joins and the FPN's sums), the FPN's Resize and the stem's
# MaxPool take their inputs' scales, so no float round trip falls between convs.
ONNX_QUANTIZED_OPS = ("Conv", "Add", "Resize", "MaxPool")


def is_network_node(name: str) -> bool:
    """Whether a node of an exported graph belongs to the network (not post-processing)."""
    return name.startswith(NETWORK_SCOPE)


def is_quantized_node(name: str) -> bool:
    """Whether a node of an exported graph is given to quantize: the network's, less
    :data:`KEEP_FLOAT`."""
    return is_network_node(name) and not any(re.match(p, name) for p in KEEP_FLOAT)


class _Batches:
    """onnxruntime's CalibrationDataReader over pre-processed batches."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray]) -> None:
        self.input_name = input_name
        self.batches = list(batches)
        self.items: Iterator[np.ndarray] = iter(self.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.items, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self.items = iter(self.batches)


def quantize_onnx(src: str, dst: str, batches: Sequence[np.ndarray], meta: ExportMeta) -> None:
    """Write ``src`` (an exported float32 ONNX file) as a QDQ INT8 file ``dst`` with
    ``meta`` in its metadata: S8S8, per-channel weights, MinMax ranges over
    ``batches``, the network's :data:`ONNX_QUANTIZED_OPS` only."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(src)
    network = [n.name for n in model.graph.node if is_quantized_node(n.name)]
    outside = [n.name for n in model.graph.node if not is_quantized_node(n.name)]
    reader = _Batches(model.graph.input[0].name, batches)
    CalibrationDataReader.register(_Batches)
    with tempfile.TemporaryDirectory() as scratch, QuietLogs():
        # quantize_static writes its augmented model beside the input; a scratch copy
        # keeps that out of the user's folder.
        source = os.path.join(scratch, "float.onnx")
        onnx.save(model, source)
        try:
            quantize_static(
                source, dst, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                op_types_to_quantize=list(ONNX_QUANTIZED_OPS), nodes_to_quantize=network,
                nodes_to_exclude=outside, calibrate_method=CalibrationMethod.MinMax,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 (onnxruntime raises many kinds)
            raise ExportError(f"onnxruntime's quantization failed: {_first_line(e)}") from None
    quantized = onnx.load(dst)
    kept = [p for p in quantized.metadata_props if p.key != META_KEY]
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(kept)
    entry = quantized.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()
    onnx.save(quantized, dst)


class QuietLogs:
    """Quiet NNCF and onnxruntime while they work: their INFO logging (a line per
    node) and warnings raised to errors, NNCF's progress bars (drawn on stdout)
    kept off the screen, and torch's note on a missing CUDA that importing NNCF
    prints."""

    LOGGERS = ("nncf", "", "torch.utils.cpp_extension")

    def __enter__(self) -> None:
        self.levels = {}
        for name in self.LOGGERS:
            logger = logging.getLogger(name or None)
            self.levels[name] = logger.level
            logger.setLevel(logging.ERROR)
        self.stdout = contextlib.redirect_stdout(io.StringIO())
        self.stdout.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.stdout.__exit__(None, None, None)
        for name, level in self.levels.items():
            logging.getLogger(name or None).setLevel(level)


def import_nncf() -> Any:
    """``import nncf``, quietly (:class:`QuietLogs`)."""
    with QuietLogs():
        import nncf
    return nncf


def nncf_ignored_scope() -> Any:
    """NNCF's ignored scope: every node outside the network, and :data:`KEEP_FLOAT`."""
    nncf = import_nncf()
    patterns = [OUTSIDE_NETWORK, *(p + ".*" for p in KEEP_FLOAT)]
    return nncf.IgnoredScope(patterns=patterns, validate=False)


def quantize_openvino(model: Any, batches: Sequence[np.ndarray]) -> Any:
    """NNCF post-training quantization of an OpenVINO model (``openvino.Model``) over
    ``batches``, the network alone (:func:`nncf_ignored_scope`).

    Returns:
        The quantized ``openvino.Model``.
    """
    nncf = import_nncf()
    try:
        with QuietLogs():
            return nncf.quantize(
                model, nncf.Dataset(list(batches)), subset_size=len(batches),
                ignored_scope=nncf_ignored_scope(), fast_bias_correction=False,
            )  # fmt: skip
    except Exception as e:  # noqa: BLE001 (NNCF and OpenVINO raise many kinds)
        raise ExportError(f"NNCF's quantization failed: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    """The first line of an error, at most 300 characters."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


@dataclass
class Int8Summary:
    """Where a graph runs in INT8.

    Attributes:
        convs: the network's convolutions; quantized: those of them in INT8
            (INT8 weights and an INT8 input).
        post_ops: the post-processing's compute nodes (not constants).
        quantized_post: post-processing nodes that take or feed quantized values.
    """

    convs: list[str]
    quantized: list[str]
    post_ops: list[str]
    quantized_post: list[str]

    def line(self) -> str:
        post = (
            "post-processing in float"
            if not self.quantized_post
            else f"{len(self.quantized_post)} post-processing node(s) quantized"
        )
        return (
            f"{len(self.quantized)}/{len(self.convs)} convolutions in INT8, {post} "
            f"({len(self.post_ops)} nodes)"
        )


def onnx_int8_summary(path: str) -> Int8Summary:
    """Walk a QDQ ONNX graph: a Conv is quantized when its input and weights come
    from DequantizeLinear; a post-processing node is quantized when it is a Q/DQ
    node or takes an input from one (an Identity that only hands a parameter to the
    network's convolutions is the network's, not post-processing)."""
    import onnx

    graph = onnx.load(path).graph
    producer = {out: node for node in graph.node for out in node.output}
    qdq = ("QuantizeLinear", "DequantizeLinear")

    def from_dq(name: str) -> bool:
        node = producer.get(name)
        return node is not None and node.op_type == "DequantizeLinear"

    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node.name)

    def weight_carrier(node: Any) -> bool:
        # The exporter's loose Identity nodes that hand one deduplicated parameter (the
        # zero biases of random weights, say) to several of the network's convolutions.
        users = [u for o in node.output for u in consumers.get(o, [])]
        return node.op_type == "Identity" and bool(users) and all(map(is_network_node, users))

    convs = [n for n in graph.node if n.op_type == "Conv" and is_network_node(n.name)]
    quantized = [n.name for n in convs if from_dq(n.input[0]) and from_dq(n.input[1])]
    post = [
        n for n in graph.node
        if n.op_type not in (*qdq, "Constant") and not is_network_node(n.name)
        and not weight_carrier(n)
    ]  # fmt: skip
    qdq_inputs = {i for n in graph.node if n.op_type in qdq for i in n.input}
    post_outputs = {o for n in post for o in n.output}
    bad = [n.name for n in post if any(from_dq(i) for i in n.input)]
    bad += [o for o in post_outputs if o in qdq_inputs]
    return Int8Summary([n.name for n in convs], quantized, [n.name for n in post], bad)


# Ops an INT8 input passes through unchanged on its way to a convolution.
_PASS_THROUGH = ("MaxPool", "Reshape", "Transpose", "Concat")
_QUANTIZERS = ("FakeQuantize", "FakeConvert")


def _ov_int8_weights(node: Any) -> bool:
    """Weights that are a quantizer's output, or an INT8 constant decompressed."""
    while node.get_type_name() in ("Multiply", "Subtract", "Convert", "Reshape"):
        node = node.input_value(0).get_node()
    if node.get_type_name() in _QUANTIZERS:
        return True
    return node.get_type_name() == "Constant" and str(node.get_element_type()) in (
        "<Type: 'int8_t'>", "<Type: 'uint8_t'>", "i8", "u8",
    )  # fmt: skip


def _ov_int8_input(node: Any) -> bool:
    while node.get_type_name() in _PASS_THROUGH:
        node = node.input_value(0).get_node()
    return bool(node.get_type_name() in _QUANTIZERS)


def openvino_int8_summary(model: Any) -> Int8Summary:
    """Walk an OpenVINO model (``openvino.Model``, or the path of its .xml): a
    Convolution is quantized when its input comes from a FakeQuantize/FakeConvert
    and its weights are quantized; a post-processing node is quantized when it is
    a quantizer, or a quantizer feeds it or is fed by it."""
    if isinstance(model, str):
        import openvino as ov

        model = ov.Core().read_model(model)
    ops = list(model.get_ordered_ops())
    convs = [op for op in ops if op.get_type_name() == "Convolution"
             and is_network_node(op.get_friendly_name())]  # fmt: skip
    quantized = [
        op.get_friendly_name() for op in convs
        if _ov_int8_input(op.input_value(0).get_node())
        and _ov_int8_weights(op.input_value(1).get_node())
    ]  # fmt: skip
    skip = ("Constant", "Parameter", "Result", *_QUANTIZERS)
    post = [op for op in ops if op.get_type_name() not in skip
            and not is_network_node(op.get_friendly_name())]  # fmt: skip
    bad = []
    for op in post:
        inputs = [op.input_value(i).get_node() for i in range(op.get_input_size())]
        consumers = [t.get_node() for out in op.outputs() for t in out.get_target_inputs()]
        if any(n.get_type_name() in _QUANTIZERS for n in (*inputs, *consumers)):
            bad.append(op.get_friendly_name())
    return Int8Summary(
        [op.get_friendly_name() for op in convs], quantized,
        [op.get_friendly_name() for op in post], bad,
    )  # fmt: skip
