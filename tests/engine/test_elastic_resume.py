"""Issue 20 item 2: which checkpoint a restarted torchrun group resumes from.

Only whole checkpoints count (a file cut short with a final name is skipped with one
line, temporary files of unfinished writes are never candidates), and under torchrun
only those of this run (the key stored in each checkpoint)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
from test_train import small_cfg
from train_run import tiny_set

from yolact.cli.train_cli import TrainRunOptions, run_train
from yolact.engine.checkpoint_names import atomic_save, newest_complete, resume_path
from yolact.engine.elastic import (
    RUN_ENTRY,
    elastic_resume,
    remove_stale_temps,
    run_key,
)
from yolact.registry import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def _entries(iteration: int, run: str | None = None) -> dict:
    """A training checkpoint's entries, as small as they come."""
    entries = {
        "model": {"w": torch.full((4,), float(iteration))},
        "optimizer": {"state": {}, "param_groups": []},
        "iteration": iteration,
    }
    if run is not None:
        entries[RUN_ENTRY] = run
    return entries


def _truncate(path, keep: float = 0.5) -> None:
    """Cut a file short, as a write that did not finish would leave it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_truncated_file_with_a_final_name_is_skipped_with_one_line(tmp_path, caplog):
    for iteration in (2, 4, 6):
        atomic_save(_entries(iteration), str(tmp_path / f"cfg_0_{iteration}.pth"))
    _truncate(tmp_path / "cfg_0_6.pth")
    # A whole file under a temporary name is no checkpoint: a write that never finished.
    atomic_save(_entries(8), str(tmp_path / "whole.pth"))
    os.replace(tmp_path / "whole.pth", tmp_path / ".cfg_0_8.pth.tmp")
    caplog.set_level("WARNING", logger="yolact.train")

    assert newest_complete(str(tmp_path), "cfg") == str(tmp_path / "cfg_0_4.pth")
    lines = _warnings(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"skipping {tmp_path / 'cfg_0_6.pth'}: not a complete checkpoint, it cannot be read ("
    ), lines
    assert "\n" not in lines[0]
    caplog.clear()
    assert resume_path("latest", str(tmp_path), "cfg") == str(tmp_path / "cfg_0_4.pth")
    assert len(_warnings(caplog)) == 1


@pytest.mark.parametrize(
    "entries, why",
    [
        ({"model": {"w": torch.zeros(1)}, "iteration": 3}, "it has no optimizer entry"),
        ({"w": torch.zeros(1)}, "it has no model, optimizer, iteration entry"),
        ([torch.zeros(1)], "it holds a list, not a checkpoint"),
        ({**_entries(3), "iteration": 3.5}, "it has an iteration entry that is no whole number"),
    ],
)
def test_files_that_are_not_training_checkpoints_are_skipped(tmp_path, caplog, entries, why):
    atomic_save(_entries(1), str(tmp_path / "cfg_0_1.pth"))
    atomic_save(entries, str(tmp_path / "cfg_0_3.pth"))
    caplog.set_level("WARNING", logger="yolact.train")
    assert newest_complete(str(tmp_path), "cfg") == str(tmp_path / "cfg_0_1.pth")
    assert _warnings(caplog) == [
        f"skipping {tmp_path / 'cfg_0_3.pth'}: not a complete checkpoint, {why}"
    ]


def test_no_complete_checkpoint_is_none(tmp_path):
    atomic_save(_entries(2), str(tmp_path / "cfg_0_2.pth"))
    _truncate(tmp_path / "cfg_0_2.pth", keep=0.9)
    assert newest_complete(str(tmp_path), "cfg") is None
    assert newest_complete(str(tmp_path / "missing"), "cfg") is None


def test_run_key_is_torchruns_run_id_or_this_launch():
    assert run_key({}) is None
    assert run_key({"TORCHELASTIC_RUN_ID": "job-7"}) == "job-7"
    # torchrun's default id names no job: the key is this launch (torchrun's process).
    expected = f"none@{socket.gethostname()}:{os.getppid()}"
    assert run_key({"TORCHELASTIC_RUN_ID": "none"}) == expected


def test_elastic_resume_takes_only_this_runs_checkpoints(tmp_path, caplog):
    atomic_save(_entries(2, "job-7"), str(tmp_path / "cfg_0_2.pth"))
    atomic_save(_entries(4, "job-7"), str(tmp_path / "cfg_1_4.pth"))
    atomic_save(_entries(6, "job-6"), str(tmp_path / "cfg_1_6.pth"))  # another run's, newer
    atomic_save(_entries(8, "job-7"), str(tmp_path / "cfg_2_8.pth"))
    _truncate(tmp_path / "cfg_2_8.pth")  # this run's, cut short
    atomic_save(_entries(9), str(tmp_path / "cfg_2_9.pth"))  # outside torchrun
    for temp in (".cfg_2_10.pth.tmp", ".other_0_1.pth.tmp", ".notes.tmp"):
        (tmp_path / temp).write_bytes(b"partial")
    caplog.set_level("INFO", logger="yolact.train")

    env = {"TORCHELASTIC_RUN_ID": "job-7", "RANK": "1"}
    assert elastic_resume(str(tmp_path), "cfg", env) == str(tmp_path / "cfg_1_4.pth")
    assert (tmp_path / ".cfg_2_10.pth.tmp").exists()  # only rank 0 removes them
    assert elastic_resume(str(tmp_path), "cfg", {**env, "RANK": "0"}) == str(
        tmp_path / "cfg_1_4.pth"
    )
    assert not (tmp_path / ".cfg_2_10.pth.tmp").exists()
    assert (tmp_path / ".other_0_1.pth.tmp").exists() and (tmp_path / ".notes.tmp").exists()
    messages = [r.getMessage() for r in caplog.records]
    removed = tmp_path / ".cfg_2_10.pth.tmp"
    assert f"removed {removed}, left by a checkpoint write that did not finish" in messages
    picked = f"newest complete checkpoint {tmp_path / 'cfg_1_4.pth'}"
    assert messages.count(f"torchrun run job-7: resuming from its {picked}") == 2
    assert elastic_resume(str(tmp_path), "cfg", {"TORCHELASTIC_RUN_ID": "job-8"}) is None
    assert elastic_resume(str(tmp_path), "cfg", {}) is None  # not under torchrun
    assert remove_stale_temps(str(tmp_path / "missing"), "cfg") == []


def test_this_runs_interrupt_checkpoint_counts(tmp_path):
    """The processes that torchrun stops to let a machine join write an interrupt
    checkpoint; the new group goes on from it."""
    atomic_save(_entries(4, "job-7"), str(tmp_path / "cfg_1_4.pth"))
    atomic_save(_entries(5, "job-7"), str(tmp_path / "cfg_2_5_interrupt.pth"))
    env = {"TORCHELASTIC_RUN_ID": "job-7"}
    assert elastic_resume(str(tmp_path), "cfg", env) == str(tmp_path / "cfg_2_5_interrupt.pth")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_set(tmp_path_factory.mktemp("elastic"), num_val=0)


def _options(data, folder, **kw) -> TrainRunOptions:
    base = dict(config="yolact_tiny", train_ann=data["train_ann_file"],
                train_images=data["train_image_dir"], batch_size=4, num_workers=0,
                save_folder=str(folder), save_interval=1, validation_epoch=-1, device="cpu",
                max_iter=4, no_bar=True)  # fmt: skip
    base.update(kw)
    return TrainRunOptions(**base)


def test_the_same_command_under_torchrun_resumes_this_runs_newest(tmp_path, data, monkeypatch,
                                                                   caplog):  # fmt: skip
    """A restart runs the same command line: it goes on from this run's newest whole
    checkpoint and ends where the uninterrupted run ended, with the same weights."""
    monkeypatch.setattr("yolact.cli.train_cli.get_config", lambda name: small_cfg())
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-7")
    monkeypatch.delenv("RANK", raising=False)
    options = _options(data, tmp_path)
    first = run_train(options)
    assert first.iteration == 4
    whole = read_checkpoint(first.last_checkpoint)
    assert whole.meta[RUN_ENTRY] == "job-7"
    # As if the group had died during the write at 4 and after the save at 3: the file
    # at 4 is cut short, and another run's newer checkpoint sits beside them.
    os.replace(first.last_checkpoint, tmp_path / "whole.bin")
    (tmp_path / "yolact_tiny_1_4.pth").write_bytes((tmp_path / "whole.bin").read_bytes()[:999])
    os.remove(tmp_path / "yolact_tiny_1_3.pth")
    torch.save({**torch.load(tmp_path / "whole.bin", weights_only=True), RUN_ENTRY: "job-6",
                "iteration": 5}, tmp_path / "yolact_tiny_2_5.pth")  # fmt: skip
    caplog.set_level("INFO", logger="yolact")
    caplog.clear()

    again = run_train(options)
    messages = [r.getMessage() for r in caplog.records]
    assert f"resuming from {tmp_path / 'yolact_tiny_0_2.pth'} at iteration 2" in messages
    skipped = [m for m in messages if m.startswith("skipping ")]
    assert len(skipped) == 1 and skipped[0].startswith(
        f"skipping {tmp_path / 'yolact_tiny_1_4.pth'}: not a complete checkpoint"
    )
    assert again.iteration == 4 and again.last_checkpoint == str(tmp_path / "yolact_tiny_1_4.pth")
    resumed = read_checkpoint(again.last_checkpoint)
    assert resumed.meta["iteration"] == 4 and resumed.meta[RUN_ENTRY] == "job-7"
    for name, tensor in whole.state_dict.items():
        assert torch.equal(resumed.state_dict[name], tensor), name
    lr = [g["lr"] for g in resumed.meta["optimizer"]["param_groups"]]
    assert lr == [g["lr"] for g in whole.meta["optimizer"]["param_groups"]]

    # Another run (another --rdzv-id) in the same folder starts as its command says.
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-8")
    caplog.clear()
    fresh = run_train(_options(data, tmp_path, max_iter=1, save_interval=0))
    assert fresh.iteration == 1
    assert not [r for r in caplog.records if r.getMessage().startswith("resuming from")]


def test_resume_latest_skips_a_cut_short_newest_once(tmp_path, data, monkeypatch, caplog):
    monkeypatch.setattr("yolact.cli.train_cli.get_config", lambda name: small_cfg())
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    run_train(_options(data, tmp_path, max_iter=2))
    _truncate(tmp_path / "yolact_tiny_0_2.pth")
    caplog.set_level("INFO", logger="yolact")
    result = run_train(_options(data, tmp_path, max_iter=3, resume="latest"))
    assert result.iteration == 3
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("skipping ")]) == 1, messages
    assert f"resuming from {tmp_path / 'yolact_tiny_0_1.pth'} at iteration 1" in messages
