"""Pad-and-chunk: a function built for one batch size, run on a batch of any size.

The one place where a batch is padded up to a fixed size or split into chunks of
it: CUDA graphs (:class:`~yolact.runtime.gpu.CudaGraphRunner`) and exported
graphs of a fixed batch (:mod:`yolact.backends.runners`) both run through it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from yolact.core.runner import NetworkRunner

BatchFn = Callable[[Tensor], tuple[Tensor, ...]]


class FixedBatchRunner(NetworkRunner):
    """Runs ``fn``, written for batches of exactly ``batch`` items, on a batch of any size.

    A smaller batch is padded with zeros up to ``batch`` and the outputs cut back;
    a larger one runs in chunks of ``batch`` (the last one padded) and the outputs
    are concatenated. Every output must have the batch as its first dimension, and
    an item's outputs must not depend on the other items of its batch.

    Args:
        fn: [batch, ...] -> tuple of [batch, ...] tensors.
        batch: the batch size ``fn`` takes.
    """

    def __init__(self, fn: BatchFn, batch: int) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.fn = fn
        self.batch = batch

    def run_fixed(self, x: Tensor) -> tuple[Tensor, ...]:
        """``fn`` on exactly ``batch`` items."""
        return self.fn(x)

    def __call__(self, x: Tensor) -> tuple[Tensor, ...]:
        """x [N, ...] -> ``fn``'s outputs for the N items."""
        N, step = x.shape[0], self.batch
        parts: list[tuple[Tensor, ...]] = []
        for start in range(0, N, step):
            chunk = x[start : start + step]
            n = chunk.shape[0]
            if n < step:
                pad = chunk.new_zeros((step - n, *chunk.shape[1:]))
                chunk = torch.cat([chunk, pad]).contiguous(memory_format=format_of(x))
            parts.append(tuple(o[:n] for o in self.run_fixed(chunk)))
        if len(parts) == 1:
            return parts[0]
        return tuple(torch.cat(outs) for outs in zip(*parts))


def format_of(x: Tensor) -> torch.memory_format:
    """channels_last for a 4-d tensor laid out so, else the contiguous format."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
