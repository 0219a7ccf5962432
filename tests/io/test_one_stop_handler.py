"""One SIGINT/SIGTERM handler for the CLI loops and for training (issue 17, item 7):
``StopSignals`` polling throughout, where a repeated SIGTERM is ignored and only a
second Ctrl-C aborts at once, as training needs."""

from __future__ import annotations

import signal
import threading

import pytest

from yolact.io.stop import StopSignals


def test_polling_throughout_turns_every_first_signal_into_a_request() -> None:
    before = signal.getsignal(signal.SIGINT)
    with StopSignals(polling=True) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested and stop.signum == signal.SIGINT and stop.exit_code == 130
        with pytest.raises(KeyboardInterrupt):  # by default any second signal aborts
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) == before


def test_only_the_listed_signals_abort_when_repeated() -> None:
    with StopSignals(polling=True, abort_on_repeat=(signal.SIGINT,)) as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.name == "SIGTERM"
        signal.raise_signal(signal.SIGTERM)  # a group's SIGTERM again: still just a stop
        assert stop.signum == signal.SIGTERM and stop.exit_code == 143
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C does not wait
            signal.raise_signal(signal.SIGINT)
        assert stop.signum == signal.SIGTERM


def test_off_the_main_thread_it_installs_nothing() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def enter() -> None:
        with StopSignals(polling=True) as stop:
            seen.append(signal.getsignal(signal.SIGTERM))
            seen.append(stop.requested)

    worker = threading.Thread(target=enter)
    worker.start()
    worker.join(60)
    assert seen == [before, False]


def test_training_stops_with_the_same_handler() -> None:
    from yolact.engine.stop import StopFlag

    assert issubclass(StopFlag, StopSignals) and StopFlag._handle is StopSignals._handle
    before = signal.getsignal(signal.SIGTERM)
    with StopFlag() as stop:
        assert isinstance(stop, StopFlag) and not stop.requested
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == before
