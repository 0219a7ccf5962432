"""Training data: reproducible augmentation and a resumable, shardable sampler."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from yolact.data.coco import collate
from yolact.engine.stop import ignore_stop_signals, stop_signals_deferred


class AugmentedDataset(Dataset):
    """Applies ``transform(sample, rng)`` with an rng seeded by (seed, epoch, index).

    The augmentation of a sample is thus a function of the run's seed, the
    epoch and the index only: independent of worker count and process, and
    the same again after a resume.
    """

    def __init__(self, base: Dataset, transform: Callable, seed: int = 0) -> None:
        self.base = base
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(cast(Sized, self.base))

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        return self.transform(self.base[index], rng)


class EpochSampler(Sampler[int]):
    """A permutation per epoch (seeded by seed + epoch), sharded over ranks, that
    can start part-way through an epoch.

    Like ``DistributedSampler``, the permutation is padded by repetition to a
    multiple of ``world_size`` and rank r takes every world_size-th index
    from r. ``skip`` drops this rank's first indices (a resumed epoch).
    """

    def __init__(
        self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1, epoch: int = 0
    ) -> None:
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.epoch = epoch
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=g).tolist()
        total = -(-self.size // self.world_size) * self.world_size
        order += order[: total - self.size]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.skip :])

    def __len__(self) -> int:
        return max(0, -(-self.size // self.world_size) - self.skip)


def images_to_device(
    images: torch.Tensor | list[torch.Tensor], device: torch.device
) -> torch.Tensor | list[torch.Tensor]:
    """A collated batch's images on ``device``: a [B, 3, H, W] tensor when every image
    has the same size, else the list of [3, H_i, W_i] tensors (a Mask R-CNN batch)."""
    if isinstance(images, torch.Tensor):
        return images.to(device, non_blocking=True)
    return [image.to(device, non_blocking=True) for image in images]


def targets_to_device(batch: dict[str, Any], device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Per-image loss targets from a collated batch."""
    keys = ("boxes", "labels", "masks", "crowd_boxes")
    n = len(batch["boxes"])
    return [
        {k: torch.as_tensor(batch[k][i]).to(device, non_blocking=True) for k in keys if k in batch}
        for i in range(n)
    ]


def train_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return collate(samples)


def train_loader(
    data: Dataset, sampler: Sampler[int], batch: int, workers: int, pin_memory: bool, seed: int
) -> DataLoader:
    """An epoch's loader; its ``workers`` ignore SIGINT and SIGTERM (a stop sent to the
    whole process group is the main process's to act on; the workers end when the
    loader shuts them down). Start it with :func:`start_batches`."""
    return DataLoader(
        data,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=train_collate,
        drop_last=True,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=ignore_stop_signals if workers > 0 else None,
    )


def start_batches(loader: DataLoader) -> Iterator[dict[str, Any]]:
    """The loader's batches, its workers started with SIGINT and SIGTERM held back, so
    none dies of a stop that arrives before it ignores them (see
    :mod:`yolact.engine.stop`)."""
    with stop_signals_deferred():
        return iter(loader)
