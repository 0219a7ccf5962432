"""train.py: train a YOLACT config on COCO or any COCO-format dataset."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Union

from yolact.cli.eval_args import DefaultsHelpFormatter, str2bool
from yolact.core.config import (
    AUGMENTATIONS,
    OPTIMIZERS,
    Augmentation,
    ConfigError,
    ModelConfig,
    Optimizer,
    apply_overrides,
)
from yolact.core.names import is_plain_name
from yolact.core.weights import Checkpoint, CheckpointError
from yolact.data.coco import CocoDataset, DatasetError, named_dataset
from yolact.engine.checkpoint_names import resume_path
from yolact.engine.elastic import elastic_resume
from yolact.engine.trainer import TrainingError, TrainOptions, TrainResult, train
from yolact.registry import get_config, read_checkpoint
from yolact.runtime.threads import available_cores, configure_threads, plan_threads

log = logging.getLogger("yolact")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        message = f"expected iterations like 1000,1500, got '{text}'"
        raise argparse.ArgumentTypeError(message) from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"iterations must be >= 0, got '{text}'")
    return values


DEFAULT_SAVE_FOLDER = "weights/"
TrainFlags = Union["TrainRunOptions", argparse.Namespace]
"""train.py's flags: typed options or parsed flags."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of train.py; ``--help`` states each flag's default."""
    p = argparse.ArgumentParser(
        prog="train.py", description="Train YOLACT.", formatter_class=DefaultsHelpFormatter
    )
    a = p.add_argument
    a("--config", default=None,
      help="config name (see yolact/models/*/config.py; default: the config stored in the "
      "--resume file, else yolact_base)")  # fmt: skip
    a("--batch_size", default=8, type=int, help="total batch over all processes")
    a("--resume", default=None, help="checkpoint path, 'latest' or 'interrupt'")
    a("--start_iter", default=-1, type=int, help="iteration to resume at (default: from the file)")
    a("--num_workers", default=4, type=int, help="data loading processes")
    a("--lr", default=None, type=float, help="learning rate (default: the config's, scaled)")
    a("--momentum", default=None, type=float, help="SGD momentum (default: the config's)")
    a("--decay", default=None, type=float, help="weight decay (default: the config's)")
    a("--gamma", default=None, type=float,
      help="learning-rate step factor (default: the config's)")  # fmt: skip
    a("--lr_steps", default=None, type=_int_list, metavar="N,N,...",
      help="iterations at which the lr is multiplied by --gamma, taken as given "
      "(default: the config's, scaled to the batch size)")  # fmt: skip
    a("--optimizer", default=None, choices=OPTIMIZERS,
      help="optimiser (default: the config's, sgd as the original)")  # fmt: skip
    a("--grad_clip", default=None, type=float,
      help="clip the gradient norm to this value (0: off; default: the config's)")  # fmt: skip
    a("--augment", default=None, choices=AUGMENTATIONS,
      help="training augmentation: ssd (the original's), light (photometric and "
      "mirror) or none (default: the config's)")  # fmt: skip
    a("--save_folder", default=None,
      help="where checkpoints and logs go (default: the --resume file's folder, else "
      f"{DEFAULT_SAVE_FOLDER})")  # fmt: skip
    a("--save_interval", default=10000, type=int, help="iterations between checkpoints")
    a("--validation_epoch", default=2, type=int, help="validate every N epochs (-1: never)")
    a("--validation_size", default=5000, type=int, help="validation images")
    a("--keep_latest", action="store_true", help="keep only the newest checkpoint")
    a("--no_autoscale", dest="autoscale", action="store_false",
      help="do not scale lr and schedule to the batch size")  # fmt: skip
    a("--max_iter", default=None, type=int, help="iterations (default: the config's, scaled)")
    a("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available)")
    a("--amp", action="store_true", help="mixed precision (float16 on CUDA, bfloat16 on CPU)")
    a("--sync_bn", action="store_true", help="SyncBatchNorm across processes")
    a("--seed", default=0, type=int, help="seed of initialisation, data order and augmentation")
    a("--init_weights", default=None,
      help="ImageNet ResNet .pth or a YOLACT checkpoint to start from")  # fmt: skip
    a("--dataset", default="coco2017", help="named dataset: coco2017 (data/coco)")
    a("--data_root", default="data", help="root of named datasets")
    a("--train_ann", default=None, help="COCO-format annotation json for training")
    a("--train_images", default=None, help="image folder for --train_ann")
    a("--val_ann", default=None, help="COCO-format annotation json for validation")
    a("--val_images", default=None, help="image folder for --val_ann")
    a("--no_bar", action="store_true",
      help="no progress bar: plain lines as when the output is not a terminal")  # fmt: skip
    a("--log_interval", default=10, type=int,
      help="iterations between CSV log rows and, where the output is not a terminal (a "
      "file, a pipe), between printed progress lines")  # fmt: skip
    a("--cuda", default=None, type=str2bool, help="original flag; --device is preferred")
    a("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
      help="change config fields, dotted into nested settings, e.g. --set "
      "train.assigner=atss train.lr_schedule=cosine max_size=192 (stored in the checkpoint; "
      "see yolact/core/config.py and yolact/models/*/config.py for the fields)")  # fmt: skip
    a("--threads", default=None, type=int, metavar="N",
      help="threads this process keeps busy, data loader workers included (default: the idle "
      "cores it may use; an explicit OMP_NUM_THREADS sets the network's own)")  # fmt: skip
    return p


DEFAULT_CONFIG = "yolact_base"


@functools.lru_cache(maxsize=1)
def _resume_file(path: str) -> Checkpoint:
    """The checkpoint ``--resume`` names, read once per run for its config and its
    dataset paths (:func:`main` clears the cache)."""
    return read_checkpoint(path)


def save_folder_for(args: TrainFlags) -> str:
    """``--save_folder``; else, resuming from a file, that file's folder (a resumed run
    stays where it started: checkpoints, logs and ``--resume=latest`` together); else
    weights/."""
    if args.save_folder is not None:
        return args.save_folder
    if args.resume and args.resume not in ("latest", "interrupt"):
        return os.path.dirname(args.resume) or "."
    return DEFAULT_SAVE_FOLDER


def config_for(args: TrainFlags) -> ModelConfig:
    """The config to train: on ``--resume``, the one stored in the file when it is
    ``--config`` or no ``--config`` is given (so a run resumes with the settings it
    started with, ``--set`` changes included); else ``--config``'s named config,
    else yolact_base."""
    name = args.config or DEFAULT_CONFIG
    path = None
    if args.resume:
        path = resume_path(args.resume, save_folder_for(args), name)
    if path is not None and os.path.exists(path):
        stored = _resume_file(path).config
        if stored is not None and args.config in (None, stored.name):
            log.info("config %s from %s", stored.name, path)
            return stored
    return get_config(name)


def stored_datasets(args: TrainFlags, config_name: str) -> tuple[dict[str, str], str]:
    """The dataset paths stored in the checkpoint ``--resume`` names, and its path
    (nothing when not resuming, when ``--train_ann`` is given or the file stores none)."""
    if not args.resume or args.train_ann:
        return {}, ""
    path = resume_path(args.resume, save_folder_for(args), config_name)
    if path is None:
        raise TrainingError(
            f"--resume {args.resume}: no {config_name} checkpoint in {args.save_folder}"
        )
    data = _resume_file(path).meta.get("data")
    if not isinstance(data, dict):
        return {}, path
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}, path


def load_datasets(
    args: TrainFlags, stored: dict[str, str] | None = None, source: str = ""
) -> tuple[CocoDataset, CocoDataset | None]:
    """The training and validation sets: the flags', else (on ``--resume``) those
    ``stored`` in the checkpoint ``source``, else the named dataset.

    Raises:
        DatasetError: half a pair of flags, an unknown named dataset, or files
            that cannot be read.
    """
    if bool(args.train_ann) != bool(args.train_images):
        raise DatasetError("give --train_ann and --train_images together")
    if bool(args.val_ann) != bool(args.val_images):
        raise DatasetError("give --val_ann and --val_images together")
    stored = stored or {}
    from_file = not args.train_ann and "train_ann" in stored and "train_images" in stored
    given_val = (str(args.val_ann), str(args.val_images)) if args.val_ann else None
    val_files: tuple[str, str] | None
    if args.train_ann:
        train_files = (str(args.train_ann), str(args.train_images))
        val_files = given_val
    elif from_file:
        train_files = (stored["train_ann"], stored["train_images"])
        val_files = given_val
        if val_files is None and "val_ann" in stored and "val_images" in stored:
            val_files = (stored["val_ann"], stored["val_images"])
        log.info("datasets from %s: %s", source, ", ".join(f"{k}={v}" for k, v in stored.items()))
    else:
        if args.dataset != "coco2017":
            raise DatasetError(f"unknown dataset '{args.dataset}'; use coco2017 or --train_ann")
        train_files = named_dataset("coco2017_train", args.data_root)
        val_files = given_val or named_dataset("coco2017_val", args.data_root)
    try:
        train_set = CocoDataset(*train_files)
        val_set = CocoDataset(*val_files, class_names=train_set.class_names) if val_files else None
    except DatasetError as e:
        if not from_file:
            raise
        raise DatasetError(
            f"{e} (a path stored in {source}; give --train_ann/--train_images and "
            "--val_ann/--val_images)"
        ) from None
    return train_set, val_set


@dataclass(frozen=True)
class TrainRunOptions:
    """Every train.py flag, typed: one run of train.py as a value.

    The field names and defaults are the flags' (``--batch_size`` is
    ``batch_size``, ``--set`` is ``overrides``, ``--no_autoscale`` sets
    ``autoscale`` False); see ``python train.py --help``. The engine's own run
    settings (:class:`yolact.engine.trainer.TrainOptions`) are made from these by
    :meth:`engine_options`. From Python::

        from yolact.cli.train_cli import TrainRunOptions, run_train
        run_train(TrainRunOptions(config="yolact_tiny", train_ann="a.json", train_images="img"))
    """

    config: str | None = None
    batch_size: int = 8
    resume: str | None = None
    start_iter: int = -1
    num_workers: int = 4
    lr: float | None = None
    momentum: float | None = None
    decay: float | None = None
    gamma: float | None = None
    lr_steps: tuple[int, ...] | None = None
    optimizer: Optimizer | None = None
    grad_clip: float | None = None
    augment: Augmentation | None = None
    save_folder: str | None = None
    save_interval: int = 10000
    validation_epoch: int = 2
    validation_size: int = 5000
    keep_latest: bool = False
    autoscale: bool = True
    max_iter: int | None = None
    device: str | None = None
    amp: bool = False
    sync_bn: bool = False
    seed: int = 0
    init_weights: str | None = None
    dataset: str = "coco2017"
    data_root: str = "data"
    train_ann: str | None = None
    train_images: str | None = None
    val_ann: str | None = None
    val_images: str | None = None
    no_bar: bool = False
    log_interval: int = 10
    cuda: bool | None = None
    overrides: tuple[str, ...] = ()
    threads: int | None = None

    @classmethod
    def from_args(cls, namespace: argparse.Namespace) -> TrainRunOptions:
        """The options of parsed flags (``build_parser().parse_args``)."""
        values = {f.name: getattr(namespace, f.name) for f in fields(cls)}
        values["overrides"] = tuple(values["overrides"] or ())
        return cls(**values)

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None) -> TrainRunOptions:
        """The options of a command line (default: this process's)."""
        return cls.from_args(build_parser().parse_args(list(argv) if argv is not None else None))

    def engine_options(self) -> TrainOptions:
        """The engine's run settings (``save_folder`` as :func:`save_folder_for` resolves it)."""
        device = self.device or (None if self.cuda is None else ("cuda" if self.cuda else "cpu"))
        return TrainOptions(
            batch_size=self.batch_size, max_iter=self.max_iter, lr=self.lr,
            momentum=self.momentum, decay=self.decay, gamma=self.gamma,
            lr_steps=self.lr_steps, optimizer=self.optimizer, grad_clip=self.grad_clip,
            augment=self.augment,
            autoscale=self.autoscale, num_workers=self.num_workers,
            save_folder=save_folder_for(self), save_interval=self.save_interval,
            keep_latest=self.keep_latest, validation_epoch=self.validation_epoch,
            validation_size=self.validation_size, resume=self.resume,
            start_iter=self.start_iter, device=device, amp=self.amp, sync_bn=self.sync_bn,
            seed=self.seed, bar=not self.no_bar, init_weights=self.init_weights,
            log_interval=self.log_interval,
        )  # fmt: skip


def run_train(options: TrainRunOptions) -> TrainResult:
    """One train.py run from Python: threads, config (``--set``), datasets, then training.

    Raises:
        The errors train.py prints as its one ``error:`` line (ConfigError,
        DatasetError, CheckpointError, TrainingError, ValueError);
        KeyboardInterrupt before training starts.
    """
    _resume_file.cache_clear()
    args = replace(options, save_folder=save_folder_for(options))
    workers = plan_threads(available_cores(), requested=args.threads).loader_workers(
        args.num_workers
    )
    configure_threads(args.threads, reserved=workers)
    args = _resolved_resume(args)
    cfg = _config(args)
    elastic = elastic_resume(args.save_folder or DEFAULT_SAVE_FOLDER, cfg.name)
    if elastic is not None:  # a torchrun restart: this run's newest checkpoint
        args = replace(args, resume=elastic, start_iter=-1)
        cfg = _config(args)
    if args.batch_size < 1:
        raise TrainingError("--batch_size must be at least 1")
    if args.log_interval < 1:
        raise TrainingError(f"--log_interval must be at least 1, got {args.log_interval}")
    train_set, val_set = load_datasets(args, *stored_datasets(args, cfg.name))
    if tuple(train_set.class_names) != tuple(cfg.class_names):
        cfg = cfg.replace(class_names=tuple(train_set.class_names))
        log.info("%d classes from %s", len(cfg.class_names), args.train_ann or args.dataset)
    return train(cfg, args.engine_options(), train_set, val_set)


def _resolved_resume(args: TrainRunOptions) -> TrainRunOptions:
    """``--resume=latest`` (or ``interrupt``) as the file it names, found once (a file
    that is not whole is skipped with one line); other values as they are.

    Raises:
        TrainingError: the save folder holds no complete checkpoint of the kind.
    """
    if args.resume not in ("latest", "interrupt"):
        return args
    name, folder = args.config or DEFAULT_CONFIG, save_folder_for(args)
    path = resume_path(args.resume, folder, name)
    if path is None:
        raise TrainingError(f"--resume {args.resume}: no {name} checkpoint in {folder}")
    return replace(args, resume=path)


def _config(args: TrainRunOptions) -> ModelConfig:
    """The config to train (see :func:`config_for`) with ``--set`` applied.

    Raises:
        ConfigError: a bad ``--set``, or a config name that is not a plain file name.
    """
    cfg = config_for(args)
    if args.overrides:
        cfg = apply_overrides(cfg, list(args.overrides))
        log.info("config %s with %s", cfg.name, " ".join(args.overrides))
    if not is_plain_name(cfg.name):
        raise ConfigError(
            f"config name {cfg.name!r} is not a plain file name "
            "(it is part of the names of the files written)"
        )
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    options = TrainRunOptions.parse(argv)
    try:
        result = run_train(options)
    except (ConfigError, DatasetError, CheckpointError, TrainingError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # during start-up, or a second Ctrl-C: no checkpoint
        print("error: interrupted by Ctrl-C; no interrupt checkpoint written", file=sys.stderr)
        return 128 + signal.SIGINT
    if result.interrupted:
        print(stop_message(result), file=sys.stderr)
        return 128 + (result.signal or signal.SIGINT)
    print(f"finished at iteration {result.iteration}; checkpoint: {result.last_checkpoint}")
    return 0


def stop_message(result: TrainResult) -> str:
    """The one line a stopped run ends with."""
    name = signal.Signals(result.signal).name if result.signal else "a stop request"
    return (
        f"stopped by {name} at iteration {result.iteration}; saved {result.last_checkpoint}; "
        f"continue with --resume={result.last_checkpoint}"
    )
