"""Issue 16 item 5: a save folder that cannot exist fails up front in one line; a
checkpoint or log write that fails mid-run (a full disk) keeps the last good
checkpoint, says so in one line, and every rank makes the same decision."""

from __future__ import annotations

import errno
import os
from datetime import timedelta

import pytest
import torch
import torch.multiprocessing as mp
from conftest import free_port
from test_train import datasets, opts, small_cfg
from train_run import tiny_set

from yolact.engine.csvlog import CsvLog
from yolact.engine.trainer import Trainer, TrainingError
from yolact.registry import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_set(tmp_path_factory.mktemp("full"))


class FullDisk:
    """``torch.save`` that fails with ENOSPC on the listed calls (1-based; all when
    None), after writing part of the file as a full disk would."""

    def __init__(self, failing: set[int] | None = None) -> None:
        self.failing, self.calls = failing, 0
        self.real = torch.save

    def __call__(self, obj, f, *args, **kwargs) -> None:
        self.calls += 1
        if self.failing is None or self.calls in self.failing:
            with open(f, "wb") as fh:
                fh.write(b"partial")
            raise OSError(errno.ENOSPC, ENOSPC)
        self.real(obj, f, *args, **kwargs)


def _cli_args(data, folder) -> list[str]:
    return [
        "--config=yolact_tiny", f"--train_ann={data['train_ann_file']}",
        f"--train_images={data['train_image_dir']}", "--max_iter=2", "--num_workers=0",
        f"--save_folder={folder}", "--device=cpu", "--batch_size=4", "--save_interval=0",
    ]  # fmt: skip


@pytest.mark.parametrize("below", ["", "sub"])
def test_save_folder_on_or_under_a_file_fails_up_front(tmp_path, data, capsys, monkeypatch, below):
    from yolact.cli.train_cli import main

    monkeypatch.setattr("yolact.cli.train_cli.get_config", lambda name: small_cfg())
    user_file = tmp_path / "notes.txt"
    user_file.write_bytes(b"mine\n")
    folder = user_file / below if below else user_file
    calls = []
    monkeypatch.setattr(Trainer, "run", lambda self: calls.append(1))
    assert main(_cli_args(data, folder)) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if not ln.startswith("INFO:")]
    what = f"is under the file {user_file}" if below else "is a file"
    assert lines == [f"error: --save_folder {folder} {what}, not a folder"], err
    assert "Traceback" not in err and calls == []
    assert user_file.read_bytes() == b"mine\n" and os.listdir(tmp_path) == ["notes.txt"]


def test_failed_periodic_save_keeps_the_last_good_one_and_goes_on(tmp_path, data, monkeypatch,
                                                                  caplog):  # fmt: skip
    train_set, _ = datasets(data)
    disk = FullDisk({2})  # the save at iteration 4 fails, those at 6 and 8 succeed
    monkeypatch.setattr(torch, "save", disk)
    seen: dict[int, bytes] = {}
    good = tmp_path / "yolact_tiny_0_2.pth"

    def watch(iteration: int, losses: dict) -> None:
        if iteration == 5:
            seen[5] = good.read_bytes()

    o = opts(tmp_path, max_iter=8, save_interval=2)
    t = Trainer(small_cfg().with_train(max_iter=8), o, train_set, on_iteration=watch)
    before = None
    caplog.set_level("WARNING", logger="yolact.train")
    result = t.run()
    before = seen[5]
    assert result.iteration == 8 and result.last_checkpoint == str(tmp_path / "yolact_tiny_3_8.pth")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"could not save {tmp_path / 'yolact_tiny_1_4.pth'} ({ENOSPC}); the last good "
        f"checkpoint {good} is kept; training goes on and tries again at iteration 6"
    ]
    assert good.read_bytes() == before  # untouched by the failed save after it
    names = sorted(f for f in os.listdir(tmp_path) if f.endswith(".pth"))
    assert names == ["yolact_tiny_0_2.pth", "yolact_tiny_2_6.pth", "yolact_tiny_3_8.pth"]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert read_checkpoint(str(tmp_path / "yolact_tiny_3_8.pth")).meta["iteration"] == 8


def test_failed_saves_in_a_row_stop_the_run(tmp_path, data, monkeypatch):
    train_set, _ = datasets(data)
    monkeypatch.setattr(torch, "save", FullDisk({2, 3, 4}))
    o = opts(tmp_path, max_iter=20, save_interval=1, max_failed_saves=3)
    t = Trainer(small_cfg().with_train(max_iter=20), o, train_set)
    good = tmp_path / "yolact_tiny_0_1.pth"
    with pytest.raises(TrainingError) as e:
        t.run()
    assert str(e.value) == (
        f"3 checkpoint saves in a row failed, the last {tmp_path / 'yolact_tiny_1_4.pth'} "
        f"({ENOSPC}); training stopped at iteration 4; the last good checkpoint {good} is kept"
    )
    assert sorted(os.listdir(tmp_path)) == ["yolact_tiny_0_1.pth", "yolact_tiny_train_log.csv"]


def test_failed_final_save_is_one_error_line_and_keeps_the_old_file(tmp_path, data, capsys,
                                                                    monkeypatch):  # fmt: skip
    from yolact.cli.train_cli import main

    monkeypatch.setattr("yolact.cli.train_cli.get_config", lambda name: small_cfg())
    # An earlier run's checkpoint of the same name must survive the failed write.
    assert main([*_cli_args(data, tmp_path), "--no_bar"]) == 0
    final = tmp_path / "yolact_tiny_0_2.pth"
    before = final.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(torch, "save", FullDisk())
    assert main([*_cli_args(data, tmp_path), "--no_bar"]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if not ln.startswith("INFO:")]
    assert lines == [
        f"error: could not save the final checkpoint {final} at iteration 2 ({ENOSPC}); "
        "no earlier checkpoint of this run to keep"
    ], err
    assert "Traceback" not in err
    assert final.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["yolact_tiny_0_2.pth", "yolact_tiny_train_log.csv"]


def test_failed_log_write_is_one_line_and_training_goes_on(tmp_path, data, monkeypatch, caplog):
    train_set, _ = datasets(data)
    real = CsvLog._append
    calls = {"n": 0}

    def full(path, fields, row) -> None:
        calls["n"] += 1
        if calls["n"] in (2, 3):
            raise OSError(errno.ENOSPC, ENOSPC)
        real(path, fields, row)

    monkeypatch.setattr(CsvLog, "_append", staticmethod(full))
    caplog.set_level("WARNING", logger="yolact.train")
    result = Trainer(small_cfg(), opts(tmp_path, max_iter=4), train_set).run()
    assert result.iteration == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"could not write the training log in {tmp_path} ({ENOSPC}); training goes on; "
        "no earlier checkpoint of this run to keep"
    ]
    rows = (tmp_path / "yolact_tiny_train_log.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows] == ["iteration", "1", "4"]


def _ddp_worker(rank: int, port: int, data: dict, out: str, failing: list[int] | None) -> None:
    """Rank 0's disk fails as ``failing`` says; each rank records how its run ended."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    # A rank left waiting fails the test in a minute instead of hanging it.
    torch.distributed.init_process_group("gloo", timeout=timedelta(seconds=60))
    if rank == 0:
        torch.save = FullDisk(None if failing is None else set(failing))
    train_set, _ = datasets(data)
    o = opts(out, max_iter=6, save_interval=1, max_failed_saves=2)
    try:
        result = Trainer(small_cfg().with_train(max_iter=6), o, train_set).run()
        outcome = f"finished at {result.iteration}: {result.last_checkpoint}"
    except TrainingError as e:
        outcome = str(e)
    with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
        f.write(outcome)
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("failing", [[2], None])
def test_ddp_ranks_share_rank0s_save_outcome(tmp_path, data, failing):
    """One failed save: both ranks go on to the end. Every save failing: both stop at
    the same iteration with the same message, and neither waits for the other."""
    mp.spawn(_ddp_worker, args=(free_port(), data, str(tmp_path), failing), nprocs=2)
    r0, r1 = ((tmp_path / f"rank{r}.txt").read_text() for r in (0, 1))
    if failing:
        assert r0 == r1 == f"finished at 6: {tmp_path / 'yolact_tiny_2_6.pth'}"
        names = sorted(f for f in os.listdir(tmp_path) if f.endswith(".pth"))
        assert "yolact_tiny_0_2.pth" not in names and "yolact_tiny_0_1.pth" in names
    else:
        assert r0 == (
            f"2 checkpoint saves in a row failed, the last {tmp_path / 'yolact_tiny_0_2.pth'} "
            f"({ENOSPC}); training stopped at iteration 2; no earlier checkpoint of this run "
            "to keep"
        )
        assert r1 == r0.replace(f"({ENOSPC})", "(rank 0 could not write it)")


def test_failed_csv_row_is_cut_back_off_the_log(tmp_path, monkeypatch):
    import yolact.engine.csvlog as csvlog_mod

    log = CsvLog(str(tmp_path), "cfg")
    log.train(0, 1, 1e-3, {"B": 1.0, "total": 1.0}, 0.1)
    before = (tmp_path / "cfg_train_log.csv").read_bytes()

    class FullWriter:
        def __init__(self, f, **kwargs) -> None:
            self.f = f

        def writerow(self, row) -> None:
            self.f.write("0,2,0.001,1.0")  # part of the row, then the disk is full
            self.f.flush()
            raise OSError(errno.ENOSPC, ENOSPC)

    monkeypatch.setattr(csvlog_mod.csv, "DictWriter", FullWriter)
    with pytest.raises(OSError, match=ENOSPC):
        log.train(0, 2, 1e-3, {"B": 1.0, "total": 1.0}, 0.1)
    assert (tmp_path / "cfg_train_log.csv").read_bytes() == before


def test_failed_plot_write_keeps_the_earlier_plot(tmp_path, monkeypatch, capsys):
    from matplotlib.figure import Figure

    from yolact.engine.plots import main as plot_main

    log = CsvLog(str(tmp_path), "cfg")
    for i in (1, 2, 3):
        log.train(0, i, 1e-3, {"B": 1.0 / i, "total": 2.0 / i}, 0.1)
    assert plot_main([str(tmp_path)]) == 0
    png = tmp_path / "cfg_loss.png"
    before = png.read_bytes()
    capsys.readouterr()

    def full(self, fname, *args, **kwargs) -> None:
        with open(fname, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, ENOSPC)

    monkeypatch.setattr(Figure, "savefig", full)
    assert plot_main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: could not write {png}: {ENOSPC}; the earlier plot is kept"]
    assert png.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cfg_loss.png", "cfg_train_log.csv"]
