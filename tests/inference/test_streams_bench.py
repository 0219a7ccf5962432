"""The many-streams benchmark's pieces: frames, the freeze-window rate, the report's
target lines, and bad flags refused in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from yolact.bench.streams import ScenarioResult, _rate_ratio, report, synthetic_frames
from yolact.inference import SourceStats


def test_synthetic_frames() -> None:
    frames = synthetic_frames(5, 64, 48)
    assert len(frames) == 5 and all(f.shape == (48, 64, 3) for f in frames)
    assert not (frames[0] == frames[1]).all()


def test_rate_ratio_by_hand() -> None:
    # 10 s span; window 2-4 s holds 2 results (1/s); the 8 s outside hold 8 (1/s)
    captured = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5]
    assert _rate_ratio(captured, (2.0, 4.0), (0.0, 10.0)) == pytest.approx(1.0)
    assert _rate_ratio(captured[:2] + captured[4:], (2.0, 4.0), (0.0, 10.0)) == 0.0
    assert _rate_ratio([], (2.0, 4.0), (0.0, 10.0)) is None


def stats(i: int, delivered: int, processed: int, fps: float, p95: float) -> SourceStats:
    return SourceStats(i, f"cam{i}", delivered, processed, delivered - processed, fps,
                       p95 / 2, p95, 0)  # fmt: skip


def test_report_targets() -> None:
    four = ScenarioResult("4 streams", [stats(0, 100, 95, 14.0, 80.0),
                                        stats(1, 100, 89, 13.0, 120.0)], [100, 100],
                          [None, None], 7.0)  # fmt: skip
    lines = report(four, 15.0)
    assert "results for >= 90% of each stream's frames: lowest 89% (NOT met)" in lines
    assert "p95 latency <= 100 ms: highest 120 ms (NOT met)" in lines
    eight = ScenarioResult("8 streams (overload)", [stats(0, 100, 40, 4.0, 1.0),
                                                    stats(1, 100, 42, 4.2, 1.0)], [100, 100],
                           [None, None], 10.0)  # fmt: skip
    lines = report(eight, 15.0)
    assert "processed rates within 10% of each other: 4.00-4.20 FPS, spread 5.0% (met)" in lines
    assert (
        "drops counted: 118 dropped, delivered = processed + dropped for every source: True"
        in lines
    )
    frozen = ScenarioResult("freeze: 4 streams", [stats(0, 50, 50, 5.0, 1.0),
                                                  stats(1, 100, 100, 10.0, 1.0)], [50, 100],
                            [None, 0.95], 10.0)  # fmt: skip
    assert any(line.endswith("lowest 95% (met)") for line in report(frozen, 15.0))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--size=3x3"], "error: --size must be WxH of at least 32x32, got '3x3'"),
        (["--freeze=30", "--seconds=20"], "error: --fps and --seconds must be > 0"),
    ],
)
def test_bad_flags_one_line(flags: list[str], message: str) -> None:
    run = subprocess.run([sys.executable, "-m", "yolact.bench.streams", *flags],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith(message)
