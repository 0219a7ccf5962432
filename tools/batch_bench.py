"""Throughput of batch inference on Ray and of serving, beside one process, in one run.

::

    python tools/batch_bench.py --mode=data  --images=160   # Ray Data (2 CPUs) vs one process
    python tools/batch_bench.py --mode=serve --requests=160 # Ray Serve, 8 clients, vs batch-4

Both sides run on the same generated JPEG files (drawn scenes, ``--size``), the
same model and the same cores. ``data``: one process running ``yolact predict``'s
path (files read and decoded on a thread, fixed batches, ``--threads`` torch
threads) against a local Ray cluster of ``--threads`` CPUs whose
``YolactMapper`` actors (one torch thread each) map ``read_binary_files``
batches; both counted from the first result to the last (model loading and
actor start-up left out, printed apart). ``serve``: the same files posted by
``--clients`` concurrent loopback HTTP clients to the Serve deployment
(``--requests`` in all, at most ``--time_limit`` seconds), against the
predictor running batches of 4 decoded-from-file images in one process: this
mode runs ``tools/serve_bench.py`` (its other options pass through).
Figures are printed, never checked.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))


def make_images(folder: str, count: int, size: tuple[int, int]) -> list[str]:
    """``count`` drawn scenes written as JPEG files; their paths."""
    from yolact.data.scenes import make_scene

    paths = []
    for i in range(count):
        image = make_scene(np.random.default_rng(i), size=size, max_objects=6)["image"]
        path = os.path.join(folder, f"scene_{i:05d}.jpg")
        cv2.imwrite(path, image)
        paths.append(path)
    return paths


def one_process(model: str, folder: str, batch: int, threads: int) -> tuple[float, int, float]:
    """(images per second from the first result on, images, seconds to load the model)."""
    from yolact.batch.fixed import FixedBatchPredictor
    from yolact.core.predictor import Predictor
    from yolact.inference.sources import ImageFiles
    from yolact.inference.stream import stream
    from yolact.io.images import list_images

    start = time.perf_counter()
    predictor = Predictor.from_checkpoint(model, device="cpu", threads=threads, top_k=None)
    load = time.perf_counter() - start
    files = list_images(folder)
    first = last = 0.0
    done = 0
    with stream(FixedBatchPredictor(predictor, batch), ImageFiles(files, folder),
                batch_size=batch) as s:  # fmt: skip
        for _ in s:
            done += 1
            last = time.perf_counter()
            first = first or last
    return (done - batch) / (last - first), done, load


def ray_data(model: str, folder: str, batch: int, cpus: int) -> tuple[float, int, float]:
    """(images per second from the first result on, images, seconds to the first result)."""
    import ray

    from yolact.batch.ray_data import YolactMapper

    ds = ray.data.read_binary_files(folder, include_paths=True, num_cpus=0.25)
    out = ds.map_batches(
        YolactMapper, fn_constructor_kwargs={"model_path": model, "device": "cpu", "threads": 1,
                                             "batch_size": batch},
        compute=ray.data.ActorPoolStrategy(size=cpus), num_cpus=(cpus - 0.5) / cpus,
        batch_size=batch,
    )  # fmt: skip
    start = time.perf_counter()
    first = last = 0.0
    done = first_rows = 0
    for rows in out.iter_batches(batch_size=None):
        done += len(rows["path"])
        last = time.perf_counter()
        if not first:
            first, first_rows = last, done
    return (done - first_rows) / (last - first), done, first - start


def main() -> int:
    p = argparse.ArgumentParser(
        prog="python tools/batch_bench.py", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--mode", choices=["data", "serve"], default="data")
    p.add_argument("--trained_model", default=str(REPO / "weights" / "yolact_tiny_synthetic.pth"))
    p.add_argument("--images", type=int, default=160, help="files (data) / distinct files (serve)")
    p.add_argument("--size", default="240x320", help="HxW of the drawn scenes")
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--threads", type=int, default=2, help="cores: torch threads / Ray CPUs")
    p.add_argument("--requests", type=int, default=160, help="serve: requests in all")
    p.add_argument("--clients", type=int, default=8, help="serve: concurrent clients")
    p.add_argument("--time_limit", type=float, default=300.0, help="serve: seconds at most")
    a, rest = p.parse_known_args()
    if a.mode == "serve":  # tools/serve_bench.py: the served side beside offline batches
        import serve_bench

        argv = [f"--{k}={getattr(a, k)}" for k in ("trained_model", "images", "size",
                "batch_size", "threads", "requests", "clients", "time_limit")]  # fmt: skip
        return serve_bench.main(argv + rest)
    h, w = (int(v) for v in a.size.split("x"))
    import ray

    with tempfile.TemporaryDirectory() as folder:
        paths = make_images(folder, a.images, (h, w))
        print(f"{len(paths)} JPEG files {h}x{w}, {a.trained_model}, batch {a.batch_size}, "
              f"{a.threads} cores; load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip
        if a.mode == "data":
            fps1, n1, load = one_process(a.trained_model, folder, a.batch_size, a.threads)
            ray.init(num_cpus=a.threads, include_dashboard=False, _node_ip_address="127.0.0.1",
                     configure_logging=False, log_to_driver=False)  # fmt: skip
            ray.data.DataContext.get_current().enable_progress_bars = False
            fps2, n2, startup = ray_data(a.trained_model, folder, a.batch_size, a.threads)
            ray.shutdown()
            print(f"one process ({a.threads} torch threads): {fps1:.1f} images/s over {n1} "
                  f"images (model load {load:.1f} s)")  # fmt: skip
            print(f"Ray Data ({a.threads} CPUs, {a.threads} actors x 1 thread): {fps2:.1f} "
                  f"images/s over {n2} images (first result after {startup:.1f} s)")  # fmt: skip
            print(f"Ray / one process: {fps2 / fps1:.2f}x")
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
