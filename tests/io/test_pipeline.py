"""The stage thread of the video pipeline: order, bounded queue, errors, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from yolact.io.images import InputError
from yolact.io.pipeline import StageError, StageThread, StageTimes


def test_items_are_handled_in_order_and_finish_waits_for_all():
    seen = []
    stage = StageThread(lambda item: (time.sleep(0.002), seen.append(item)), "collect")
    for i in range(20):
        stage.put(i)
    stage.finish()
    assert seen == list(range(20)) and not stage.running


def test_the_queue_is_bounded():
    release, seen = threading.Event(), []
    stage = StageThread(lambda item: (release.wait(), seen.append(item)), "slow", max_queue=2)
    stage.put(0)  # taken by the thread, which then waits
    time.sleep(0.05)
    stage.put(1)
    stage.put(2)
    blocked = threading.Thread(target=stage.put, args=(3,))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # a third waiting item blocks the producer
    release.set()
    blocked.join(5)
    stage.finish()
    assert seen == [0, 1, 2, 3]


def test_an_error_stops_the_stage_and_reaches_the_producer_in_one_line():
    def fail_on_3(item: int) -> None:
        if item == 3:
            raise RuntimeError("disk full\nsecond line")

    stage = StageThread(fail_on_3, "drawing and writing")
    with pytest.raises(StageError) as info:
        for i in range(100):
            stage.put(i)
        stage.finish()
    assert str(info.value) == "drawing and writing failed: disk full"
    stage.abort()
    assert not stage.running


def test_an_input_error_is_raised_as_it_is():
    stage = StageThread(lambda item: (_ for _ in ()).throw(InputError("cannot write x.mp4")), "w")
    with pytest.raises(InputError, match="^cannot write x.mp4$"):
        stage.put(0)
        stage.finish()


def test_abort_drops_waiting_items_and_ends_promptly():
    seen = []
    stage = StageThread(lambda item: (time.sleep(0.05), seen.append(item)), "slow", max_queue=8)
    for i in range(8):
        stage.put(i)
    start = time.monotonic()
    stage.abort()
    assert time.monotonic() - start < 1.0 and not stage.running
    assert len(seen) <= 2


def test_the_context_wraps_the_thread():
    import torch

    grad = []
    record = lambda item: grad.append(torch.is_grad_enabled())  # noqa: E731
    stage = StageThread(record, "g", context=torch.no_grad)
    stage.put(0)
    stage.finish()
    assert grad == [False]


def test_stage_times_per_frame_and_summary():
    times = StageTimes(dict.fromkeys(("read", "network"), 0.0))
    times.add("network", 0.5)
    times.add("read", 0.1)
    times.add("post", 0.25)
    times.frames = 50
    assert times.per_frame_ms() == pytest.approx({"read": 2.0, "network": 10.0, "post": 5.0})
    assert times.summary(wall_s=0.5) == (
        "stages per frame: read 2.0 ms, network 10.0 ms, post 5.0 ms; 100.0 FPS overall"
    )
    assert StageTimes().summary(1.0) == "stages per frame: none; 0.0 FPS overall"
