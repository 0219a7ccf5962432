"""Per-source figures: percentiles against hand-computed values and numpy, the line,
and the rule that frames read but never returned count as dropped once a run ends."""

from __future__ import annotations

import numpy as np
import pytest

import yolact.inference.stats as stats_module
from yolact.inference import SourceStats
from yolact.inference.clock import VirtualClock
from yolact.inference.stats import StatsBook, percentile


def test_percentile_by_hand_and_against_numpy() -> None:
    values = [0.040, 0.010, 0.030, 0.020]
    assert percentile(values, 50) == pytest.approx(0.025)
    assert percentile(values, 95) == pytest.approx(0.0385)  # rank 2.85: 30 + 0.85 * 10 ms
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None
    rng = np.random.default_rng(0)
    many = rng.random(101).tolist()
    for q in (0, 5, 50, 95, 100):
        assert percentile(many, q) == pytest.approx(float(np.percentile(many, q)))


def test_figures_during_and_after_a_run() -> None:
    clock = VirtualClock(100.0)
    book = StatsBook(["cam0", "rtsp://cam/2"], clock.now)
    book.start()
    # source 0: four frames captured at 100.0 .. 100.3, each returned 10, 20, 30, 40 ms later
    for k, delay in enumerate((0.010, 0.020, 0.030, 0.040)):
        clock.advance(100.0 + 0.1 * k + delay - clock.now())
        book.returned(0, 100.0 + 0.1 * k)
    book.capped(1)
    clock.advance(100.5 - clock.now())
    # read so far: 7 and 3 frames; stale drops 2 and 0; frames in flight: 1 and 2
    during = book.snapshot([7, 3], [2, 0], [0, 1])
    assert during[0] == SourceStats(
        source_index=0, name="cam0", delivered=7, processed=4, dropped=2, fps=8.0,
        latency_p50_ms=pytest.approx(25.0), latency_p95_ms=pytest.approx(38.5), reconnects=0,
    )  # fmt: skip
    assert during[1] == SourceStats(1, "rtsp://cam/2", 3, 0, 1, 0.0, None, None, 1)
    book.end([7, 3], [2, 0])
    clock.advance(10.0)  # after the end, time no longer counts
    after = book.snapshot([7, 3], [2, 0], [0, 1])
    assert [(f.delivered, f.processed, f.dropped) for f in after] == [(7, 4, 3), (3, 0, 3)]
    assert all(f.delivered == f.processed + f.dropped for f in after)
    assert after[0].fps == pytest.approx(8.0)


def test_line() -> None:
    stats = SourceStats(1, "rtsp://cam/2", 450, 441, 9, 14.94, 38.2, 71.0, 0)
    assert stats.line() == (
        "source 1 rtsp://cam/2: 450 delivered, 441 processed, 9 dropped, 14.9 FPS, "
        "latency p50 38 ms p95 71 ms, 0 reconnects"
    )
    idle = SourceStats(0, "webcam 0", 0, 0, 0, 0.0, None, None, 1)
    assert idle.line() == (
        "source 0 webcam 0: 0 delivered, 0 processed, 0 dropped, 0.0 FPS, latency n/a, 1 reconnect"
    )


def test_percentiles_are_of_the_latest_latencies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats_module, "LATENCY_WINDOW", 3)
    clock = VirtualClock()
    book = StatsBook(["cam"], clock.now)
    book.start()
    for delay in (0.010, 0.020, 0.030, 0.040):
        book.returned(0, clock.now() - delay)
    (figures,) = book.snapshot([4], [0], [0])
    assert figures.processed == 4 and figures.latency_p50_ms == pytest.approx(30.0)
