"""Start-up time and memory of the training data pipeline on a COCO-sized file.

Each case runs in a fresh child process that builds the training pipeline as
``train.py`` does (CocoDataset, the YOLACT training augmentation, the epoch sampler
and the training DataLoader with ``--workers`` workers) and reports:

- the time from its start (imports included) to the built dataset and to the first
  batch;
- after ``--iterations`` batches: the PSS of the main process and the private memory
  (Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup) of each worker;
- with ``--epoch-reads [N]``: each worker's private memory after the annotations of
  every image (or the first N) have been read once (the dataset's real
  ``__getitem__``, masks decoded, with the image read replaced by a blank image so
  that an epoch takes minutes);

while this process samples the PSS of the child's whole process tree every 0.1 s
and reports its peak.

Cases: ``old`` (the code under ``--old-root``, e.g. ``git worktree add /tmp/old
ac4cabc``, the last commit with per-image dicts; only with ``--old-root``), ``cold``
(this code, its cache deleted first), ``cached`` (this code, the cache of the previous
case), ``build`` (the cold build's steps as the cache-building child runs them, each
timed: CPU and wall seconds of this process, the CPU seconds of the second process
that reads half the annotations (none with ``--no-split``), the peak RSS this
process adds and the peak PSS of both). Example::

    python -m yolact.data.coco_scale --out /tmp/coco_scale
    python tools/data_memory_bench.py --ann /tmp/coco_scale/annotations/instances_train2017.json \\
        --images /tmp/coco_scale/images --old-root /tmp/old --epoch-reads
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def smaps(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/smaps_rollup (empty when the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def private_mb(pid: int) -> tuple[float, float]:
    """Private_Clean + Private_Dirty of a process and Private_Dirty alone, in MB.

    Clean private pages include pages of a mapped file that only this process has
    touched so far (page cache, shared with the next process that maps them);
    dirty ones are this process's own copies.
    """
    s = smaps(pid)
    dirty = s.get("Private_Dirty", 0) / 1024
    return s.get("Private_Clean", 0) / 1024 + dirty, dirty


def tree(pid: int) -> list[int]:
    """The process and all its descendants (from /proc/<pid>/task/*/children)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for children in glob.glob(f"/proc/{p}/task/*/children"):
            try:
                with open(children) as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
    return pids


class PeakSampler(threading.Thread):
    """Samples the summed PSS of a process tree until stopped; keeps the peak (MB),
    when it came (seconds after the start) and each process's PSS then (MB, the
    root first)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0.0
        self.peak_at, self.peak_parts = 0.0, [0.0]
        self.done = threading.Event()

    def run(self) -> None:
        start = time.time()
        while not self.done.is_set():
            parts = [smaps(p).get("Pss", 0) / 1024 for p in tree(self.pid)]
            if sum(parts) > self.peak:
                self.peak, self.peak_at, self.peak_parts = sum(parts), time.time() - start, parts
            self.done.wait(self.every)


# ---- the child: one case ---------------------------------------------------------------


def _blank_reads(ds: Any) -> None:
    """Replace the dataset's image read by a blank image of the annotated size (the
    old ``_read_image(info)`` and the new ``_read_image(file_name, height, width)``)."""
    import numpy as np

    def blank(*args: Any) -> np.ndarray:
        h, w = (args[0]["height"], args[0]["width"]) if len(args) == 1 else args[1:3]
        return np.zeros((int(h), int(w), 3), dtype=np.uint8)

    ds._read_image = blank


def _worker_pids(iterator: Any) -> list[int]:
    return [int(w.pid) for w in getattr(iterator, "_workers", [])]


def child(args: argparse.Namespace, t0: float) -> dict[str, Any]:
    """Build the pipeline, take batches, and measure (runs in the case's process)."""
    import warnings

    import torch
    from torch.utils.data import DataLoader

    from yolact.data.coco import CocoDataset
    from yolact.data.transforms import train_transform
    from yolact.engine.data import AugmentedDataset, EpochSampler, start_batches, train_loader

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    ds = CocoDataset(args.ann, args.images)
    report: dict[str, Any] = {"dataset_s": time.time() - t0, "images": len(ds)}
    data = AugmentedDataset(ds, train_transform(args.size), seed=0)
    sampler = EpochSampler(len(data), seed=0)
    loader = train_loader(data, sampler, args.batch, args.workers, pin_memory=False, seed=0)
    it = start_batches(loader)
    next(it)
    report["first_batch_s"] = time.time() - t0
    for _ in range(args.iterations - 1):
        next(it)
    report["main_pss_mb"] = smaps(os.getpid()).get("Pss", 0) / 1024
    report["worker_private_mb"] = [private_mb(p) for p in _worker_pids(it)]
    del it
    if args.epoch_reads is not None:
        _blank_reads(ds)
        total = min(len(ds), args.epoch_reads or len(ds))
        subset = torch.utils.data.Subset(ds, range(total))
        reads = DataLoader(subset, batch_size=64, num_workers=args.workers, collate_fn=len)
        batches = iter(reads)
        pids, count = _worker_pids(batches), 0
        for n in batches:
            count += int(n)
            if count >= total - 64 * args.workers:  # the workers' last batches
                report["epoch_private_mb"] = [private_mb(p) for p in pids]
                break
        report["epoch_images"] = count
    return report


def build_profile(args: argparse.Namespace) -> dict[str, Any]:
    """The cold build's steps, run here without a cache (the ``build`` case): CPU and
    wall seconds of each, and this process's peak RSS over its RSS before the build."""
    import tempfile

    from yolact.data import ann_cache, json_stream, stream_records

    def rss_kb(field: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))

    spent: dict[str, list[float]] = {}

    def timed(name: str, fn: Any) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            c, w = time.process_time(), time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                total = spent.setdefault(name, [0.0, 0.0])
                total[0] += time.process_time() - c
                total[1] += time.perf_counter() - w

        return run

    json_stream._decode = timed("json decode (C scanner)", json_stream._decode)
    for name in ("check_columns", "assemble"):
        setattr(stream_records, name, timed(name, getattr(stream_records, name)))
    import resource

    before = rss_kb("VmRSS")
    sha = timed("sha256 of the json", ann_cache.file_sha256)(args.ann)
    split = None if args.no_split else stream_records.SPLIT_MIN_BYTES
    log: list[str] = []
    records, _, meta = timed("stream_records (all)", stream_records.stream_records)(
        args.ann, None, split_min_bytes=split, split_log=log
    )
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent["second process (split: " + (",".join(log) or "off") + ")"] = [
        children.ru_utime + children.ru_stime, 0.0]  # fmt: skip
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        write = timed("cache write", ann_cache.write_cache)
        write(os.path.join(tmp, "c.yolact-records"), records, sha, None, meta)
    spent["peak RSS over the start, MB"] = [(rss_kb("VmHWM") - before) / 1024, 0.0]
    return {"build": spent}


# ---- the parent: the cases -------------------------------------------------------------


def run_case(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one case in a child process; its report plus the tree's peak PSS."""
    root = args.old_root if name == "old" else REPO
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, os.path.abspath(__file__), "--child", "--ann", args.ann,
            "--images", args.images, "--workers", str(args.workers), "--batch", str(args.batch),
            "--iterations", str(args.iterations), "--size", str(args.size)]  # fmt: skip
    if args.epoch_reads is not None:
        argv += ["--epoch-reads", str(args.epoch_reads)]
    if name == "build":
        argv += ["--cases", "build"] + ["--no-split"] * args.no_split
    env["BENCH_T0"] = repr(time.time())
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    sampler = PeakSampler(proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    sampler.done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"case {name} failed (exit {proc.returncode})")
    report = json.loads(out.strip().splitlines()[-1])
    report["peak_tree_pss_mb"] = sampler.peak
    report["peak_when"] = f"{sampler.peak_at:.1f} s: " + " + ".join(
        f"{mb:.0f}" for mb in sampler.peak_parts)  # fmt: skip
    return report


def _mb(values: Sequence[Sequence[float]] | None) -> str:
    """``private (dirty)`` per worker."""
    return " / ".join(f"{a:.0f} ({b:.0f})" for a, b in values) if values else "-"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the cases and print a table."""
    parser = argparse.ArgumentParser(
        prog="python tools/data_memory_bench.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--ann", required=True, help="COCO json (python -m yolact.data.coco_scale)")
    parser.add_argument("--images", required=True, help="its image folder")
    parser.add_argument("--old-root", default=None,
                        help="root of the code to compare (the 'old' case needs it)")  # fmt: skip
    parser.add_argument("--cases", default=None,
                        help="of old, cold, cached, build (the cold build's steps timed; "
                        "default: old,cold,cached with --old-root, else cold,cached)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--size", type=int, default=550, help="training image size")
    parser.add_argument("--epoch-reads", type=int, nargs="?", const=0, default=None,
                        metavar="N", help="also read the annotations of the first N images "
                        "(default: all) once per case")  # fmt: skip
    parser.add_argument("--no-split", action="store_true",
                        help="build case: read the annotations in one process")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cases is None:
        args.cases = "old,cold,cached" if args.old_root else "cold,cached"
    if "old" in args.cases.split(",") and not args.old_root:
        parser.error("the 'old' case needs --old-root (a checkout of the code to compare)")
    if args.child:
        if args.cases == "build":
            print(json.dumps(build_profile(args)), flush=True)
            return 0
        report = child(args, float(os.environ.get("BENCH_T0", time.time())))
        print(json.dumps(report), flush=True)
        return 0
    print(f"{args.ann}: {os.path.getsize(args.ann) / 2**20:.0f} MiB, {args.workers} workers, "
          f"batch {args.batch}, {args.iterations} iterations, {os.cpu_count()} CPUs")  # fmt: skip
    folder = os.path.dirname(os.path.abspath(args.ann))
    print("case   | dataset s | first batch s | peak tree PSS MB | main PSS MB | "
          f"worker private (dirty) MB after {args.iterations} it | after the reads | "
          "load average (1 min) before / after | peak at: PSS MB per process")  # fmt: skip
    for name in args.cases.split(","):
        if name == "build":
            load = os.getloadavg()[0]
            report = run_case(name, args)
            steps = report["build"]
            print(f"build  | the cold build's steps (load {load:.1f} / "
                  f"{os.getloadavg()[0]:.1f}): " + ", ".join(
                      f"{k} {c:.1f}" + (f" s CPU ({w:.1f} s wall)" if w else "")
                      for k, (c, w) in steps.items())
                  + f", peak PSS of the process tree {report['peak_tree_pss_mb']:.0f} MB"
                  f" (at {report['peak_when']})",
                  flush=True)  # fmt: skip
            continue
        if name == "cold":
            for path in glob.glob(os.path.join(folder, "*.yolact-records")):
                os.remove(path)
        load = os.getloadavg()[0]
        r = run_case(name, args)
        print(f"{name:6} | {r['dataset_s']:9.1f} | {r['first_batch_s']:13.1f} | "
              f"{r['peak_tree_pss_mb']:16.0f} | {r['main_pss_mb']:11.0f} | "
              f"{_mb(r['worker_private_mb']):>38} | {_mb(r.get('epoch_private_mb'))} | "
              f"{load:.1f} / {os.getloadavg()[0]:.1f} | {r['peak_when']}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
