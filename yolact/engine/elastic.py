"""Elastic runs under torchrun: a restarted group resumes from its own newest checkpoint.

``torchrun --max-restarts=N`` starts every process of the group again when one dies
(or a machine is lost), with the same command line. train.py then finds where the
run had got to by itself:

- Under torchrun (``TORCHELASTIC_RUN_ID`` is set) every checkpoint stores the run's
  key (``elastic_run``): torchrun's run id, the ``--rdzv-id`` (``--standalone`` makes
  a new one per launch). torchrun's default id ``none`` (no ``--rdzv-id``, one
  machine) names no job, so there the key is ``none@<host>:<torchrun's pid>``: this
  launch only.
- At every start under torchrun, the newest complete checkpoint of the config in
  the save folder whose key is this run's is resumed from, as ``--resume`` would
  (model, optimizer, schedule, iteration, data order); a checkpoint of another
  run, or a file left half-written when a process died, is never taken. With
  none, the run starts as its command line says (``--resume``, ``--init_weights``
  or from scratch), as it did at its first start.

The restart count (``TORCHELASTIC_RESTART_COUNT``) is not used to tell a restart:
on several machines torchrun counts restarts per machine, and the machines whose
own processes did not fail start their new processes with a count of 0.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from yolact.engine.checkpoint_names import CheckpointName, newest_complete

log = logging.getLogger("yolact.train")

RUN_ENTRY = "elastic_run"
"""The checkpoint entry that holds the run's key (see :func:`run_key`)."""


def run_key(environ: Mapping[str, str] | None = None) -> str | None:
    """This run's key under torchrun, None outside it (see the module's text)."""
    env = os.environ if environ is None else environ
    run_id = env.get("TORCHELASTIC_RUN_ID")
    if not run_id:
        return None
    if run_id == "none":  # torchrun's default: one machine, this launch
        return f"none@{socket.gethostname()}:{os.getppid()}"
    return run_id


def this_runs_checkpoint(folder: str, config: str, key: str) -> str | None:
    """The newest complete checkpoint of ``config`` in ``folder`` that run ``key``
    wrote, or None (files that are not whole are skipped with one line each)."""
    return newest_complete(folder, config, accept=lambda entries: entries.get(RUN_ENTRY) == key)


def remove_stale_temps(folder: str, config: str) -> list[str]:
    """Delete the temporary files that checkpoint writes of ``config`` left in
    ``folder`` when their process was killed (``.<checkpoint name>.tmp``).

    Call it only where no write can be under way (rank 0, before training).

    Returns:
        The paths removed.
    """
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        if not (entry.startswith(".") and entry.endswith(".tmp")):
            continue
        name = CheckpointName.parse(entry[1 : -len(".tmp")])
        if name is None or name.config != config:
            continue
        path = os.path.join(folder, entry)
        try:
            os.remove(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def elastic_resume(
    folder: str, config: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """Under torchrun, the checkpoint this start resumes from (see the module's text);
    None outside torchrun or where this run has none yet.

    Rank 0 (the only writer) first deletes the temporary files of writes that a
    killed process left.
    """
    env = os.environ if environ is None else environ
    key = run_key(env)
    if key is None:
        return None
    if env.get("RANK", "0") == "0":
        for temp in remove_stale_temps(folder, config):
            log.info("removed %s, left by a checkpoint write that did not finish", temp)
    path = this_runs_checkpoint(folder, config, key)
    if path is not None:
        log.info("torchrun run %s: resuming from its newest complete checkpoint %s", key, path)
    return path
