"""The runtimes that run an exported graph: onnxruntime and OpenVINO."""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod

import numpy as np

from yolact.backends.meta import OPENVINO_XML, ExportedFileError, ExportMeta, exported_format


class Runtime(ABC):
    """One loaded graph: a [B, 3, S, S] input -> the graph's outputs as numpy arrays.

    Attributes:
        name: the runtime, as benchmarks print it ("onnxruntime", "openvino").
        device: where it runs ("cpu", "cuda").
    """

    name: str
    device: str

    @abstractmethod
    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs in :data:`yolact.core.padded.OUTPUT_NAMES` order."""


def _cannot_run_deformable(path: str, runtime: str) -> ExportedFileError:
    return ExportedFileError(
        f"{path} holds deformable convolutions (ONNX DeformConv), which {runtime} cannot "
        "run; run it with TensorRT, or use the PyTorch checkpoint"
    )


class OnnxRuntime(Runtime):
    """onnxruntime, with its CUDA provider for ``device="cuda"`` when present (else
    the CPU, with a note)."""

    name = "onnxruntime"

    def __init__(self, path: str, meta: ExportMeta, device: str = "cpu", threads: int = 0) -> None:
        import onnxruntime as ort

        if meta.deformable:
            raise _cannot_run_deformable(path, "onnxruntime")
        providers = ["CPUExecutionProvider"]
        self.device = "cpu"
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
                self.device = "cuda"
            else:
                print(
                    "note: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu); "
                    "running on the CPU",
                    file=sys.stderr,
                )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Idle workers sleep instead of spinning, which would take the cores from the
        # post-processing that follows each run on the same process.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as e:  # noqa: BLE001 (onnxruntime raises its own kinds)
            line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportedFileError(f"{path}: onnxruntime cannot load it: {line}") from None
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return list(self.session.run(None, {self.input_name: batch}))


class OpenVinoRuntime(Runtime):
    """OpenVINO on the CPU (another ``device`` is noted and ignored)."""

    name = "openvino"

    def __init__(self, path: str, meta: ExportMeta, device: str = "cpu", threads: int = 0) -> None:
        import openvino as ov

        if meta.deformable:
            raise _cannot_run_deformable(path, "OpenVINO")
        if device != "cpu":
            print(f"note: OpenVINO models run on the CPU here, not {device}", file=sys.stderr)
        self.device = "cpu"
        xml = os.path.join(path, OPENVINO_XML) if os.path.isdir(path) else path
        core = ov.Core()
        # f32, not the bf16 some CPUs default to: the same detections as PyTorch.
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = core.compile_model(core.read_model(xml), "CPU", config)
        except Exception as e:  # noqa: BLE001 (OpenVINO raises RuntimeError subclasses)
            line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportedFileError(f"{path}: OpenVINO cannot load it: {line}") from None
        self.request = self.compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        result = self.request.infer({0: batch})
        return [np.asarray(result[out]) for out in self.compiled.outputs]


def open_runtime(path: str, meta: ExportMeta, device: str = "cpu", threads: int = 0) -> Runtime:
    """The runtime for an exported file (its format tells which).

    Args:
        threads: the runtime's intra-op threads; 0 leaves its default.

    Raises:
        ExportedFileError: it cannot run here, in one line.
    """
    if exported_format(path) == "openvino":
        return OpenVinoRuntime(path, meta, device, threads)
    return OnnxRuntime(path, meta, device, threads)
