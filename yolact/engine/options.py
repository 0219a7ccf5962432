"""Training run settings and outcome, and the error that ends a run."""

from __future__ import annotations

from dataclasses import dataclass

from yolact.core.config import Augmentation, Optimizer


class TrainingError(RuntimeError):
    """Training cannot go on (repeated non-finite losses, bad resume file, ...)."""


@dataclass
class TrainOptions:
    """Run settings (train.py's flags); the model's own settings are in the config."""

    batch_size: int = 8
    max_iter: int | None = None
    lr: float | None = None
    momentum: float | None = None
    decay: float | None = None
    gamma: float | None = None
    lr_steps: tuple[int, ...] | None = None
    optimizer: Optimizer | None = None
    grad_clip: float | None = None
    augment: Augmentation | None = None
    autoscale: bool = True
    num_workers: int = 4
    save_folder: str = "weights/"
    save_interval: int = 10000
    keep_latest: bool = False
    validation_epoch: int = 2
    validation_size: int = 5000
    resume: str | None = None
    start_iter: int = -1
    device: str | None = None
    amp: bool = False
    sync_bn: bool = False
    seed: int = 0
    progress: bool = True  # rank 0 prints a start-up summary and the progress
    bar: bool = True  # the progress as a bar where stdout and stderr are terminals
    init_weights: str | None = None
    max_bad_steps: int = 10
    log_interval: int = 10  # iterations between CSV rows and plain progress lines
    max_failed_saves: int = 3  # periodic checkpoint saves that may fail in a row


@dataclass
class TrainResult:
    """How a run ended; ``signal`` is the stop signal's number (0: not stopped by one)."""

    iteration: int
    epoch: int
    last_checkpoint: str | None
    interrupted: bool
    losses: dict[str, float]
    signal: int = 0
