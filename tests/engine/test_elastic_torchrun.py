"""Issue 20 item 2: two gloo ranks under a real ``torchrun --max-restarts=1``; one rank is
killed with SIGKILL mid-run, the group restarts, the same command line resumes from the
run's newest complete checkpoint and ends where an uninterrupted run ends, with the same
weights, optimizer state, learning rate and per-iteration losses."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_run import HANG_S, Lines, child_env, child_pids, tiny_set, train_args

from yolact.engine.elastic import RUN_ENTRY
from yolact.engine.schedule import make_schedule
from yolact.registry import read_checkpoint

MAX_ITER = 24  # 8 images, batch 4 over 2 ranks: epochs of 2 iterations
KILL_AFTER = 7  # rank 1 is killed once rank 0 has printed this iteration
RESUMED = re.compile(r"^INFO: resuming from (\S+) at iteration (\d+)$")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_set(tmp_path_factory.mktemp("torchrun"), num_val=0)


def _torchrun(data: dict[str, str], folder: Path, stderr: Path) -> subprocess.Popen:
    """train.py on 2 CPU ranks under torchrun, in a process group of its own."""
    args = train_args(
        data, f"--save_folder={folder}", f"--max_iter={MAX_ITER}", "--save_interval=2",
        "--num_workers=0", "--log_interval=1", "--lr_steps=12,20",
    ) + ["train.warmup_until=4"]  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node=2", "--max-restarts=1", "--monitor-interval=0.1",
               str(Path(__file__).resolve().parents[2] / "train.py"), *args]  # fmt: skip
    # torchrun's defaults: its store shared with the ranks (see yolact.engine.rendezvous).
    env = child_env()
    env.pop("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", None)
    with open(stderr, "w") as err:
        return subprocess.Popen(command, cwd=folder.parent, env=env, stdout=subprocess.PIPE,
                                stderr=err, text=True, start_new_session=True)  # fmt: skip


def _rank_pid(launcher: int, rank: int) -> int:
    """The pid of the training process of ``rank`` that torchrun started."""
    found = []
    for pid in child_pids(launcher):
        with open(f"/proc/{pid}/environ", "rb") as f:
            if f"RANK={rank}".encode() in f.read().split(b"\0"):
                found.append(pid)
    assert len(found) == 1, found
    return found[0]


def _finish(proc: subprocess.Popen, lines: Lines) -> list[str]:
    """Wait for torchrun to end; its output lines."""
    try:
        assert proc.wait(timeout=HANG_S) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return lines.rest()


def _logged_iterations(folder: Path) -> list[int]:
    """The training log's iterations in the order they were written."""
    with open(folder / "yolact_tiny_train_log.csv") as f:
        return [int(r["iteration"]) for r in csv.DictReader(f)]


def _rows(folder: Path) -> dict[int, dict[str, str]]:
    """The training log's last row of each iteration, without the timing."""
    with open(folder / "yolact_tiny_train_log.csv") as f:
        rows = {int(r["iteration"]): r for r in csv.DictReader(f)}
    for row in rows.values():
        del row["seconds"]
    return rows


def test_a_killed_rank_restarts_the_group_which_resumes_and_finishes(tmp_path, data):
    # The uninterrupted run, for reference.
    ref = tmp_path / "ref"
    ref.mkdir()
    proc = _torchrun(data, ref, tmp_path / "ref_err.txt")
    _finish(proc, Lines(proc.stdout))

    run = tmp_path / "run"
    run.mkdir()
    proc = _torchrun(data, run, tmp_path / "err.txt")
    try:
        lines = Lines(proc.stdout)
        lines.wait_for(f"iteration {KILL_AFTER}/{MAX_ITER} ")
        os.kill(_rank_pid(proc.pid, 1), signal.SIGKILL)
        out = _finish(proc, lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = (tmp_path / "err.txt").read_text()

    # Both ranks of the new group resumed from the newest complete checkpoint: the one
    # at the last even iteration that rank 0 finished before it lost rank 1 (it logs
    # each iteration, then saves the even ones).
    resumed = [m for m in map(RESUMED.match, err.splitlines()) if m]
    assert len(resumed) == 2 and resumed[0].groups() == resumed[1].groups(), err
    path, iteration = resumed[0][1], int(resumed[0][2])
    logged = _logged_iterations(run)
    split = len(logged) - (MAX_ITER - iteration)  # the new group logs iteration + 1 on
    before, after = logged[:split], logged[split:]
    last_done = before[-1]
    assert before == list(range(1, last_done + 1)) and last_done >= KILL_AFTER, logged
    assert after == list(range(iteration + 1, MAX_ITER + 1)), logged
    assert iteration == last_done - last_done % 2
    assert path == str(run / f"yolact_tiny_{(iteration - 1) // 2}_{iteration}.pth")
    assert "its newest complete checkpoint " + path in err

    # It ended at the planned iteration, with every rank.
    final = run / f"yolact_tiny_{(MAX_ITER - 1) // 2}_{MAX_ITER}.pth"
    # (Both ranks print to torchrun's one stdout, where their lines may interleave.)
    assert "".join(out).count(f"finished at iteration {MAX_ITER}; checkpoint: {final}") == 2
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]
    got, want = read_checkpoint(str(final)), read_checkpoint(str(ref / final.name))
    assert got.meta["iteration"] == MAX_ITER and isinstance(got.meta[RUN_ENTRY], str)
    assert got.meta[RUN_ENTRY] != want.meta[RUN_ENTRY]  # each launch is a run of its own

    # The schedule held: the last learning rate is the schedule's (warm-up to 4, steps
    # at 12 and 20), and weights, optimizer state and losses are the uninterrupted run's.
    schedule = make_schedule(got.config.train, 4, lr_steps=(12, 20), max_iter=MAX_ITER)
    lr = schedule.lr * schedule.gamma**2
    assert [g["lr"] for g in got.meta["optimizer"]["param_groups"]] == pytest.approx(
        [lr, lr], rel=1e-12
    )
    for name, tensor in want.state_dict.items():
        assert torch.equal(got.state_dict[name], tensor), name
    for key, state in want.meta["optimizer"]["state"].items():
        for entry, value in state.items():
            assert torch.equal(got.meta["optimizer"]["state"][key][entry], value)
    assert _rows(run) == _rows(ref)
    assert len(_rows(run)) == MAX_ITER
