"""The suite pins torch to one thread (conftest's autouse ``pinned_threads``): an
entry point called in-process neither samples the machine's load nor resizes the
pools for the tests after it (issue 16, item 9)."""

from __future__ import annotations

import pytest
import torch

from yolact.runtime import threads


@pytest.fixture
def busy_machine_probe(monkeypatch):
    """Four idle cores, and a record of every /proc/stat sample taken."""
    sampled: list[int] = []
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "idle_cores", lambda cores, *a: sampled.append(cores) or 4)
    return sampled


def test_an_in_process_eval_keeps_one_torch_thread(tmp_path, capsys, busy_machine_probe):
    from yolact.cli import eval_cli

    assert torch.get_num_threads() == 1
    code = eval_cli.main([f"--video={tmp_path}/missing.mp4", "--no_bar"])
    assert code == 1 and "error: give --trained_model" in capsys.readouterr().err
    assert torch.get_num_threads() == 1 and busy_machine_probe == []
    assert threads.current_plan().source == "OMP_NUM_THREADS"


def test_a_test_may_size_the_pools_itself() -> None:
    threads.apply_threads(threads.plan_threads(4, requested=3, environ={}))
    assert torch.get_num_threads() == 3 and threads.current_plan().budget == 3


def test_the_next_test_runs_on_one_thread_again() -> None:
    """Runs after the test above (file order): nothing of its sizing is left."""
    assert torch.get_num_threads() == 1
    assert threads.current_plan().budget != 3
