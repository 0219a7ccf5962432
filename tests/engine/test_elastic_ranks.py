"""Issue 20 item 2: ranks that would resume from different iterations (a save folder
that is not shared by every machine) stop with one clear line before any step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from yolact.engine.distributed import DistInfo
from yolact.engine.trainer import Trainer, TrainingError


def _starting_at(own: int, other: int, monkeypatch) -> SimpleNamespace:
    """A rank of two at ``own`` whose collective sees the other rank at ``other``."""

    def max_over_ranks(t: torch.Tensor) -> torch.Tensor:
        seen = torch.tensor([other, -other], dtype=t.dtype)
        return torch.maximum(t, seen)

    monkeypatch.setattr("yolact.engine.trainer.all_reduce_max", max_over_ranks)
    return SimpleNamespace(info=DistInfo(0, 2, 0), start_iter=own, device=torch.device("cpu"))


@pytest.mark.parametrize("own, other", [(2, 0), (0, 2), (6, 8)])
def test_ranks_at_different_iterations_stop(monkeypatch, own, other):
    rank = _starting_at(own, other, monkeypatch)
    with pytest.raises(TrainingError) as e:
        Trainer._check_same_start(rank)  # type: ignore[arg-type]
    low, high = sorted((own, other))
    assert str(e.value) == (
        f"the processes start at different iterations ({low} to {high}): each machine must "
        "see the same save folder (shared storage)"
    )


def test_ranks_at_one_iteration_go_on(monkeypatch):
    Trainer._check_same_start(_starting_at(6, 6, monkeypatch))  # type: ignore[arg-type]
