"""train.py: train a YOLACT config on COCO or any COCO-format dataset."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
from collections.abc import Sequence

from yolact.cli.eval_args import DefaultsHelpFormatter, str2bool
from yolact.core.config import (
    AUGMENTATIONS,
    OPTIMIZERS,
    ConfigError,
    ModelConfig,
    apply_overrides,
)
from yolact.core.names import is_plain_name
from yolact.core.threads import available_cores, configure_threads, plan_threads
from yolact.core.weights import Checkpoint, CheckpointError
from yolact.data.coco import CocoDataset, DatasetError, named_dataset
from yolact.engine.checkpoint_names import resume_path
from yolact.engine.trainer import TrainingError, TrainOptions, TrainResult, train
from yolact.registry import get_config, read_checkpoint

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


def save_folder_for(args: argparse.Namespace) -> str:
    """``--save_folder``; else, resuming from a file, that file's folder (a resumed run
    stays where it started: checkpoints, logs and ``--resume=latest`` together); else
    weights/."""
    if args.save_folder is not None:
        return args.save_folder
    if args.resume and args.resume not in ("latest", "interrupt"):
        return os.path.dirname(args.resume) or "."
    return DEFAULT_SAVE_FOLDER


def config_for(args: argparse.Namespace) -> ModelConfig:
    """The config to train: on ``--resume``, the one stored in the file when it is
    ``--config`` or no ``--config`` is given (so a run resumes with the settings it
    started with, ``--set`` changes included); else ``--config``'s named config,
    else yolact_base."""
    name = args.config or DEFAULT_CONFIG
    path = None
    if args.resume:
        path = resume_path(args.resume, args.save_folder, name)
    if path is not None and os.path.exists(path):
        stored = _resume_file(path).config
        if stored is not None and args.config in (None, stored.name):
            log.info("config %s from %s", stored.name, path)
            return stored
    return get_config(name)


def stored_datasets(args: argparse.Namespace, config_name: str) -> tuple[dict[str, str], str]:
    """The dataset paths stored in the checkpoint ``--resume`` names, and its path
    (nothing when not resuming, when ``--train_ann`` is given or the file stores none)."""
    if not args.resume or args.train_ann:
        return {}, ""
    path = resume_path(args.resume, args.save_folder, config_name)
    if path is None:
        raise TrainingError(
            f"--resume {args.resume}: no {config_name} checkpoint in {args.save_folder}"
        )
    data = _resume_file(path).meta.get("data")
    if not isinstance(data, dict):
        return {}, path
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}, path


def load_datasets(
    args: argparse.Namespace, stored: dict[str, str] | None = None, source: str = ""
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
    if args.train_ann:
        train_files = (args.train_ann, args.train_images)
        val_files = (args.val_ann, args.val_images) if args.val_ann else None
    elif from_file:
        train_files = (stored["train_ann"], stored["train_images"])
        val_files = (args.val_ann, args.val_images) if args.val_ann else None
        if val_files is None and "val_ann" in stored and "val_images" in stored:
            val_files = (stored["val_ann"], stored["val_images"])
        log.info("datasets from %s: %s", source, ", ".join(f"{k}={v}" for k, v in stored.items()))
    else:
        if args.dataset != "coco2017":
            raise DatasetError(f"unknown dataset '{args.dataset}'; use coco2017 or --train_ann")
        train_files = named_dataset("coco2017_train", args.data_root)
        val_files = (
            (args.val_ann, args.val_images)
            if args.val_ann
            else named_dataset("coco2017_val", args.data_root)
        )
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


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    _resume_file.cache_clear()
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    args.save_folder = save_folder_for(args)
    try:
        workers = plan_threads(available_cores(), requested=args.threads).loader_workers(
            args.num_workers
        )
        configure_threads(args.threads, reserved=workers)
        cfg = config_for(args)
        if args.overrides:
            cfg = apply_overrides(cfg, args.overrides)
            log.info("config %s with %s", cfg.name, " ".join(args.overrides))
        if not is_plain_name(cfg.name):
            raise ConfigError(
                f"config name {cfg.name!r} is not a plain file name "
                "(it is part of the names of the files written)"
            )
        if args.batch_size < 1:
            raise TrainingError("--batch_size must be at least 1")
        if args.log_interval < 1:
            raise TrainingError(f"--log_interval must be at least 1, got {args.log_interval}")
        train_set, val_set = load_datasets(args, *stored_datasets(args, cfg.name))
        if tuple(train_set.class_names) != tuple(cfg.class_names):
            cfg = cfg.replace(class_names=tuple(train_set.class_names))
            log.info("%d classes from %s", len(cfg.class_names), args.train_ann or args.dataset)
        device = args.device or (None if args.cuda is None else ("cuda" if args.cuda else "cpu"))
        opts = TrainOptions(
            batch_size=args.batch_size, max_iter=args.max_iter, lr=args.lr,
            momentum=args.momentum, decay=args.decay, gamma=args.gamma,
            lr_steps=args.lr_steps, optimizer=args.optimizer, grad_clip=args.grad_clip,
            augment=args.augment,
            autoscale=args.autoscale, num_workers=args.num_workers,
            save_folder=args.save_folder, save_interval=args.save_interval,
            keep_latest=args.keep_latest, validation_epoch=args.validation_epoch,
            validation_size=args.validation_size, resume=args.resume,
            start_iter=args.start_iter, device=device, amp=args.amp, sync_bn=args.sync_bn,
            seed=args.seed, bar=not args.no_bar, init_weights=args.init_weights,
            log_interval=args.log_interval,
        )  # fmt: skip
        result = train(cfg, opts, train_set, val_set)
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
