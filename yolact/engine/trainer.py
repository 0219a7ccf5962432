"""The training loop: one explicit loop, single process or DDP under torchrun."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, SupportsInt

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from yolact.core.config import ModelConfig
from yolact.core.family import Family, TrainingHooks
from yolact.data.coco import CocoDataset
from yolact.engine.checkpoint_names import (
    CheckpointName,
    dataset_paths,
    resume_path,
)
from yolact.engine.csvlog import CsvLog
from yolact.engine.data import (
    AugmentedDataset,
    EpochSampler,
    images_to_device,
    start_batches,
    targets_to_device,
    train_loader,
)
from yolact.engine.distributed import (
    DistInfo,
    all_reduce_max,
    all_reduce_sum,
    barrier,
    device_for,
    init_distributed,
)
from yolact.engine.elastic import RUN_ENTRY, run_key
from yolact.engine.evaluate import EvaluationStoppedError, evaluate_dataset, format_aps
from yolact.engine.init_weights import initialise
from yolact.engine.options import TrainingError, TrainOptions, TrainResult
from yolact.engine.progress import Progress, startup_summary
from yolact.engine.saving import CheckpointKeeper, SafeLog, SaveFailedError, check_save_folder
from yolact.engine.schedule import Schedule, make_schedule
from yolact.engine.state import (
    build_optimizer,
    freeze_batchnorm,
    rng_state,
    set_rng_state,
)
from yolact.engine.stop import StopFlag
from yolact.registry import family_of, read_checkpoint
from yolact.runtime.threads import current_plan

log = logging.getLogger("yolact.train")


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
        self.stop: StopFlag | None = None
        self._setup_processes()
        self._setup_config(cfg)
        torch.manual_seed(opts.seed)
        self.model = self.family.build_train_model(self.cfg).to(self.device)
        self.hooks: TrainingHooks | None = self.family.training_hooks(self.model, self.cfg)
        self._load_initial_weights()
        self._check_same_start()
        self.run_key = run_key()  # under torchrun: stored in every checkpoint
        try:
            check_save_folder(opts.save_folder)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        self.net = self._wrap_model()
        self._setup_optimizer()
        self._setup_data()
        self.log = CsvLog(opts.save_folder, self.cfg.name) if self.info.is_main else None
        self.keeper = CheckpointKeeper(
            opts.save_folder, self.cfg.name, self.info, self.device, opts.keep_latest,
            opts.max_failed_saves, self.resumed_from,
        )  # fmt: skip
        self.write_log = SafeLog(opts.save_folder, self.keeper.kept)

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
        self.resumed_from: str | None = None
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

    def _check_same_start(self) -> None:
        """Every rank starts at the same iteration (one collective under DDP): ranks
        that resumed from different files (a save folder not shared by every
        machine) would train on, out of step."""
        if not self.info.enabled:
            return
        bounds = torch.tensor([self.start_iter, -self.start_iter], device=self.device)
        highest, lowest = all_reduce_max(bounds).tolist()
        if highest != -lowest:
            raise TrainingError(
                f"the processes start at different iterations ({-lowest} to {highest}): "
                "each machine must see the same save folder (shared storage)"
            )

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
        self.resumed_from = path
        log.info("resuming from %s at iteration %d", path, self.start_iter)

    def _state(self, epoch: int, iteration: int) -> dict[str, Any]:
        state = {
            "model": self.model.state_dict(),
            "config": self.cfg.to_dict(),
            "class_names": list(self.cfg.class_names),
            "optimizer": self.optimizer.state_dict(),
            "iteration": iteration,
            "epoch": epoch,
            "rng": rng_state(),
            "data": dataset_paths(self.train_set, self.val_set),
        }
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        if self.run_key is not None:
            state[RUN_ENTRY] = self.run_key
        if self.hooks is not None:
            state.update(self.hooks.state_dict() or {})
        return state

    def save(self, epoch: int, iteration: int, interrupt: bool = False) -> str | None:
        """Write a checkpoint (on rank 0); its path on every rank, None when it failed
        (see :class:`~yolact.engine.saving.CheckpointKeeper`)."""
        return self.keeper.save(lambda: self._state(epoch, iteration), epoch, iteration, interrupt)

    # ---- the loop ---------------------------------------------------------------------

    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        """The epoch's loader from the part-way point (see :func:`.data.train_loader`)."""
        self.data.set_epoch(epoch)
        self.sampler.set_epoch(epoch, skip_batches * self.local_batch)
        return train_loader(
            self.data, self.sampler, self.local_batch,
            current_plan().loader_workers(self.opts.num_workers),
            pin_memory=self.device.type == "cuda", seed=self.opts.seed + epoch,
        )  # fmt: skip

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
        """Evaluate on the validation set (every rank its shard); rank 0 logs the APs.

        Raises:
            EvaluationStoppedError: a stop was requested (on some rank) during the evaluation.
        """
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
                should_stop=self._stop_signal,
            )
        finally:
            self.model.train()
            if self.cfg.train.freeze_bn:
                freeze_batchnorm(self.model)
        if self.info.is_main and result.metrics is not None:
            if self.log is not None:
                self.write_log(self.log.validation, epoch, iteration, result.metrics)
            log.info("validation at iteration %d: %s", iteration, format_aps(result.metrics))
        return result.metrics

    def _summary(self) -> str:
        """The start-up line (see :func:`.progress.startup_summary`)."""
        validating = self.val_set is not None and self.opts.validation_epoch > 0
        val = len(self.val_set) if self.val_set is not None and validating else None
        if val is not None and self.opts.validation_size >= 0:
            val = min(val, self.opts.validation_size)
        return startup_summary(
            self.cfg.name, len(self.train_set), len(self.cfg.class_names), val,
            str(self.device), self.opts.batch_size, self.info.world_size, self.schedule.lr,
            self.start_iter, self.schedule.max_iter, self.opts.save_folder,
            current_plan().loader_workers(self.opts.num_workers),
        )  # fmt: skip

    def run(self) -> TrainResult:
        """Train from ``start_iter`` to the schedule's end, or until a stop request.

        A SIGINT/SIGTERM (to this process or its whole group) ends the iteration
        under way, or the validation, on every rank alike; an interrupt checkpoint
        is then written and ``signal`` in the result names the signal.

        Raises:
            TrainingError: repeated non-finite losses, too many failed saves, or a
                final (or interrupt) checkpoint that could not be written.
        """
        opts, schedule = self.opts, self.schedule
        iteration = self.start_iter
        if self.resume_state is not None and "rng" in self.resume_state:
            set_rng_state(self.resume_state["rng"])
        self.model.train()
        if self.cfg.train.freeze_bn:
            freeze_batchnorm(self.model)
        progress = None
        if opts.progress and self.info.is_main:
            log.info("%s", self._summary())
            progress = Progress(schedule.max_iter, iteration, opts.log_interval, bar=opts.bar)
        # The stop handler stays in place through the last checkpoint's write: a stop
        # that arrives then does not cut the write short.
        with StopFlag() as stop:
            self.stop = stop
            try:
                iteration, signum, losses = self._loop(iteration, progress)
            finally:
                if progress is not None:
                    progress.close()
            epoch = max(iteration - 1, 0) // self.epoch_size
            result = self._finish(epoch, iteration, signum, losses)
            self.stop = None
        return result

    def _loop(self, iteration: int, progress: Progress | None) -> tuple[int, int, dict[str, float]]:
        """Iterations from ``iteration`` to the end or a stop.

        Returns:
            The iteration reached, the stop signal (0: none) and the last losses.
        """
        opts, schedule = self.opts, self.schedule
        bad_steps, last_losses, signum = 0, {}, 0
        tic = time.perf_counter()
        while iteration < schedule.max_iter and not signum:
            epoch = iteration // self.epoch_size
            batches = start_batches(self._loader(epoch, iteration - epoch * self.epoch_size))
            for batch in batches:
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
                    self._report(progress, iteration, epoch, losses, tic)
                    tic = time.perf_counter()
                if opts.save_interval > 0 and iteration % opts.save_interval == 0:
                    self._periodic_save(epoch, iteration)
                signum = self._stop_signal()
                if signum:
                    break
                if self._validation_due(iteration):
                    try:
                        self.validate(iteration // self.epoch_size, iteration)
                    except EvaluationStoppedError as e:
                        signum = e.signum
                        break
                if iteration >= schedule.max_iter:
                    break
            del batches  # the workers end here, before anything is saved
        return iteration, signum, last_losses

    def _finish(
        self, epoch: int, iteration: int, signum: int, losses: dict[str, float]
    ) -> TrainResult:
        """The final (or interrupt) checkpoint, on every rank alike.

        Raises:
            TrainingError: it could not be written.
        """
        try:
            path = self.keeper.final(
                lambda: self._state(epoch, iteration), epoch, iteration, bool(signum)
            )
        except SaveFailedError as e:
            raise TrainingError(str(e)) from None
        barrier()
        return TrainResult(iteration, epoch, path, bool(signum), losses, signum)

    def _validation_due(self, iteration: int) -> bool:
        """Whether ``iteration`` ends an epoch at which ``--validation_epoch`` validates."""
        done, rest = divmod(iteration, self.epoch_size)
        every = self.opts.validation_epoch
        return rest == 0 and every > 0 and done % every == 0

    def _periodic_save(self, epoch: int, iteration: int) -> None:
        """A checkpoint at ``--save_interval``; a failure is survived (see
        :class:`~yolact.engine.saving.CheckpointKeeper`) up to ``max_failed_saves``."""
        try:
            self.keeper.periodic(
                lambda: self._state(epoch, iteration), epoch, iteration,
                iteration + self.opts.save_interval,
            )  # fmt: skip
        except SaveFailedError as e:
            raise TrainingError(str(e)) from None

    def _stop_signal(self) -> int:
        """The stop signal received (0: none). Every rank must stop at the same
        iteration, so under DDP the ranks agree with a collective (the largest signal
        number of any rank); alone it is a host flag."""
        own = self.stop.signum if self.stop is not None and self.stop.signum else 0
        if not self.info.enabled:
            return own
        flag = torch.tensor([float(own)], device=self.device)
        return int(all_reduce_max(flag).item())

    def _report(
        self, progress: Progress | None, iteration: int, epoch: int, losses: dict[str, float],
        tic: float,
    ) -> None:  # fmt: skip
        if self.on_iteration is not None:
            self.on_iteration(iteration, losses)
        if not self.info.is_main:
            return
        lr = self.optimizer.param_groups[0]["lr"]
        if progress is not None:
            progress.update(iteration, epoch, losses, lr)
        if self.log is not None and (iteration % self.opts.log_interval == 0 or iteration == 1):
            seconds = time.perf_counter() - tic
            self.write_log(self.log.train, epoch, iteration, lr, losses, seconds)


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
