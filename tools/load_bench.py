"""Frame rate of ``eval.py`` alone and beside a busy process, for one or more checkouts.

``python tools/load_bench.py --repo A --repo B`` writes a 640x480 video,
then runs ``eval.py --video=IN:OUT`` and ``eval.py --benchmark`` of every
checkout (its own ``eval.py`` and package, through ``PYTHONPATH``) alone and
while a busy process spins on one core; the runs are interleaved, round after
round, so that the checkouts see the same machine. It prints a markdown table
of the median figures. ``OMP_NUM_THREADS`` is removed from the runs'
environment: each process sizes its own pools.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from yolact.data.synthetic import write_synthetic_video

BUSY_CODE = "while True: pass"
_VIDEO_FPS = re.compile(r"processed (\d+) frames.*?, ([\d.]+) FPS")
_BENCH_FPS = re.compile(r"^FPS\s+([\d.]+)", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    """One measured run."""

    repo: str
    mode: str  # "video" or "benchmark"
    busy: bool
    fps: float
    wall_s: float
    load: float  # the machine's 1-minute load average before the run


def write_video(path: str, frames: int, fps: float = 30.0) -> None:
    """A 640x480 mp4 of ``frames`` synthetic frames: shapes moving over a background."""
    write_synthetic_video(path, num_frames=frames, size=(480, 640), fps=fps)


@contextlib.contextmanager
def busy_process(enabled: bool = True) -> Iterator[None]:
    """A Python process spinning on one core for the block's duration (killed after)."""
    if not enabled:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", BUSY_CODE])
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


def parse_fps(mode: str, output: str) -> float:
    """The FPS that ``eval.py`` printed in ``mode`` ("video" or "benchmark").

    Raises:
        ValueError: no figure in the output.
    """
    pattern = _VIDEO_FPS if mode == "video" else _BENCH_FPS
    match = pattern.search(output)
    if match is None:
        raise ValueError(f"no FPS in eval.py's output:\n{output}")
    return float(match.groups()[-1])


def run_eval(repo: str, mode: str, weights: str, video: str, out_dir: str, busy: bool) -> Run:
    """Run one checkout's ``eval.py`` once; returns its FPS and wall time."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = repo
    args = [sys.executable, "eval.py", f"--trained_model={weights}", "--no_bar", "--cuda=False"]
    if mode == "video":
        out = os.path.join(out_dir, f"{os.path.basename(repo.rstrip('/'))}.mp4")
        args.append(f"--video={video}:{out}")
    else:
        args += ["--benchmark", "--max_images=60"]
    load = os.getloadavg()[0]
    with busy_process(busy):
        start = time.perf_counter()
        done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{repo}: eval.py failed: {done.stderr.strip().splitlines()[-1:]}")
    return Run(repo, mode, busy, parse_fps(mode, done.stdout), wall, load)


def table(runs: Sequence[Run]) -> str:
    """Markdown: per checkout and mode, median FPS alone, beside a busy process, and ratio."""
    lines = [
        "| checkout | mode | FPS alone | FPS beside a busy process | ratio | wall s alone / busy |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    keys = dict.fromkeys((r.repo, r.mode) for r in runs)
    for repo, mode in keys:
        alone = [r for r in runs if (r.repo, r.mode, r.busy) == (repo, mode, False)]
        busy = [r for r in runs if (r.repo, r.mode, r.busy) == (repo, mode, True)]
        if not alone or not busy:
            continue
        fa = statistics.median(r.fps for r in alone)
        fb = statistics.median(r.fps for r in busy)
        wa = statistics.median(r.wall_s for r in alone)
        wb = statistics.median(r.wall_s for r in busy)
        lines.append(
            f"| {repo} | {mode} | {fa:.1f} | {fb:.1f} | {fb / fa:.0%} | {wa:.1f} / {wb:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/load_bench.py", description=__doc__)
    p.add_argument("--repo", action="append", required=True, help="a checkout (repeatable)")
    p.add_argument("--weights", default="weights/yolact_tiny_synthetic.pth",
                   help="checkpoint, relative to each checkout or absolute")  # fmt: skip
    p.add_argument("--frames", type=int, default=150, help="frames of the generated video")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median taken)")
    p.add_argument("--modes", default="video,benchmark", help="video, benchmark or both")
    p.add_argument("--work_dir", default="runs/load_bench", help="video files go here")
    a = p.parse_args(list(argv) if argv is not None else None)
    os.makedirs(a.work_dir, exist_ok=True)
    work = os.path.abspath(a.work_dir)
    video = os.path.join(work, "in_640x480.mp4")
    write_video(video, a.frames)
    runs = []
    for round_ in range(a.rounds):
        for mode in a.modes.split(","):
            for busy in (False, True):
                for repo in a.repo:
                    run = run_eval(os.path.abspath(repo), mode, a.weights, video, work, busy)
                    runs.append(run)
                    print(f"round {round_ + 1}: {run}", flush=True)
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
