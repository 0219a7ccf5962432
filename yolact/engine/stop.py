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
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Set by SIGINT/SIGTERM while entered; the loop checks it between iterations
    (and between validation images) and then saves an interrupt checkpoint.

    A second Ctrl-C raises :class:`KeyboardInterrupt` at once. ``signum`` is the
    first signal received (for the exit status 128 + signum).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C aborts at once
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> StopFlag:
        for sig in STOP_SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


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
