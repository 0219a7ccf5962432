"""Execution options shared by every family: reduced precision (``--half``),
channels_last and CUDA graphs.

``--half`` is float16 on CUDA and bfloat16 on a CPU with bfloat16 instructions
(AVX512-BF16 or AMX), where oneDNN and OpenVINO run convolutions about twice as
fast as in float32.

- :func:`check_gpu_options` refuses, in one line, the options the device cannot run;
- :func:`half_dtype` is the reduced precision of a device;
- :class:`HalfNetwork` runs a network in that precision and hands float32 outputs
  to the post-processing, whose box decoding, IoU, sigmoid and sorting stay in float32;
- :class:`CudaGraphRunner` replays a CUDA graph captured at one batch size, on any
  batch (padded or chunked by :class:`~yolact.runtime.batching.FixedBatchRunner`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from yolact.runtime.batching import BatchFn, FixedBatchRunner, format_of


class GpuOptionError(ValueError):
    """A GPU option that cannot be used here (one line)."""


# CPU flags of native bfloat16 arithmetic: x86's AVX512-BF16 and AMX, Arm's BF16.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def bf16_in_cpuinfo(text: str) -> bool | None:
    """Whether ``/proc/cpuinfo`` text lists a bfloat16 flag; None when it lists no
    flags at all (x86 "flags", Arm "Features")."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return not BF16_FLAGS.isdisjoint(value.split())
    return None


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions: its flags on Linux; elsewhere
    oneDNN's answer (which also says yes where it would emulate them with AVX512)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            listed = bf16_in_cpuinfo(f.read())
    except OSError:
        listed = None
    if listed is not None:
        return listed
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def half_dtype(device: torch.device) -> torch.dtype:
    """The reduced precision ``--half`` runs in: float16 on CUDA, bfloat16 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def half_label(device: torch.device) -> str:
    """``"fp16"`` or ``"bf16"``: :func:`half_dtype` as benchmarks print it."""
    return "fp16" if half_dtype(device) == torch.float16 else "bf16"


def check_gpu_options(
    device: torch.device, *, half: bool = False, cuda_graph: bool = False
) -> None:
    """Refuse reduced precision where the device has none and CUDA graphs off CUDA.

    Raises:
        GpuOptionError: ``half`` on a device that is neither CUDA nor a CPU with
            bfloat16 instructions, or ``cuda_graph`` off CUDA.
    """
    if half and device.type not in ("cuda", "cpu"):
        raise GpuOptionError(f"--half runs on CUDA (fp16) or the CPU (bf16), not {device.type}")
    if half and device.type == "cpu" and not cpu_has_bf16():
        raise GpuOptionError(
            "--half on the CPU runs bfloat16, and this CPU has no bfloat16 instructions "
            "(AVX512-BF16 or AMX); run without --half"
        )
    if cuda_graph and device.type != "cuda":
        raise GpuOptionError(f"--cuda_graph needs a CUDA device; this run is on {device.type}")


def use_channels_last(channels_last: bool | None, half: bool) -> bool:
    """The channels_last setting: ``None`` means on with fp16, off in float32.

    fp16 convolutions run on tensor cores in NHWC, so NCHW would add a transpose
    around each of them; float32 keeps NCHW and with it the reference's kernels.
    """
    return half if channels_last is None else channels_last


def to_float32(value: Any) -> Any:
    """Floating tensors in a nested dict / list / tuple cast to float32 (others unchanged)."""
    if isinstance(value, Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: to_float32(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_float32(v) for v in value)
    return value


class HalfNetwork(nn.Module):
    """A network in reduced precision whose floating outputs come back in float32.

    Args:
        net: the network; converted to ``dtype`` in place.
        keep_float32: names of sub-modules left in float32 (those the float32
            post-processing calls, such as YOLACT++'s mask re-scoring net).
        dtype: float16 (CUDA) or bfloat16 (CPU); see :func:`half_dtype`.
    """

    def __init__(
        self, net: nn.Module, keep_float32: Sequence[str] = (), dtype: torch.dtype = torch.float16
    ) -> None:
        super().__init__()
        self.dtype = dtype
        self.net = net.to(dtype)
        for name in keep_float32:
            sub = getattr(net, name, None)
            if isinstance(sub, nn.Module):
                sub.float()

    def forward(self, images: Tensor) -> Any:
        """images [B, 3, H, W] (any float dtype) -> the network's outputs, floats as float32."""
        return to_float32(self.net(images.to(self.dtype)))


class CudaGraphRunner(FixedBatchRunner):
    name = "cuda_graph"

    """:class:`FixedBatchRunner` that captures ``fn`` into one CUDA graph on its first
    call and replays it after.

    The batch size is that of the first call (pass ``batch`` to fix it ahead).
    The capture copies the input into a static buffer, runs ``fn`` ``warmup``
    times on a side stream (cuDNN picks its kernels, the caching allocator fills),
    then records it; each later call copies its input into the buffer, replays the
    graph and returns copies of the static outputs. ``fn`` must run without host
    synchronisation and with the same shapes on every call.

    Args:
        fn: [batch, ...] -> tuple of [batch, ...] CUDA tensors.
        batch: the batch size of the graph; None takes the first call's.
        warmup: eager runs before the capture.

    Raises:
        GpuOptionError: (at the first call) an input that is not on CUDA, or ``fn``
            cannot be captured, in one line.
    """

    def __init__(self, fn: BatchFn, batch: int | None = None, warmup: int = 3) -> None:
        super().__init__(fn, batch or 1)
        self.fixed = batch is not None
        self.warmup = warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_in: Tensor | None = None
        self.static_out: tuple[Tensor, ...] = ()

    def __call__(self, x: Tensor) -> tuple[Tensor, ...]:
        if self.graph is None and not self.fixed:
            self.batch = max(1, x.shape[0])
        return super().__call__(x)

    def capture(self, x: Tensor) -> None:
        """Record ``fn`` on a batch like ``x`` ([batch, ...] on CUDA)."""
        if x.device.type != "cuda":
            raise GpuOptionError(f"CUDA graphs need CUDA tensors; the input is on {x.device}")
        static_in = x.clone(memory_format=format_of(x))
        side = torch.cuda.Stream(device=x.device)  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.fn(static_in)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                static_out = self.fn(static_in)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise GpuOptionError(f"--cuda_graph: this model cannot be captured ({first})") from None
        self.graph, self.static_in, self.static_out = graph, static_in, tuple(static_out)

    def run_fixed(self, x: Tensor) -> tuple[Tensor, ...]:
        """Replay the graph on ``x`` [batch, ...] (captured on the first call)."""
        if self.graph is None:
            self.capture(x)
        assert self.graph is not None and self.static_in is not None
        self.static_in.copy_(x)
        self.graph.replay()
        return tuple(o.clone() for o in self.static_out)
