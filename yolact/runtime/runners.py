"""Eager PyTorch as a network runner (the CUDA graph runner: :mod:`yolact.runtime.gpu`)."""

from __future__ import annotations

import torch
from torch import Tensor

from yolact.core.runner import NetworkRunner
from yolact.runtime.batching import BatchFn


class EagerRunner(NetworkRunner):
    """Runs ``fn`` (a family's network and fixed-shape post-processing) eagerly, on a
    batch of any size, without gradients.

    Args:
        fn: [B, ...] -> tuple of [B, ...] tensors.
    """

    name = "pytorch"

    def __init__(self, fn: BatchFn) -> None:
        self.fn = fn

    @torch.no_grad()
    def __call__(self, batch: Tensor) -> tuple[Tensor, ...]:
        return self.fn(batch)
