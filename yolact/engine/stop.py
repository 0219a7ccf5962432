"""Stop requests (SIGINT, SIGTERM) for training: the main process acts on them, the
data loader workers ignore them.

A scheduler's stop (``timeout``, Slurm, torchrun, ``kill -- -PGID``) reaches every
process of the group, data loader workers included. A worker that died of it would
make the loader raise in the main process before the interrupt checkpoint is
written; so the workers ignore both signals and end when the loader shuts them down.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from yolact.io.stop import STOP_SIGNALS, StopSignals


class StopFlag(StopSignals):
    """The stop handler of training: :class:`yolact.io.stop.StopSignals` polling for
    the whole ``with`` block, so SIGINT or SIGTERM sets ``requested`` (and ``signum``,
    for the exit status 128 + signum); the loop checks it between iterations (and
    between validation images) and then saves an interrupt checkpoint.

    A second Ctrl-C raises :class:`KeyboardInterrupt` at once; a repeated SIGTERM (a
    scheduler's, sent to the whole group) only keeps the request.
    """

    def __init__(self) -> None:
        super().__init__(polling=True, abort_on_repeat=(signal.SIGINT,))


def ignore_stop_signals(worker_id: int) -> None:
    """A data loader ``worker_init_fn``: the worker ignores SIGINT and SIGTERM (the
    main process decides when to stop) and unblocks them again (see
    :func:`stop_signals_deferred`), which drops any that arrived while it started."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(AttributeError):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """Block SIGINT and SIGTERM while data loader workers are started.

    Forked workers inherit the blocked mask, so a stop that arrives before their
    :func:`ignore_stop_signals` has run stays pending and is then dropped; in this
    process it is delivered when the block ends.
    """
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    except (AttributeError, ValueError):  # no pthread_sigmask on this platform
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
