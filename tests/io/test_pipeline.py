"""The stage thread of the video pipeline: order, bounded queue, errors, shutdown."""

from __future__ import annotations

import threading

import pytest

from yolact.io.images import InputError
from yolact.io.pipeline import StageError, StageThread, StageTimes


def test_items_are_handled_in_order_and_finish_waits_for_all():
    gate, seen, at_finish = threading.Event(), [], []
    stage = StageThread(lambda item: (gate.wait(60), seen.append(item)), "collect")

    def produce() -> None:  # the stage holds every item until the gate opens
        for i in range(20):
            stage.put(i)
        stage.finish()
        at_finish.append(list(seen))

    producer = threading.Thread(target=produce)
    producer.start()
    gate.set()
    producer.join(60)
    assert at_finish == [list(range(20))] and not stage.running


def test_the_queue_is_bounded():
    taken, release, seen = threading.Event(), threading.Event(), []

    def slow(item: int) -> None:
        taken.set()
        release.wait(60)
        seen.append(item)

    stage = StageThread(slow, "slow", max_queue=2)
    stage.put(0)
    assert taken.wait(60)  # taken by the thread, which then waits
    stage.put(1)
    stage.put(2)
    returned: list[bool] = []
    blocked = threading.Thread(target=lambda: (stage.put(3), returned.append(release.is_set())))
    blocked.start()
    release.set()
    blocked.join(60)
    stage.finish()
    # A third waiting item blocked the producer until the stage could take one.
    assert returned == [True]
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
    taken, gate, seen = threading.Event(), threading.Event(), []

    def slow(item: int) -> None:
        taken.set()
        gate.wait(60)
        seen.append(item)

    stage = StageThread(slow, "slow", max_queue=8)
    for i in range(8):
        stage.put(i)
    assert taken.wait(60)  # item 0 in progress, 1..7 waiting
    stage.abort(timeout_s=0)  # returns at once; the item in progress still runs
    gate.set()
    stage.abort(timeout_s=60)
    assert not stage.running and seen == [0]  # the waiting items were dropped


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
