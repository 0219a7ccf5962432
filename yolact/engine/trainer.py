"""The training loop: one explicit loop, single process or DDP under torchrun."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, SupportsInt

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from yolact.core.checkpoint_names import (
    CheckpointName,
    atomic_save,
    dataset_paths,
    list_checkpoints,
    prune,
    resume_path,
)
from yolact.core.config import Augmentation, ModelConfig, Optimizer, TrainConfig
from yolact.core.family import Family, TrainingHooks
from yolact.core.init_weights import initialise
from yolact.data.coco import CocoDataset
from yolact.engine.csvlog import CsvLog
from yolact.engine.data import (
    AugmentedDataset,
    EpochSampler,
    images_to_device,
    targets_to_device,
    train_collate,
)
from yolact.engine.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    device_for,
    init_distributed,
)
from yolact.engine.evaluate import evaluate_dataset, format_aps
from yolact.engine.schedule import Schedule, make_schedule
from yolact.registry import family_of, read_checkpoint
from yolact.runtime.threads import current_plan

log = logging.getLogger("yolact.train")


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
    progress: bool = True
    init_weights: str | None = None
    max_bad_steps: int = 10
    log_interval: int = 10


def build_optimizer(model: nn.Module, tc: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """The optimiser of ``tc.optimizer`` over the trainable parameters.

    SGD is the original's (momentum, L2 weight decay on every parameter). AdamW
    uses ``tc.momentum`` as beta1 and applies its decoupled weight decay to
    weights only, not to biases and normalisation parameters (1-D tensors).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": tc.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(tc.momentum, 0.999))


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep BatchNorm layers in eval mode with fixed affine parameters."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


def _rng_state() -> dict[str, Any]:
    """The random generators' states (torch, NumPy's legacy MT19937, Python's, CUDA's)."""
    mt19937 = np.random.get_state(legacy=False)["state"]  # {"key": [624] uint32, "pos": int}
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": mt19937["key"].astype(np.int64).tolist(),
        "numpy_pos": int(mt19937["pos"]),
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        ("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0)
    )
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between iterations and then saves
    an interrupt checkpoint. A second Ctrl-C aborts without waiting."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict = {}

    def __enter__(self) -> StopFlag:
        def handler(signum, frame) -> None:
            if self.requested and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C aborts at once
            self.requested = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                self._old[sig] = signal.signal(sig, handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class TrainResult:
    iteration: int
    epoch: int
    last_checkpoint: str | None
    interrupted: bool
    losses: dict[str, float]


class Trainer:
    """Runs training for a config on a dataset; see :func:`train`.

    Everything that depends on the model family (the model, its loss module,
    augmentation, initial weights, per-step hooks) comes from the config's
    :class:`~yolact.core.family.Family`; the loop itself is the same for all.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        opts: TrainOptions,
        train_set: CocoDataset,
        val_set: CocoDataset | None = None,
        on_iteration: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.opts = opts
        self.on_iteration = on_iteration
        self.family: Family = family_of(cfg)
        self.train_set, self.val_set = train_set, val_set
        self._setup_processes()
        self._setup_config(cfg)
        torch.manual_seed(opts.seed)
        self.model = self.family.build_train_model(self.cfg).to(self.device)
        self.hooks: TrainingHooks | None = self.family.training_hooks(self.model, self.cfg)
        self._load_initial_weights()
        self.net = self._wrap_model()
        self._setup_optimizer()
        self._setup_data()
        self.log = CsvLog(opts.save_folder, self.cfg.name) if self.info.is_main else None

    # ---- set-up steps -----------------------------------------------------------------

    def _setup_processes(self) -> None:
        """The process group (under torchrun), this process's device and batch share."""
        opts = self.opts
        device_type = "cuda" if (opts.device or "").startswith("cuda") else "cpu"
        if opts.device is None and torch.cuda.is_available():
            device_type = "cuda"
        self.info: DistInfo = init_distributed(device_type)
        self.device = device_for(self.info, opts.device)
        if opts.batch_size % self.info.world_size != 0:
            raise TrainingError(
                f"--batch_size {opts.batch_size} does not divide over "
                f"{self.info.world_size} processes"
            )
        self.local_batch = opts.batch_size // self.info.world_size

    def _setup_config(self, cfg: ModelConfig) -> None:
        """The config with the flags' training overrides, and the learning-rate schedule."""
        opts = self.opts
        overrides = {
            k: v
            for k, v in (
                ("momentum", opts.momentum),
                ("weight_decay", opts.decay),
                ("optimizer", opts.optimizer),
                ("grad_clip", opts.grad_clip),
                ("augment", opts.augment),
            )
            if v is not None
        }
        self.cfg = cfg.with_train(**overrides) if overrides else cfg
        self.schedule: Schedule = make_schedule(
            cfg.train, opts.batch_size, opts.autoscale, opts.lr, opts.gamma, opts.max_iter,
            opts.lr_steps,
        )  # fmt: skip

    def _load_initial_weights(self) -> None:
        """``--resume`` (weights now, optimiser state later) or ``--init_weights``;
        then frozen BatchNorm and SyncBatchNorm as asked."""
        opts = self.opts
        self.start_iter = 0
        self.resume_state: dict | None = None
        if opts.resume:
            self._load_resume(opts.resume)
        elif opts.init_weights:
            ckpt = read_checkpoint(opts.init_weights)
            initialise(self.model, ckpt, opts.init_weights, log, self.family)
        if self.cfg.train.freeze_bn:
            freeze_batchnorm(self.model)
        if opts.sync_bn and self.info.enabled:
            if self.device.type != "cuda":
                raise TrainingError("--sync_bn needs CUDA: SyncBatchNorm has no CPU implementation")
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)

    def _wrap_model(self) -> nn.Module:
        """The family's training module around the model, in DDP when distributed."""
        amp_dtype = None
        if self.opts.amp:
            amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        net = self.family.training_module(self.model, self.cfg, amp_dtype).to(self.device)
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # Both losses reach every trainable parameter whatever the batch holds (zero
            # terms for what a batch cannot train), so the gradient buckets match on
            # every rank without searching the graph for unused parameters.
            net = DistributedDataParallel(net, device_ids=ids, find_unused_parameters=False)
        return net

    def _setup_optimizer(self) -> None:
        """Optimiser and gradient scaler, with their state when resuming."""
        tcfg = self.cfg.train
        self.optimizer = build_optimizer(self.model, tcfg, self.schedule.lr)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.opts.amp and self.device.type == "cuda"
        )
        if self.resume_state is None:
            return
        try:
            self.optimizer.load_state_dict(self.resume_state["optimizer"])
        except (ValueError, KeyError) as e:
            raise TrainingError(
                f"the checkpoint's optimizer state does not fit a {tcfg.optimizer} "
                f"optimizer ({e}); resume with the optimizer it was trained with"
            ) from None
        if "scaler" in self.resume_state and self.scaler.is_enabled():
            self.scaler.load_state_dict(self.resume_state["scaler"])
        if self.hooks is not None:
            self.hooks.load_state_dict(self.resume_state)

    def _setup_data(self) -> None:
        """The augmented training set, its sampler and the epoch length."""
        opts = self.opts
        if isinstance(self.train_set, CocoDataset):
            self.train_set.check_trainable()
        transform = self.family.train_transform(self.cfg)
        self.data = AugmentedDataset(self.train_set, transform, opts.seed)
        self.sampler = EpochSampler(len(self.data), opts.seed, self.info.rank, self.info.world_size)
        per_rank = -(-len(self.data) // self.info.world_size)
        self.epoch_size = per_rank // self.local_batch
        if self.epoch_size < 1:
            raise TrainingError(
                f"the training set has {len(self.data)} images, fewer than the batch of "
                f"{opts.batch_size}"
            )

    # ---- checkpoints ------------------------------------------------------------------

    def _load_resume(self, spec: str) -> None:
        folder = self.opts.save_folder
        path = resume_path(spec, folder, self.cfg.name)
        if path is None:
            raise TrainingError(f"--resume {spec}: no {self.cfg.name} checkpoint in {folder}")
        ckpt = read_checkpoint(path)
        self.family.load_weights(self.model, ckpt, path)
        meta = ckpt.meta
        iteration = meta.get("iteration")
        if isinstance(iteration, SupportsInt):
            self.start_iter = int(iteration)
        else:
            name = CheckpointName.parse(path)
            self.start_iter = name.iteration if name else 0
        if self.opts.start_iter >= 0:
            self.start_iter = self.opts.start_iter
        if "optimizer" in meta:
            self.resume_state = meta
        log.info("resuming from %s at iteration %d", path, self.start_iter)

    def save(self, epoch: int, iteration: int, interrupt: bool = False) -> str | None:
        """Write a checkpoint (rank 0 only) and return its path."""
        if not self.info.is_main:
            return None
        name = CheckpointName(self.cfg.name, epoch, iteration, interrupt)
        path = os.path.join(self.opts.save_folder, name.file_name)
        state = {
            "model": self.model.state_dict(),
            "config": self.cfg.to_dict(),
            "class_names": list(self.cfg.class_names),
            "optimizer": self.optimizer.state_dict(),
            "iteration": iteration,
            "epoch": epoch,
            "rng": _rng_state(),
            "data": dataset_paths(self.train_set, self.val_set),
        }
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        if self.hooks is not None:
            state.update(self.hooks.state_dict() or {})
        atomic_save(state, path)
        if not interrupt:
            for old, old_path in list_checkpoints(self.opts.save_folder, self.cfg.name):
                if old.interrupt and old.iteration <= iteration:
                    os.remove(old_path)
            if self.opts.keep_latest:
                prune(self.opts.save_folder, self.cfg.name, keep=path)
        return path

    # ---- the loop ---------------------------------------------------------------------

    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        self.data.set_epoch(epoch)
        self.sampler.set_epoch(epoch, skip_batches * self.local_batch)
        workers = current_plan().loader_workers(self.opts.num_workers)
        return DataLoader(
            self.data,
            batch_size=self.local_batch,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=train_collate,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.opts.seed + epoch),
        )

    def _step(self, batch: dict, lr: float) -> dict[str, float] | None:
        """One optimisation step; None when the loss was not finite on some rank (the
        step is then skipped on every rank).

        The host waits for the device once per step: one transfer carries the
        finiteness flag (skipping a step must be decided before the optimiser
        changes its state) and the loss values, reduced over the ranks in the same
        collective.

        Returns:
            The loss terms and their ``total``, averaged over the ranks.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        images = images_to_device(batch["image"], self.device)
        targets = targets_to_device(batch, self.device)
        losses = self.net(images, targets)
        total = sum(losses.values())
        # One collective of the same shape on every rank, every step: the loss terms are
        # fixed by the config, whatever the batch holds.
        keys = list(losses)
        terms = torch.stack([losses[k].detach().float() for k in keys] + [total.detach()])
        finite = torch.isfinite(total.detach()).float().reshape(1)
        reduced = all_reduce_sum(torch.cat([finite, terms])).cpu()  # [1 + len(keys) + 1]
        world = self.info.world_size
        if float(reduced[0]) < world:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.cfg.train.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.hooks is not None:
            self.hooks.after_step()
        means = (reduced[1:] / world).tolist()
        return dict(zip([*keys, "total"], means))

    def validate(self, epoch: int, iteration: int) -> dict | None:
        if self.val_set is None:
            return None
        predictor = self.family.predictor_class(self.model, device=self.device)
        try:
            result = evaluate_dataset(
                predictor,
                self.val_set,
                max_images=self.opts.validation_size,
                progress=False,
                rank=self.info.rank,
                world_size=self.info.world_size,
            )
        finally:
            self.model.train()
            if self.cfg.train.freeze_bn:
                freeze_batchnorm(self.model)
        if self.info.is_main and result.metrics is not None:
            if self.log is not None:
                self.log.validation(epoch, iteration, result.metrics)
            log.info("validation at iteration %d: %s", iteration, format_aps(result.metrics))
        return result.metrics

    def run(self) -> TrainResult:
        opts, schedule = self.opts, self.schedule
        iteration = self.start_iter
        epoch = 0
        if self.resume_state is not None and "rng" in self.resume_state:
            _set_rng_state(self.resume_state["rng"])
        self.model.train()
        if self.cfg.train.freeze_bn:
            freeze_batchnorm(self.model)
        bar = None
        if opts.progress and self.info.is_main:
            from tqdm import tqdm

            bar = tqdm(total=schedule.max_iter, initial=iteration, unit="it", dynamic_ncols=True)
        bad_steps, last_losses, last_ckpt = 0, {}, None
        interrupted = False
        tic = time.perf_counter()
        with StopFlag() as stop:
            while iteration < schedule.max_iter and not interrupted:
                epoch = iteration // self.epoch_size
                skip = iteration - epoch * self.epoch_size
                for batch in self._loader(epoch, skip):
                    losses = self._step(batch, schedule.lr_at(iteration))
                    iteration += 1
                    if losses is None:
                        bad_steps += 1
                        log.warning("non-finite loss at iteration %d: step skipped", iteration)
                        if bad_steps >= opts.max_bad_steps:
                            raise TrainingError(
                                f"{bad_steps} non-finite losses in a row at iteration {iteration}; "
                                "lower --lr or check the data (the last checkpoint is kept)"
                            )
                    else:
                        bad_steps, last_losses = 0, losses
                        self._report(bar, iteration, epoch, losses, tic)
                        tic = time.perf_counter()
                    if opts.save_interval > 0 and iteration % opts.save_interval == 0:
                        last_ckpt = self.save(epoch, iteration) or last_ckpt
                    if self._stop_requested(stop):
                        interrupted = True
                        break
                    done, rest = divmod(iteration, self.epoch_size)
                    if (
                        rest == 0
                        and opts.validation_epoch > 0
                        and done % opts.validation_epoch == 0
                    ):
                        self.validate(done, iteration)
                    if iteration >= schedule.max_iter:
                        break
        epoch = max(iteration - 1, 0) // self.epoch_size
        if bar is not None:
            bar.close()
        last_ckpt = self.save(epoch, iteration, interrupt=interrupted) or last_ckpt
        if interrupted and self.info.is_main:
            log.info("interrupted: saved %s", last_ckpt)
        barrier()
        return TrainResult(iteration, epoch, last_ckpt, interrupted, last_losses)

    def _stop_requested(self, stop: StopFlag) -> bool:
        """Whether a process was asked to stop: every rank must stop at the same
        iteration, so under DDP the flag takes a collective; alone it is a host flag."""
        if not self.info.enabled:
            return stop.requested
        flag = torch.tensor([1.0 if stop.requested else 0.0], device=self.device)
        return float(all_reduce_sum(flag).item()) > 0

    def _report(self, bar, iteration: int, epoch: int, losses: dict[str, float], tic) -> None:
        if self.on_iteration is not None:
            self.on_iteration(iteration, losses)
        if not self.info.is_main:
            return
        if bar is not None:
            bar.update(iteration - bar.n)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if self.log is not None and (iteration % self.opts.log_interval == 0 or iteration == 1):
            lr = self.optimizer.param_groups[0]["lr"]
            self.log.train(epoch, iteration, lr, losses, time.perf_counter() - tic)


def train(
    cfg: ModelConfig,
    opts: TrainOptions,
    train_set: CocoDataset,
    val_set: CocoDataset | None = None,
) -> TrainResult:
    """Train ``cfg`` on ``train_set`` (see :class:`TrainOptions`)."""
    if not math.isfinite(opts.lr or 0.0):
        raise TrainingError("--lr must be finite")
    return Trainer(cfg, opts, train_set, val_set).run()


__all__ = ["TrainOptions", "Trainer", "TrainResult", "TrainingError", "train"]
