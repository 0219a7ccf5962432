"""The save folder and its checkpoints: checked before training, failures survived.

A checkpoint is written to a temporary file beside its target and renamed into place
(:func:`~yolact.engine.checkpoint_names.atomic_save`), so a write that fails (a full
disk) leaves every earlier checkpoint as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

import torch

from yolact.engine.checkpoint_names import CheckpointName, atomic_save, list_checkpoints, prune
from yolact.engine.distributed import DistInfo, all_reduce_max

log = logging.getLogger("yolact.train")


class SaveFolderError(ValueError):
    """The save folder cannot exist or cannot be written."""


def check_save_folder(folder: str) -> None:
    """Create ``folder`` when missing and check that files can be made in it.

    Raises:
        SaveFolderError: one line naming the cause (a file on the path, no
            permission, ...).
    """
    path = os.path.abspath(folder)
    probe = path
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.exists(probe) and not os.path.isdir(probe):
        what = "is a file" if probe == path else f"is under the file {probe}"
        raise SaveFolderError(f"--save_folder {folder} {what}, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise SaveFolderError(
            f"--save_folder {folder} cannot be created: {e.strerror or e}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SaveFolderError(f"--save_folder {folder} cannot be written (no permission)")


def describe_error(e: BaseException) -> str:
    """An exception as a short phrase: ``No space left on device`` for an OSError."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


class SaveFailedError(RuntimeError):
    """A checkpoint could not be written and training cannot go on (one line)."""


class CheckpointKeeper:
    """Writes a run's checkpoints on rank 0 and shares each outcome with every rank.

    Policy for a failed write (a full disk, a folder gone): the earlier checkpoints
    stay as they were and one line says so. At ``--save_interval`` training goes on
    and tries again at the next interval; ``max_failed`` failures in a row, or a
    failed final or interrupt checkpoint, end the run with :class:`SaveFailedError`.
    Every rank takes rank 0's outcome (one collective), so all go on or stop together.

    Args:
        folder: the save folder.
        config: the config's name (the file names' prefix).
        info: this process's place in the run.
        device: where the outcome's collective runs.
        keep_latest: delete older regular checkpoints after each save.
        max_failed: periodic saves that may fail in a row.
        last_good: a checkpoint known to be good (the resumed one), or None.
    """

    def __init__(
        self,
        folder: str,
        config: str,
        info: DistInfo,
        device: torch.device,
        keep_latest: bool = False,
        max_failed: int = 3,
        last_good: str | None = None,
    ) -> None:
        self.folder, self.config, self.info, self.device = folder, config, info, device
        self.keep_latest, self.max_failed = keep_latest, max(1, int(max_failed))
        self.last_good = last_good
        self.error: str | None = None
        self.failed_in_a_row = 0

    def path(self, epoch: int, iteration: int, interrupt: bool = False) -> str:
        name = CheckpointName(self.config, epoch, iteration, interrupt)
        return os.path.join(self.folder, name.file_name)

    def save(
        self, state: Callable[[], dict[str, Any]], epoch: int, iteration: int, interrupt: bool
    ) -> str | None:
        """Write ``state()`` (built on rank 0 only) beside its target, then rename it
        into place.

        Returns:
            The checkpoint's path on every rank, or None when it could not be
            written (``error`` then says why on rank 0).
        """
        path = self.path(epoch, iteration, interrupt)
        self.error = None
        if self.info.is_main:
            try:
                atomic_save(state(), path)
            except OSError as e:
                self.error = describe_error(e)
        failed = self.error is not None
        if self.info.enabled:  # rank 0's outcome, so that every rank decides alike
            flag = torch.tensor([1.0 if failed else 0.0], device=self.device)
            failed = float(all_reduce_max(flag).item()) > 0
        if failed:
            return None
        self.last_good = path
        if self.info.is_main and not interrupt:
            with contextlib.suppress(OSError):  # a left-over older file is harmless
                self._remove_superseded(path, iteration)
        return path

    def _remove_superseded(self, path: str, iteration: int) -> None:
        """Interrupt checkpoints older than a new regular one, and with
        ``keep_latest`` the older regular ones."""
        for old, old_path in list_checkpoints(self.folder, self.config):
            if old.interrupt and old.iteration <= iteration:
                os.remove(old_path)
        if self.keep_latest:
            prune(self.folder, self.config, keep=path)

    def kept(self) -> str:
        """What a failed save leaves, as a phrase."""
        if self.last_good is None:
            return "no earlier checkpoint of this run to keep"
        return f"the last good checkpoint {self.last_good} is kept"

    def why(self) -> str:
        return self.error or "rank 0 could not write it"

    def periodic(
        self, state: Callable[[], dict[str, Any]], epoch: int, iteration: int, next_at: int
    ) -> None:
        """A save at ``--save_interval``; ``next_at`` is the next one's iteration.

        Raises:
            SaveFailedError: ``max_failed`` saves in a row failed.
        """
        if self.save(state, epoch, iteration, interrupt=False) is not None:
            self.failed_in_a_row = 0
            return
        self.failed_in_a_row += 1
        target = self.path(epoch, iteration)
        if self.failed_in_a_row >= self.max_failed:
            raise SaveFailedError(
                f"{self.failed_in_a_row} checkpoint saves in a row failed, the last "
                f"{target} ({self.why()}); training stopped at iteration {iteration}; "
                f"{self.kept()}"
            )
        if self.info.is_main:
            log.warning(
                "could not save %s (%s); %s; training goes on and tries again at iteration %d",
                target, self.why(), self.kept(), next_at,
            )  # fmt: skip

    def final(
        self, state: Callable[[], dict[str, Any]], epoch: int, iteration: int, interrupt: bool
    ) -> str:
        """The run's last checkpoint (an interrupt checkpoint after a stop).

        Raises:
            SaveFailedError: it could not be written.
        """
        path = self.save(state, epoch, iteration, interrupt)
        if path is None:
            what = "interrupt checkpoint" if interrupt else "final checkpoint"
            raise SaveFailedError(
                f"could not save the {what} {self.path(epoch, iteration, interrupt)} "
                f"at iteration {iteration} ({self.why()}); {self.kept()}"
            )
        return path


class SafeLog:
    """Calls a log writer; a failed write is reported in one line (once, until a
    write succeeds again) and training goes on: checkpoints do not depend on logs."""

    def __init__(self, folder: str, kept: Callable[[], str]) -> None:
        self.folder, self.kept = folder, kept
        self.failing = False

    def __call__(self, write: Callable[..., None], *args: Any) -> None:
        try:
            write(*args)
        except OSError as e:
            if not self.failing:
                log.warning(
                    "could not write the training log in %s (%s); training goes on; %s",
                    self.folder, describe_error(e), self.kept(),
                )  # fmt: skip
            self.failing = True
        else:
            self.failing = False
