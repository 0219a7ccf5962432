"""The network runner interface: what runs a family's network stage beneath its predictor.

A runner takes the pre-processed batch and returns the network stage's outputs as
a tuple of tensors with the batch first. Implementations: eager PyTorch and CUDA
graphs (:mod:`yolact.runtime.runners`, :mod:`yolact.runtime.gpu`), onnxruntime
with its CPU, CUDA and TensorRT providers and OpenVINO
(:mod:`yolact.backends.runners`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor


class NetworkRunner(ABC):
    """batch [B, ...] -> the network stage's outputs, a tuple of [B, ...] tensors.

    Attributes:
        name: the runtime as benchmarks print it ("pytorch", "cuda_graph",
            "onnxruntime", "tensorrt", "openvino").
    """

    name: str = "pytorch"

    @abstractmethod
    def __call__(self, batch: Tensor) -> tuple[Tensor, ...]:
        """The outputs for the ``B`` items of ``batch``."""
