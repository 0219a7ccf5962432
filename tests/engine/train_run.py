"""Running train.py in a child process for tests: a tiny synthetic set and a tiny model,
output read line by line with a timeout that only a hang reaches."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from conftest import REPO

from yolact.data.synthetic import write_coco_dataset

# Long enough for any machine load; reached only by a hang.
HANG_S = 600

# A yolact_tiny small enough for a CPU iteration well under a second.
TINY_SETS = [
    "--set", "max_size=96", "fpn_channels=32", "proto_channels=32", "head_channels=32",
    "num_prototypes=8",
]  # fmt: skip


def tiny_set(root: Path, num_train: int = 8, num_val: int = 4) -> dict[str, str]:
    """A 96 px synthetic COCO-format set (paths as ``write_coco_dataset`` returns them)."""
    return write_coco_dataset(
        str(root), num_train=num_train, num_val=num_val, size=(96, 96), seed=1
    )


def train_args(data: dict[str, str], *extra: str) -> list[str]:
    """train.py's arguments for the tiny set on the CPU (``extra`` before the final
    ``--set``, which takes every argument after it)."""
    return [
        "--config=yolact_tiny", f"--train_ann={data['train_ann_file']}",
        f"--train_images={data['train_image_dir']}", "--batch_size=4", "--device=cpu",
        "--validation_epoch=-1", "--save_interval=0", *extra, *TINY_SETS,
    ]  # fmt: skip


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **extra)
    env.pop("WORLD_SIZE", None)
    return env


class Lines:
    """The lines a child writes to a pipe, read on a thread so a test can wait for one."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, prefix: str) -> str:
        """The first line starting with ``prefix``; AssertionError at the end of the
        output or after ``HANG_S``."""
        while True:
            line = self._queue.get(timeout=HANG_S)
            assert line is not None, f"output ended before {prefix!r}: {self.seen}"
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def rest(self) -> list[str]:
        """Every line still to come (the child has ended or is ending)."""
        while (line := self._queue.get(timeout=HANG_S)) is not None:
            self.seen.append(line)
        return self.seen


def start_train(args: list[str], cwd: Path, stderr: Path, **popen: Any) -> subprocess.Popen:
    """train.py with ``args`` in a child whose stdout is a pipe and stderr a file."""
    with open(stderr, "w") as err:
        return subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), *args], cwd=cwd, stdout=subprocess.PIPE,
            stderr=err, text=True, **popen,
        )  # fmt: skip


def child_pids(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from Linux's /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # ended meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(entry))
    return children
