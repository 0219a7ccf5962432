"""Issue 16 item 4: a stop sent to the whole process group (torchrun, Slurm, ``timeout``,
``kill -- -PGID``) reaches the data loader workers too; training still stops at an
iteration boundary, writes its interrupt checkpoint and ends in one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import torch
from conftest import REPO, free_port
from test_train import datasets, opts, small_cfg
from train_run import HANG_S, Lines, child_env, child_pids, start_train, tiny_set, train_args

from yolact.engine.trainer import Trainer
from yolact.registry import read_checkpoint

STOPPED = re.compile(r"^stopped by SIGTERM at iteration (\d+); saved (\S+); continue with ")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_set(tmp_path_factory.mktemp("stop"))


@pytest.fixture(scope="module")
def long_epoch(tmp_path_factory):
    """40 images: epochs of 10 iterations, so one epoch's workers run for a while."""
    return tiny_set(tmp_path_factory.mktemp("long"), num_train=40, num_val=0)


def _stop_line(stderr: str) -> re.Match:
    assert "Traceback" not in stderr, stderr
    stops = [m for m in map(STOPPED.match, stderr.splitlines()) if m]
    assert len(stops) == 1, stderr
    assert len([ln for ln in stderr.splitlines() if "stopped" in ln]) == 1, stderr
    return stops[0]


def test_process_group_sigterm_with_workers_saves_and_resumes(tmp_path, long_epoch):
    out = tmp_path / "run"
    args = train_args(long_epoch, f"--save_folder={out}", "--max_iter=1000", "--num_workers=2",
                      "--threads=3", "--log_interval=1")  # fmt: skip
    proc = start_train(args, tmp_path, tmp_path / "err.txt", env=child_env(),
                       start_new_session=True)  # fmt: skip
    try:
        lines = Lines(proc.stdout)
        lines.wait_for("iteration 2/1000 ")
        os.killpg(proc.pid, signal.SIGTERM)  # the loader's workers get it too
        assert proc.wait(timeout=HANG_S) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines.rest()
    stderr = (tmp_path / "err.txt").read_text()
    match = _stop_line(stderr)
    assert "2 data workers" in stderr
    iteration, path = int(match[1]), match[2]
    epoch = (iteration - 1) // 10
    assert iteration >= 2 and path == str(out / f"yolact_tiny_{epoch}_{iteration}_interrupt.pth")
    assert read_checkpoint(path).meta["iteration"] == iteration
    assert sorted(os.listdir(out)) == [os.path.basename(path), "yolact_tiny_train_log.csv"]

    # --resume continues from it to the end (the datasets are the checkpoint's).
    end = iteration + 2
    done = start_train(
        [f"--resume={path}", f"--max_iter={end}", "--num_workers=0", "--device=cpu",
         "--batch_size=4"],
        tmp_path, tmp_path / "err2.txt", env=child_env(),
    )  # fmt: skip
    finished = Lines(done.stdout).wait_for("finished at iteration ")
    assert done.wait(timeout=HANG_S) == 0, (tmp_path / "err2.txt").read_text()
    assert finished.startswith(f"finished at iteration {end}; checkpoint: {out}")
    last = out / f"yolact_tiny_{(end - 1) // 10}_{end}.pth"
    assert read_checkpoint(str(last)).meta["iteration"] == end
    assert not [f for f in os.listdir(out) if f.endswith("_interrupt.pth")]


def test_loader_workers_ignore_stop_signals(data):
    """A SIGTERM or SIGINT that reaches the workers (as a group's does) leaves them
    running: the epoch's batches all arrive and the loader shuts them down."""
    from yolact.engine.data import AugmentedDataset, EpochSampler, start_batches, train_loader
    from yolact.engine.stop import StopFlag

    train_set, _ = datasets(data)
    dataset = AugmentedDataset(train_set, lambda sample, rng: sample)
    with StopFlag() as stop:
        loader = train_loader(dataset, EpochSampler(8), 2, workers=2, pin_memory=False, seed=0)
        batches = start_batches(loader)
        first = next(batches)  # the workers have started and run their init
        workers = [w.pid for w in batches._workers]  # this loader's own processes
        assert len(workers) == 2 and set(workers) <= set(child_pids(os.getpid()))
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGINT)
        rest = list(batches)
    assert len(first["image"]) == 2 and len(rest) == 3
    assert not stop.requested  # the signals went to the workers only
    del batches
    assert all(not _alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stop_during_validation_ends_it_early_and_saves(tmp_path, data, monkeypatch):
    """A stop that arrives during the periodic validation ends it after the image under
    way: no AP row is written and the interrupt checkpoint is the epoch's end."""
    import yolact.engine.evaluate as evaluate_mod

    real = evaluate_mod.detections_to_results
    seen: list[int] = []

    def first_image_then_stop(*args, **kwargs):
        seen.append(1)
        if len(seen) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_mod, "detections_to_results", first_image_then_stop)
    train_set, val_set = datasets(data_paths(data))
    o = opts(tmp_path, max_iter=6, validation_epoch=1, validation_size=4)
    result = Trainer(small_cfg().with_train(max_iter=6), o, train_set, val_set).run()
    assert (result.interrupted, result.signal, result.iteration) == (True, signal.SIGTERM, 2)
    assert len(seen) == 1  # the other 3 validation images were not evaluated
    assert os.path.basename(result.last_checkpoint) == "yolact_tiny_0_2_interrupt.pth"
    assert not (tmp_path / "yolact_tiny_val_log.csv").exists()


def data_paths(data: dict[str, str]) -> dict[str, str]:
    return data


def _ddp_validation_worker(rank: int, port: int, data: dict[str, str], out: str) -> None:
    """Rank 1 alone is signalled during the validation; both ranks stop there."""
    import yolact.engine.evaluate as evaluate_mod

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    real = evaluate_mod.detections_to_results

    def signalled(*args, **kwargs):
        if rank == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    evaluate_mod.detections_to_results = signalled
    train_set, val_set = datasets(data)
    o = opts(out, max_iter=6, validation_epoch=1, validation_size=4)
    result = Trainer(small_cfg().with_train(max_iter=6), o, train_set, val_set).run()
    torch.save({"iteration": result.iteration, "signal": result.signal,
                "path": result.last_checkpoint}, os.path.join(out, f"rank{rank}.pt"))  # fmt: skip
    torch.distributed.destroy_process_group()


def test_ddp_stop_on_one_rank_during_validation_stops_both(tmp_path, data):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_validation_worker, args=(free_port(), data, str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # 8 images, batch 4 over 2 ranks (2 each): the epoch and its validation end at 2.
    assert r0 == r1 == {"iteration": 2, "signal": int(signal.SIGTERM),
                        "path": str(tmp_path / "yolact_tiny_0_2_interrupt.pth")}  # fmt: skip
    assert read_checkpoint(r0["path"]).meta["iteration"] == 2


LAUNCHER = """
import os, signal, subprocess, sys
signal.signal(signal.SIGTERM, lambda *a: None)  # a handler, not SIG_IGN: exec resets it
train, folder, port, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
procs = []
for rank in (0, 1):
    env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
               MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    err = open(os.path.join(folder, f"err{rank}.txt"), "w")
    out = None if rank == 0 else err
    procs.append(subprocess.Popen([sys.executable, train, *args], env=env, stdout=out,
                                  stderr=err))
codes = [p.wait() for p in procs]
print("exit codes", *codes, flush=True)
"""


def test_ddp_process_group_sigterm_stops_both_ranks_at_one_iteration(tmp_path, data):
    """Two gloo ranks of train.py (with a data loader worker each) in one process
    group, as torchrun starts them; a SIGTERM to the group stops both at the same
    iteration, with one interrupt checkpoint and no hang."""
    out = tmp_path / "run"
    args = train_args(data, f"--save_folder={out}", "--max_iter=1000", "--num_workers=1",
                      "--threads=2", "--log_interval=1")  # fmt: skip
    # A launcher in its own process group starts the ranks in it (as torchrun does),
    # passes rank 0's output through, and reports the exit codes once both have ended.
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(REPO / "train.py"), str(tmp_path),
         str(free_port()), *args],
        cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        lines = Lines(launcher.stdout)
        lines.wait_for("iteration 2/1000 ")
        os.killpg(launcher.pid, signal.SIGTERM)
        codes_line = lines.wait_for("exit codes ")
        assert launcher.wait(timeout=HANG_S) == 0
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    codes = [int(c) for c in codes_line.split()[2:]]
    errs = [(tmp_path / f"err{r}.txt").read_text() for r in (0, 1)]
    assert codes == [128 + signal.SIGTERM] * 2, errs
    stops = [_stop_line(err) for err in errs]
    assert stops[0][1] == stops[1][1] and stops[0][2] == stops[1][2]
    iteration, path = int(stops[0][1]), stops[0][2]
    assert read_checkpoint(path).meta["iteration"] == iteration
    assert [f for f in os.listdir(out) if f.endswith(".pth")] == [os.path.basename(path)]
