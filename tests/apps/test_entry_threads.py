"""Every entry point sizes its thread pools: the demo before it evaluates, and the
Python API when it creates a predictor, unless the program set them (issue 16, item 11)."""

from __future__ import annotations

import pytest
import torch
from conftest import REPO

from yolact.core import threads
from yolact.predictor import Predictor

SHIPPED = str(REPO / "weights" / "yolact_tiny_synthetic.pth")


@pytest.fixture
def fresh_process(monkeypatch):
    """As a new process on 4 cores of which 3 are idle: no OMP_NUM_THREADS, no plan
    yet, torch at the count it had on import. Returns the cores sampled."""
    sampled: list[int] = []
    monkeypatch.delenv(threads.OMP_ENV, raising=False)
    monkeypatch.setattr(threads, "_current", None)
    monkeypatch.setattr(threads, "_TORCH_THREADS_AT_IMPORT", torch.get_num_threads())
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "idle_cores", lambda cores, *a: sampled.append(cores) or 3)
    return sampled


def test_the_api_sizes_the_pools_once(fresh_process) -> None:
    Predictor.from_checkpoint(SHIPPED, device="cpu")
    assert torch.get_num_threads() == 3 and fresh_process == [4]
    assert threads.current_plan().source == "3 of 4 cores idle"
    Predictor.from_checkpoint(SHIPPED, device="cpu")  # sized already: not sampled again
    assert fresh_process == [4]


def test_the_api_takes_a_thread_count(fresh_process) -> None:
    Predictor.from_checkpoint(SHIPPED, device="cpu", threads=2)
    assert torch.get_num_threads() == 2 and fresh_process == []
    with pytest.raises(threads.ThreadsError, match="^--threads must be at least 1, got 0$"):
        Predictor.from_checkpoint(SHIPPED, device="cpu", threads=0)


def test_the_api_keeps_what_the_program_set(fresh_process, monkeypatch) -> None:
    torch.set_num_threads(torch.get_num_threads() + 1)
    chosen = torch.get_num_threads()
    Predictor.from_checkpoint(SHIPPED, device="cpu")
    assert torch.get_num_threads() == chosen and fresh_process == []
    monkeypatch.setattr(threads, "_TORCH_THREADS_AT_IMPORT", chosen)
    monkeypatch.setenv(threads.OMP_ENV, "2")
    Predictor.from_checkpoint(SHIPPED, device="cpu")
    assert torch.get_num_threads() == chosen and fresh_process == []


def test_a_family_predictor_sizes_them_too(fresh_process) -> None:
    from yolact.models.yolact.predictor import YolactPredictor

    YolactPredictor.from_checkpoint(SHIPPED, device="cpu")
    assert torch.get_num_threads() == 3 and fresh_process == [4]


def test_the_demo_evaluates_with_sized_pools(fresh_process, monkeypatch, tmp_path) -> None:
    import yolact.demo as demo

    seen = []

    def fake_evaluate(predictor, dataset, progress):
        seen.append((torch.get_num_threads(), threads.current_plan().source))
        raise SystemExit("stop")

    monkeypatch.setattr(demo, "evaluate_dataset", fake_evaluate)
    with pytest.raises(SystemExit):
        demo.run_demo(out=str(tmp_path / "o"), data_dir=str(tmp_path / "d"), weights=SHIPPED,
                      num_val=2, image_size=48, progress=False)  # fmt: skip
    assert seen == [(3, "3 of 4 cores idle")]


def test_the_demo_sizes_them_again_after_training(fresh_process, monkeypatch, tmp_path) -> None:
    """Training sizes the pools for itself (here to 1 thread); the evaluation after it
    gets the demo's own plan again."""
    import yolact.demo as demo

    seen = []

    def fake_train(*args, **kwargs) -> None:
        threads.apply_threads(threads.plan_threads(4, requested=1, environ={}))

    def fake_evaluate(predictor, dataset, progress):
        seen.append(torch.get_num_threads())
        raise SystemExit("stop")

    monkeypatch.setattr(demo, "train_model", fake_train)
    monkeypatch.setattr(demo, "evaluate_dataset", fake_evaluate)
    with pytest.raises(SystemExit):
        demo.run_demo(out=str(tmp_path / "o"), data_dir=str(tmp_path / "d"), weights=SHIPPED,
                      num_train=2, num_val=2, image_size=48, progress=False, force=True,
                      threads=2)  # fmt: skip
    assert seen == [2]


def test_the_demo_refuses_zero_threads_in_one_line(capsys) -> None:
    import yolact.demo as demo

    assert demo.main(["--threads=0", "--no_bar"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: --threads must be at least 1, got 0"]
