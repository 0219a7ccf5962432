"""The runtimes that run an exported graph: onnxruntime (with its TensorRT, CUDA or CPU
provider) and OpenVINO."""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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


TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# An onnxruntime provider: its name, or its name and options.
Provider = str | tuple[str, dict[str, object]]


class TensorRTMissingError(ExportedFileError):
    """TensorRT asked for, but this onnxruntime has no TensorRT provider (one line)."""


def require_tensorrt() -> None:
    """Check that onnxruntime can use TensorRT here.

    Raises:
        TensorRTMissingError: no onnxruntime, or no TensorrtExecutionProvider, in one line.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise TensorRTMissingError(
            "the tensorrt backend needs onnxruntime-gpu; onnxruntime is not installed"
        ) from None
    if TENSORRT not in ort.get_available_providers():
        raise TensorRTMissingError(
            "the tensorrt backend needs onnxruntime's TensorrtExecutionProvider "
            "(onnxruntime-gpu with the TensorRT libraries); this onnxruntime has "
            + ", ".join(ort.get_available_providers())
        )


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def user_cache_dir() -> str:
    """``$XDG_CACHE_HOME/yolact`` (where set to an absolute path), else ``~/.cache/yolact``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "yolact")


def trt_cache_dir(path: str) -> str:
    """Where TensorRT keeps the engines it builds for the ONNX file ``path``:
    ``<user cache>/tensorrt/<sha256 of the file>`` (:func:`user_cache_dir`).

    A TensorRT engine is compiled code that is loaded as it is; a cached engine is
    trusted as much as a program. The cache is therefore not kept beside the model
    (a shared or downloaded folder, where anyone who can write there could plant an
    engine), but in the user's own cache, made private, and keyed by the content of
    the model file, so an engine is only ever reused for the very bytes it was built
    from; a changed or replaced file gets a new engine rather than a stale one.

    Raises:
        ExportedFileError: ``path`` cannot be read, in one line.
    """
    try:
        key = file_sha256(path)
    except OSError as e:
        raise ExportedFileError(f"{path}: cannot read it ({e.strerror or e})") from None
    return os.path.join(user_cache_dir(), "tensorrt", key)


def runtime_error_line(e: BaseException) -> str:
    """The line of a runtime's error that says what went wrong: OpenVINO begins its
    messages with source locations (``Exception from src/...cpp:84:``, ``Check '...'
    failed at ...:887:``), which are skipped."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for line in lines:
        if not re.match(r"^(Exception from |Check '.*' failed at )\S+:\d+:?$", line):
            return line[:300]
    return lines[0][:300] if lines else type(e).__name__


def onnx_providers(
    path: str,
    device: str,
    *,
    half: bool = False,
    tensorrt: bool | None = None,
    int8: bool = False,
) -> list[Provider]:
    """The onnxruntime providers to try, best first.

    On CUDA: TensorRT (fp16 kernels allowed when ``half`` or the file is fp16,
    INT8 kernels for an INT8 file, engines cached under :func:`trt_cache_dir`,
    made here), then CUDA, then the CPU; each only where this onnxruntime has it.
    On the CPU: the CPU alone.

    Args:
        path: the ``.onnx`` file.
        device: "cpu" or "cuda[:N]".
        half: let TensorRT build fp16 kernels.
        tensorrt: True requires TensorRT, False leaves it out, None uses it when present.
        int8: the file is an INT8 export (QDQ): TensorRT builds INT8 kernels
            (``trt_int8_enable``) with the scales the QDQ nodes carry, which
            ``yolact.export --int8`` measured on the calibration images: TensorRT's
            explicit quantization, so no calibration table is read
            (:func:`tensorrt_int8_options`).

    Raises:
        TensorRTMissingError: ``tensorrt`` True where it is not available.
    """
    import onnxruntime as ort

    if tensorrt:
        require_tensorrt()
    if not device.startswith("cuda"):
        if tensorrt:
            raise ExportedFileError(f"the tensorrt backend needs a CUDA device, not {device}")
        return [CPU]
    available = ort.get_available_providers()
    index = int(device.split(":")[1]) if ":" in device else 0
    providers: list[Provider] = []
    if TENSORRT in available and tensorrt is not False:
        cache = trt_cache_dir(path)
        try:
            os.makedirs(cache, mode=0o700, exist_ok=True)
        except OSError as e:
            raise ExportedFileError(
                f"cannot make TensorRT's engine cache {cache}: {e.strerror or e}"
            ) from None
        options: dict[str, object] = {
            "device_id": index,
            "trt_fp16_enable": half,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }
        if int8:
            options.update(tensorrt_int8_options())
        providers.append((TENSORRT, options))
    if CUDA in available:
        providers.append((CUDA, {"device_id": index}))
    return [*providers, CPU]


def tensorrt_int8_options() -> dict[str, object]:
    """TensorRT's options for an INT8 (QDQ) file: INT8 kernels on, and no calibration
    table: the QDQ nodes hold the scales measured on the calibration images
    (explicit quantization; TensorRT 10 deprecates the implicit, table-calibrated
    kind, and would ignore a table for a graph with Q/DQ nodes)."""
    return {"trt_int8_enable": True, "trt_int8_use_native_calibration_table": False}


def _cannot_run_deformable(path: str, runtime: str) -> ExportedFileError:
    return ExportedFileError(
        f"{path} holds deformable convolutions (ONNX DeformConv), which {runtime} cannot "
        "run; run it with TensorRT, or use the PyTorch checkpoint"
    )


class OnnxRuntime(Runtime):
    """onnxruntime with the providers of :func:`onnx_providers`: for ``device="cuda"``
    TensorRT, then CUDA, where present (else the CPU, with a note).

    Args:
        half: TensorRT may build fp16 kernels (also when the file is fp16); refused
            where the session runs on the CPU, which has no fast reduced precision
            in onnxruntime.
        tensorrt: True requires TensorRT, False leaves it out, None uses it when present.

    Raises:
        ExportedFileError: a file or option this onnxruntime cannot run, in one line.

    Attributes:
        providers: the providers of the session, best first.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str,
        meta: ExportMeta,
        device: str = "cpu",
        threads: int = 0,
        *,
        half: bool = False,
        tensorrt: bool | None = None,
    ) -> None:
        import onnxruntime as ort

        providers = onnx_providers(
            path, device, half=half or meta.half, tensorrt=tensorrt,
            int8=meta.precision == "int8",
        )  # fmt: skip
        names = [p if isinstance(p, str) else p[0] for p in providers]
        if meta.deformable and TENSORRT not in names:
            raise _cannot_run_deformable(path, "onnxruntime")
        self.device = "cuda" if names[0] != CPU else "cpu"
        if half and self.device == "cpu":
            raise ExportedFileError(
                f"{path}: onnxruntime runs it in float32 on the CPU; for --half there "
                "(bfloat16) export it with --format=openvino"
            )
        if TENSORRT in names:
            self.name = "tensorrt"
        if device.startswith("cuda") and self.device == "cpu":
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
            line = runtime_error_line(e)
            raise ExportedFileError(f"{path}: onnxruntime cannot load it: {line}") from None
        self.providers = list(self.session.get_providers())
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return list(self.session.run(None, {self.input_name: batch}))


class _SignalStack(ctypes.Structure):
    """``stack_t`` of ``sigaltstack(2)``."""

    _fields_ = [
        ("ss_sp", ctypes.c_void_p),
        ("ss_flags", ctypes.c_int),
        ("ss_size", ctypes.c_size_t),
    ]


@contextmanager
def signal_stack_kept() -> Iterator[None]:
    """Put this thread's alternate signal stack back as it was after the block (Linux).

    OpenVINO's CPU plugin installs an alternate signal stack of its own on the thread
    that first calls it (a capability query, a compile) through an ``openvino.Core``,
    and puts back the stack it found when that Core is freed. Two Cores freed in the
    order they were made leave the thread on the first one's freed stack, and the
    next signal handled there (Ctrl-C, SIGTERM) crashes the process.
    Elsewhere, or where libc cannot be reached, this does nothing.
    """
    libc = None
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            libc = None
    before = _SignalStack()
    if libc is None or libc.sigaltstack(None, ctypes.byref(before)) != 0:
        yield
        return
    try:
        yield
    finally:
        libc.sigaltstack(ctypes.byref(before), None)


def cpu_capabilities(core: Any = None) -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU ("FP32", "BF16", ...), asked
    through ``core`` (an ``openvino.Core``; a new one when None) with the thread's
    signal stack kept (:func:`signal_stack_kept`)."""
    import openvino as ov

    with signal_stack_kept():
        core = ov.Core() if core is None else core
        return [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


def openvino_config(half: bool, threads: int, capabilities: Sequence[str]) -> dict[str, object]:
    """OpenVINO's CPU settings: float32, or bfloat16 with ``half``; ``threads`` if above 0.

    float32 is asked for explicitly, since OpenVINO defaults to bfloat16 on CPUs
    that have it, and float32 gives the same detections as PyTorch.

    Args:
        capabilities: the CPU's ``OPTIMIZATION_CAPABILITIES`` ("BF16" among them
            where it runs bfloat16).

    Raises:
        ExportedFileError: ``half`` on a CPU without "BF16", in one line.
    """
    if half and "BF16" not in capabilities:
        raise ExportedFileError(
            "--half runs OpenVINO in bfloat16, which this CPU lacks (OpenVINO reports "
            f"{', '.join(capabilities) or 'no capabilities'}); run without --half"
        )
    config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "bf16" if half else "f32"}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


class CompiledOpenVino(Runtime):
    """An OpenVINO model compiled elsewhere (NNCF's candidates under accuracy control)."""

    name = "openvino"
    device = "cpu"

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        result = self.request.infer({0: batch})
        return [np.asarray(result[out]) for out in self.compiled.outputs]


class OpenVinoRuntime(CompiledOpenVino):
    """OpenVINO on the CPU (another ``device`` is noted and ignored), in float32 or,
    with ``half``, bfloat16 (:func:`openvino_config`).

    An INT8 export (NNCF's FakeQuantize nodes) runs its quantized convolutions in
    INT8 either way; the hint sets the precision of the rest of the graph.

    Attributes:
        precision: "f32" or "bf16", the inference precision asked for, with
            "int8+" in front for an INT8 export.
    """

    name = "openvino"

    def __init__(
        self, path: str, meta: ExportMeta, device: str = "cpu", threads: int = 0,
        *, half: bool = False,
    ) -> None:  # fmt: skip
        import openvino as ov

        if meta.deformable:
            raise _cannot_run_deformable(path, "OpenVINO")
        if device != "cpu":
            print(f"note: OpenVINO models run on the CPU here, not {device}", file=sys.stderr)
        self.device = "cpu"
        xml = os.path.join(path, OPENVINO_XML) if os.path.isdir(path) else path
        with signal_stack_kept():  # the CPU plugin loads on the first call to it
            core = ov.Core()
            config = openvino_config(half, threads, cpu_capabilities(core))
            try:
                self.compiled = core.compile_model(core.read_model(xml), "CPU", config)
            except Exception as e:  # noqa: BLE001 (OpenVINO raises RuntimeError subclasses)
                line = runtime_error_line(e)
                raise ExportedFileError(f"{path}: OpenVINO cannot load it: {line}") from None
        self.precision = ("int8+" if meta.precision == "int8" else "") + ("bf16" if half else "f32")
        self.request = self.compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        result = self.request.infer({0: batch})
        return [np.asarray(result[out]) for out in self.compiled.outputs]


def open_runtime(
    path: str,
    meta: ExportMeta,
    device: str = "cpu",
    threads: int = 0,
    *,
    half: bool = False,
    tensorrt: bool | None = None,
) -> Runtime:
    """The runtime for an exported file (its format tells which).

    Args:
        threads: the runtime's intra-op threads; 0 leaves its default.
        half: see :class:`OnnxRuntime` and :class:`OpenVinoRuntime`.
        tensorrt: see :class:`OnnxRuntime` (TensorRT runs ONNX files only).

    Raises:
        ExportedFileError: it cannot run here, in one line.
    """
    if exported_format(path) == "openvino":
        if tensorrt:
            raise ExportedFileError(f"{path}: TensorRT runs .onnx files, not OpenVINO models")
        return OpenVinoRuntime(path, meta, device, threads, half=half)
    return OnnxRuntime(path, meta, device, threads, half=half, tensorrt=tensorrt)
