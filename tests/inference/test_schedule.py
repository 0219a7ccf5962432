"""The live-stream scheduler with fake cameras and a fake network on a virtual clock:
batches never wait for a stalled or slow source, every rate gets its frames, the
detect_fps cap, fairness under overload and the per-source figures."""

from __future__ import annotations

import threading

import pytest

from tests.inference.sim import FakeSlot, Sim, camera, every
from yolact.inference.clock import VirtualClock
from yolact.inference.schedule import RateCap, Scheduler

WAIT = 0.005  # batch_wait
PER_FRAME = 0.010  # the fake network's seconds per frame


def per_frame(n: int) -> float:
    return PER_FRAME * n


def test_a_stalled_source_never_holds_the_others() -> None:
    """Three cameras at 10 fps; camera 2 sends nothing from 1 s to 4 s. The others
    get every frame; while camera 2 is silent their batches start batch_wait after
    their frames, with camera 2 they start at once (all sources ready)."""
    sim = Sim(3, per_frame, batch_wait=WAIT)
    for i in (0, 1):
        camera(sim.clock, sim.slots[i], every(10, 0, 5))
    camera(sim.clock, sim.slots[2], every(10, 0, 1) + every(10, 4, 5))
    sim.run(5.0)
    assert sim.processed(0) == sim.processed(1) == list(range(50))
    assert sim.processed(2) == list(range(20))
    for start, batch in sim.batches:
        frame_time = batch[0].captured
        if len(batch) == 3:
            assert start == frame_time
        else:
            assert [t.source_index for t in batch] == [0, 1]
            assert 1.0 <= frame_time < 4.0
            assert start == pytest.approx(frame_time + WAIT)
    figures = sim.figures()
    assert [f.dropped for f in figures] == [0, 0, 0]
    # latency: 30 ms in a batch of three; 5 ms wait + 20 ms while camera 2 is silent
    assert figures[0].latency_p50_ms == pytest.approx(25.0)
    assert figures[0].latency_p95_ms == pytest.approx(30.0)


def test_unequal_rates_each_get_their_frames() -> None:
    """30 fps and 5 fps: both get every frame. Alone, a frame of the fast camera waits
    batch_wait (5 ms) for the slow one then costs 10 ms; every sixth frame goes with
    the slow camera's, at once, in a batch of two (20 ms)."""
    sim = Sim(2, per_frame, batch_wait=WAIT)
    camera(sim.clock, sim.slots[0], every(30, 0, 2))
    camera(sim.clock, sim.slots[1], every(5, 0, 2))
    sim.run(2.0)
    assert sim.processed(0) == list(range(60)) and sim.processed(1) == list(range(10))
    fast, slow = sim.figures()
    assert (fast.delivered, fast.processed, fast.dropped) == (60, 60, 0)
    assert (slow.delivered, slow.processed, slow.dropped) == (10, 10, 0)
    # fast: 50 frames at 15 ms, 10 at 20 ms -> p50 15; p95 at rank 56.05 -> 20
    assert fast.latency_p50_ms == pytest.approx(15.0)
    assert fast.latency_p95_ms == pytest.approx(20.0)
    assert slow.latency_p50_ms == pytest.approx(20.0) == slow.latency_p95_ms


def test_zero_batch_wait_takes_what_is_ready() -> None:
    sim = Sim(2, per_frame, batch_wait=0.0)
    camera(sim.clock, sim.slots[0], every(10, 0, 1))
    camera(sim.clock, sim.slots[1], every(10, 0, 1, offset=0.05))
    sim.run(1.0)
    assert all(len(batch) == 1 and start == batch[0].captured for start, batch in sim.batches)
    assert sim.processed(0) == sim.processed(1) == list(range(10))


def test_detect_fps_thins_a_fast_camera() -> None:
    """25 fps capped at 10: slots of 0.1 s from the first frame; frames 0, 3, 5, 8,
    10, ... (the first of each slot) are processed, the others dropped."""
    sim = Sim(1, per_frame, batch_wait=WAIT, detect_fps=10)
    camera(sim.clock, sim.slots[0], every(25, 0, 2))
    sim.run(2.0)
    want = [k for k in range(50) if k == 0 or (2 * k) // 5 > (2 * (k - 1)) // 5]
    assert sim.processed(0) == want and len(want) == 20
    (figures,) = sim.figures()
    assert (figures.delivered, figures.processed, figures.dropped) == (50, 20, 30)
    assert sim.capped == [30]


def test_detect_fps_keeps_a_jittery_camera_at_the_cap() -> None:
    """A 15 fps camera read 4 ms early or late, capped at 15: every frame is kept
    (two frames can be closer than 1/15 s and still be in different slots)."""
    sim = Sim(1, per_frame, batch_wait=WAIT, detect_fps=15)
    times = [1.0 + k / 15 + (0.004 if k % 2 else -0.004) for k in range(30)]
    camera(sim.clock, sim.slots[0], times)
    sim.run(4.0)
    assert sim.processed(0) == list(range(30)) and sim.capped == [0]


def test_rate_cap_by_hand() -> None:
    cap = RateCap(4.0)  # slots of 0.25 s from the first frame used
    assert cap.allows(10.0)
    cap.used(10.0)
    assert not cap.allows(10.2) and cap.allows(10.25) and cap.allows(10.3)
    cap.used(10.3)
    assert not cap.allows(10.49) and cap.allows(10.5)
    with pytest.raises(ValueError, match="detect_fps must be a positive number, got 0"):
        RateCap(0)


def test_overload_shares_the_network_fairly() -> None:
    """8 cameras at 15 fps (out of step), a network that does 3 frames per call at 30 ms
    a frame: far too slow. Sources served least recently go first, so the processed
    counts stay within 10% of each other, and every frame not processed is counted."""
    sim = Sim(8, lambda n: 0.030 * n, batch_wait=WAIT, max_batch=3)
    for i, slot in enumerate(sim.slots):
        camera(sim.clock, slot, every(15, 0, 10, offset=i / 120))
    sim.run(10.0)
    counts = [len(sim.processed(i)) for i in range(8)]
    assert sum(counts) >= 300  # the network was busy all along (10 s at 33 frames/s)
    assert max(counts) <= 1.1 * min(counts) and max(counts) - min(counts) <= 1  # in turn
    assert all(len(b) <= 3 for _, b in sim.batches)
    for i, f in enumerate(sim.figures()):
        waiting = sim.slots[i].frame is not None
        assert f.delivered == 150 and f.processed == counts[i]
        assert f.dropped == 150 - counts[i] - waiting


def test_batch_holds_one_frame_per_source_at_most() -> None:
    """Camera 0 sends three frames while the batch waits for camera 1: only the newest
    goes, with camera 1's, once both are ready (3 ms, less than batch_wait)."""
    sim = Sim(2, per_frame, batch_wait=WAIT)
    camera(sim.clock, sim.slots[0], [0.0, 0.001, 0.002])
    camera(sim.clock, sim.slots[1], [0.003])
    sim.run(1.0)
    assert len(sim.batches) == 1
    start, batch = sim.batches[0]
    assert start == 0.003 and [(t.source_index, t.frame_index) for t in batch] == [(0, 2), (1, 0)]
    assert [s.stale for s in sim.slots] == [2, 0]
    assert [f.dropped for f in sim.figures()] == [2, 0]


def test_every_source_ended_ends_the_batches() -> None:
    clock, cond = VirtualClock(), threading.Condition()
    slots = [FakeSlot(clock, cond), FakeSlot(clock, cond)]
    camera(clock, slots[0], [0.1], end=0.2)
    camera(clock, slots[1], [], end=0.3)
    sched = Scheduler(slots, clock, batch_wait=WAIT)
    first = sched.gather(cond, lambda: False)
    assert [(t.source_index, t.frame_index, t.captured) for t in first] == [(0, 0, 0.1)]
    assert sched.gather(cond, lambda: False) == [] and clock.now() == 0.3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_wait": -1.0}, "batch_wait must be >= 0 seconds, got -1.0"),
        ({"max_batch": 0}, "max_batch must be >= 1, got 0"),
        ({"detect_fps": -5.0}, "detect_fps must be a positive number, got -5.0"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scheduler([], VirtualClock(), **options)
