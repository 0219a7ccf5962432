"""Thread-pool sizing: the decision on hand-computed cases, and what it applies."""

from __future__ import annotations

import cv2
import pytest
import torch

from yolact.runtime import threads
from yolact.runtime.threads import ThreadsError, apply_threads, current_plan, plan_threads


def sizes(plan: threads.ThreadPlan) -> tuple[int, int, int, int, str]:
    return plan.budget, plan.intra_op, plan.inter_op, plan.opencv, plan.source


@pytest.mark.parametrize(
    ("cores", "requested", "env", "reserved", "expected"),
    [
        # cores alone: the network gets every core not reserved for the pipeline
        (2, None, {}, 0, (2, 2, 1, 2, "cores")),
        (2, None, {}, 1, (2, 1, 1, 1, "cores")),
        (1, None, {}, 1, (1, 1, 1, 1, "cores")),
        (16, None, {}, 1, (16, 15, 1, 1, "cores")),
        (16, None, {}, 4, (16, 12, 1, 4, "cores")),
        # an explicit OMP_NUM_THREADS fixes the network's threads
        (16, None, {"OMP_NUM_THREADS": "3"}, 1, (16, 3, 1, 1, "OMP_NUM_THREADS")),
        (2, None, {"OMP_NUM_THREADS": "1"}, 0, (2, 1, 1, 2, "OMP_NUM_THREADS")),
        (8, None, {"OMP_NUM_THREADS": "4,2"}, 0, (8, 4, 1, 8, "OMP_NUM_THREADS")),
        (8, None, {"OMP_NUM_THREADS": " "}, 0, (8, 8, 1, 8, "cores")),
        # --threads wins over both
        (16, 4, {"OMP_NUM_THREADS": "3"}, 1, (4, 3, 1, 1, "--threads")),
        (2, 8, {}, 0, (8, 8, 1, 8, "--threads")),
        (16, 1, {}, 1, (1, 1, 1, 1, "--threads")),
    ],
)
def test_plan_threads(cores, requested, env, reserved, expected):
    plan = plan_threads(cores, requested=requested, environ=env, reserved=reserved)
    assert sizes(plan) == expected
    assert plan.runtime == plan.intra_op and plan.cores == cores


@pytest.mark.parametrize(
    ("budget", "requested", "workers"), [(2, 4, 1), (1, 4, 0), (16, 4, 4), (8, 0, 0)]
)
def test_loader_workers_leave_a_core_to_training(budget, requested, workers):
    assert plan_threads(budget, environ={}).loader_workers(requested) == workers


@pytest.mark.parametrize(
    ("requested", "env", "message"),
    [
        (0, {}, "--threads must be at least 1, got 0"),
        (None, {"OMP_NUM_THREADS": "0"}, "OMP_NUM_THREADS must be a positive integer, got '0'"),
        (None, {"OMP_NUM_THREADS": "many"}, "OMP_NUM_THREADS must be a positive integer, got"),
    ],
)
def test_bad_counts_say_which(requested, env, message):
    with pytest.raises(ThreadsError, match=message):
        plan_threads(4, requested=requested, environ=env)


def test_available_cores_follows_the_affinity(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert threads.available_cores() == 3


def test_apply_sets_torch_and_opencv_and_is_remembered():
    before_torch, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    plan = plan_threads(4, requested=3, environ={}, reserved=1)
    try:
        apply_threads(plan)
        assert torch.get_num_threads() == 2
        assert cv2.getNumThreads() == 1
        assert current_plan() is plan
    finally:
        torch.set_num_threads(before_torch)
        cv2.setNumThreads(before_cv)
    assert plan.describe() == (
        "threads: torch 2 (+1 inter-op), opencv 1; 4 cores, budget 3 (--threads)"
    )


@pytest.fixture
def restore_pools():
    before_torch, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(before_torch)
    cv2.setNumThreads(before_cv)
    threads._current = None


def test_eval_and_train_refuse_zero_threads_in_one_line(capsys, restore_pools):
    from yolact.cli import eval_cli, train_cli

    assert eval_cli.main(["--threads=0", "--image=x.png", "--no_bar"]) == 1
    assert train_cli.main(["--threads=0", "--config=yolact_tiny", "--no_bar"]) == 1
    err = capsys.readouterr().err
    assert err.count("error: --threads must be at least 1, got 0") == 2, err
    assert "Traceback" not in err


def test_eval_sizes_its_pools_before_running(tmp_path, capsys, restore_pools):
    """A video run keeps one thread for drawing and writing: --threads=3 leaves 2 to torch."""
    from yolact.cli import eval_cli

    code = eval_cli.main(["--threads=3", f"--video={tmp_path}/missing.mp4", "--no_bar"])
    assert code == 1 and "error: give --trained_model" in capsys.readouterr().err
    plan = current_plan()
    assert (plan.source, plan.budget, plan.intra_op, plan.opencv) == ("--threads", 3, 2, 1)
    assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 1


def test_plan_follows_the_idle_cores():
    """Beside a busy process (1 of 2 cores idle) the budget shrinks to the idle
    core; --threads and OMP_NUM_THREADS still win."""
    busy = plan_threads(2, environ={}, idle=1)
    assert (busy.budget, busy.intra_op, busy.opencv, busy.source) == (1, 1, 1, "1 of 2 cores idle")
    video = plan_threads(2, environ={}, idle=1, reserved=1)
    assert (video.budget, video.intra_op, video.opencv) == (1, 1, 1)
    free = plan_threads(2, environ={}, idle=2)
    assert (free.budget, free.intra_op, free.source) == (2, 2, "cores")
    assert plan_threads(4, environ={}, idle=9).budget == 4  # never above the cores
    assert plan_threads(4, environ={}, idle=0).budget == 1  # never below one
    assert plan_threads(2, requested=2, environ={}, idle=1).intra_op == 2
    assert plan_threads(2, environ={"OMP_NUM_THREADS": "2"}, idle=1).intra_op == 2


def test_idle_cores_from_proc_stat(monkeypatch):
    """The machine's idle share over the sample times its CPU count, rounded."""
    samples = iter([(100, 1000), (100 + 150, 1000 + 300)])  # half the time idle
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    assert threads.idle_cores(2, sample_s=0) == 1
    samples = iter([(0, 0), (290, 300)])
    assert threads.idle_cores(2, sample_s=0) == 2
    monkeypatch.setattr(threads, "_cpu_times", lambda: None)
    assert threads.idle_cores(2, sample_s=0) is None
