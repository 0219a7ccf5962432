"""Learning-rate schedule: linear warm-up, then steps (the original's) or a cosine."""

from __future__ import annotations

import math
from dataclasses import dataclass

from yolact.core.config import TrainConfig


@dataclass(frozen=True)
class Schedule:
    """The schedule actually used by a run (after batch-size scaling).

    Attributes:
        lr: peak learning rate.
        warmup_init, warmup_until: warm-up start value and length in iterations.
        steps: iterations at which the rate is multiplied by ``gamma``.
        gamma: step factor.
        max_iter: iterations of the run.
        cosine: after the warm-up, a half cosine from ``lr`` to 0 at ``max_iter``
            instead of the steps.
    """

    lr: float
    warmup_init: float
    warmup_until: int
    steps: tuple[int, ...]
    gamma: float
    max_iter: int
    cosine: bool = False

    def lr_at(self, iteration: int) -> float:
        """Learning rate for ``iteration`` (0-based)."""
        if self.warmup_until > 0 and iteration <= self.warmup_until:
            return (self.lr - self.warmup_init) * (iteration / self.warmup_until) + self.warmup_init
        if self.cosine:
            span = max(self.max_iter - self.warmup_until, 1)
            done = min(max(iteration - self.warmup_until, 0) / span, 1.0)
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * done))
        passed = sum(1 for s in self.steps if iteration >= s)
        return self.lr * self.gamma**passed


def make_schedule(
    tc: TrainConfig,
    batch_size: int,
    autoscale: bool = True,
    lr: float | None = None,
    gamma: float | None = None,
    max_iter: int | None = None,
    lr_steps: tuple[int, ...] | None = None,
) -> Schedule:
    """The schedule for a total batch of ``batch_size``.

    As the original, with ``autoscale`` a batch other than ``tc.batch_size``
    multiplies the learning rate by ``batch_size / tc.batch_size`` and divides
    the iteration counts by the same factor. Explicit ``lr`` / ``max_iter``
    overrides are taken as given (not scaled); the config's steps still are,
    explicit ``lr_steps`` are not.
    """
    factor = batch_size / tc.batch_size if autoscale else 1.0
    base_lr = tc.lr * factor if lr is None else lr
    if lr_steps is not None:
        steps = tuple(sorted(int(s) for s in lr_steps))
    else:
        steps = tuple(int(s // factor) for s in tc.lr_steps)
    total = int(tc.max_iter // factor) if max_iter is None else max_iter
    return Schedule(
        lr=base_lr,
        warmup_init=tc.warmup_init,
        warmup_until=tc.warmup_until,
        steps=steps,
        gamma=tc.gamma if gamma is None else gamma,
        max_iter=total,
        cosine=tc.lr_schedule == "cosine",
    )
