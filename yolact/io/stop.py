"""Ending long runs cleanly on SIGINT (Ctrl-C) and SIGTERM: the one handler of both.

``StopSignals`` turns the first of these signals into a stop request that loops
over frames or images poll between items, so a stopped run still closes its
video file and writes its results. Outside those loops, and for a second
signal, it raises ``KeyboardInterrupt`` at once, so a run never hangs on a stop.

A loop that can stop at any point it checks (training) polls throughout
(``StopSignals(polling=True, abort_on_repeat=(signal.SIGINT,))``): every signal
asks it to stop at its next check, and only a second Ctrl-C aborts at once (a
scheduler's group-wide SIGTERM may arrive more than once).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Collection, Iterator
from types import FrameType, TracebackType
from typing import Any, TypeVar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_Stop = TypeVar("_Stop", bound="StopSignals")


class StopSignals:
    """While active (``with StopSignals() as stop:``), SIGINT and SIGTERM ask for a stop.

    Handlers are installed only on the main thread (elsewhere the object is
    inert: ``requested`` stays False) and the previous ones are put back on exit.

    Args:
        polling: poll for the whole ``with`` block, as if inside :meth:`polling`.
        abort_on_repeat: the signals that raise ``KeyboardInterrupt`` when they
            arrive after the first; others are then ignored (default: both).

    Attributes:
        event: set by the first signal that arrives inside ``polling()``; give it
            to waits that should end early (``FrameReader(cancel=...)``).
        signum: the first signal received, or None.
    """

    def __init__(
        self, *, polling: bool = False, abort_on_repeat: Collection[int] = STOP_SIGNALS
    ) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._polling = 1 if polling else 0
        self._abort_on_repeat = frozenset(int(s) for s in abort_on_repeat)
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __enter__(self: _Stop) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if first and self._polling:
            self.event.set()
            return
        if not first and signum not in self._abort_on_repeat:
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def polling(self) -> Iterator[StopSignals]:
        """Within this block a signal only sets ``requested``; the code inside checks it."""
        self._polling += 1
        try:
            yield self
        finally:
            self._polling -= 1

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for while polling."""
        return self.event.is_set()

    @property
    def name(self) -> str:
        """The received signal's name ("SIGTERM"), or "SIGINT" when none was received."""
        return signal.Signals(self.signum or signal.SIGINT).name

    @property
    def exit_code(self) -> int:
        """The shell's code for a run ended by the signal: 128 + its number
        (130 for SIGINT, also without a signal, 143 for SIGTERM)."""
        return 128 + int(self.signum or signal.SIGINT)
