"""An exported graph as a network runner: onnxruntime (CPU, CUDA, TensorRT) or OpenVINO."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from yolact.backends.meta import ExportMeta
from yolact.backends.runtimes import Runtime
from yolact.core.runner import NetworkRunner
from yolact.runtime.batching import FixedBatchRunner


class ExportedRunner(NetworkRunner):
    """Runs a loaded graph on a host batch; a graph of a fixed batch size runs
    padded or in chunks of it (:class:`~yolact.runtime.batching.FixedBatchRunner`).

    Args:
        runtime: the loaded graph (:func:`~yolact.backends.runtimes.open_runtime`).
        meta: its file's metadata (batch size, fp16 input).

    Attributes:
        name: the runtime's name ("onnxruntime", "tensorrt", "openvino").
    """

    def __init__(self, runtime: Runtime, meta: ExportMeta) -> None:
        self.runtime = runtime
        self.name = runtime.name
        self.dtype = np.float16 if meta.half else np.float32
        self.fixed = FixedBatchRunner(self.run_graph, meta.batch) if meta.batch else None

    def run_graph(self, batch: Tensor) -> tuple[Tensor, ...]:
        """The graph once on ``batch`` [B, 3, S, S] (host): its outputs, copied."""
        x = np.ascontiguousarray(batch.numpy().astype(self.dtype, copy=False))
        return tuple(torch.tensor(o) for o in self.runtime.run(x))

    def __call__(self, batch: Tensor) -> tuple[Tensor, ...]:
        return self.fixed(batch) if self.fixed is not None else self.run_graph(batch)
